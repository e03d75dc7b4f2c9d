"""tinyfw.jit (being built)."""

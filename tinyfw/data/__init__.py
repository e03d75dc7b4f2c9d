"""tinyfw.data (being built)."""

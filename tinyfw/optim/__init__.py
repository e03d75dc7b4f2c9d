"""tinyfw.optim (being built)."""

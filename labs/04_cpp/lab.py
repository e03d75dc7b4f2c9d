"""Lab 4's title and tasks (id, what it asks, points), read by tinyfw.labs."""
TITLE = "A C++ kernel through pybind11"
TASKS = [
    ("4.1", "elementwise kernels: axpy (vectorised loop) and an overflow-safe softplus", 3),
    ("4.2", "matmul: the triple loop, with shape errors as Python ValueErrors", 2),
    ("4.3", "matmul blocked for the caches, parallel with OpenMP, GIL released: >= 2x the naive loop", 4),
]

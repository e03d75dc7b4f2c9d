"""Lab 3's title and tasks (id, what it asks, points), read by tinyfw.labs."""
TITLE = "Ops with a backward, and gradcheck"
TASKS = [
    ("3.1", "numerical_gradient and worst_gradient_error (central differences)", 2),
    ("3.2", "Softmax: stable forward in numpy, backward in tinyfw ops", 3),
    ("3.3", "LayerNorm: forward in numpy, backward (x, weight, bias) in tinyfw ops", 4),
    ("3.4", "conv2d as im2col (tinyfw indexing) and one matrix product", 4),
]

"""Lab 2's title and tasks (id, what it asks, points), read by tinyfw.labs."""
TITLE = "An autograd engine"
TASKS = [
    ("2.1", "topological order of the graph's nodes", 3),
    ("2.2", "backward: each node once, gradients summed, leaves accumulated", 4),
    ("2.3", "leaf hooks: called once with the total gradient, may replace it", 2),
    ("2.4", "grad(): gradients of leaves and intermediate tensors, no .grad touched", 3),
]

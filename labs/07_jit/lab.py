"""Lab 7's title and tasks (id, what it asks, points), read by tinyfw.labs."""
TITLE = "Traced mode: graph passes"
TASKS = [
    ("7.1", "dead-code elimination", 2),
    ("7.2", "common-subexpression elimination", 3),
    ("7.3", "elementwise fusion groups: same shape, no cycles", 4),
    ("7.4", "fuse: each group becomes one node with one kernel", 3),
]

"""Lab 6's title and tasks (id, what it asks, points), read by tinyfw.labs."""
TITLE = "Optimizers, schedules and a training loop"
TASKS = [
    ("6.1", "SGD: momentum, Nesterov, weight decay", 3),
    ("6.2", "Adam and AdamW (bias correction, decoupled weight decay)", 3),
    ("6.3", "RMSprop and AdaGrad", 3),
    ("6.4", "a cosine learning-rate schedule with linear warm-up", 2),
    ("6.5", "train the digits CNN with your optimizer to >= 93% test accuracy", 3),
]

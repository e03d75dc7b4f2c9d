"""Lab 9's title and tasks (id, what it asks, points), read by tinyfw.labs."""
TITLE = "Data parallelism: ring all-reduce and gradient buckets"
TASKS = [
    ("9.1", "the ring all-reduce (reduce-scatter + all-gather), bandwidth-optimal", 4),
    ("9.2", "the ring over real processes: tinyfw.distributed send/recv", 2),
    ("9.3", "gradient buckets in ready order under a byte cap", 2),
    ("9.4", "a bucketed reducer that all-reduces each bucket as soon as it is ready", 3),
]

"""Planted bugs: each is one edit of the solution that the grader must catch in its task
(tests/test_labs.py applies each and grades).  (task, file, old text, new text, what)."""
BUGS = [
    ("9.1", "parallel.py", "        a, b = bounds[(rank - s - 1) % world]\n        out[a:b] += recv(left)",
     "        a, b = bounds[(rank - s) % world]\n        out[a:b] += recv(left)",
     "reduce-scatter adds the received chunk into the wrong slot"),
    ("9.2", "parallel.py", "    for work in pending:\n        work.wait()\n    with tinyfw.no_grad():\n        t.copy_(",
     "    for work in pending:\n        work.wait()\n    with tinyfw.no_grad():\n        t.add_(",
     "the sum is added to the tensor instead of replacing it"),
    ("9.3", "parallel.py", "    for i in reversed(range(len(sizes_bytes))):",
     "    for i in range(len(sizes_bytes)):", "buckets in registration order, not ready order"),
    ("9.4", "parallel.py", "        total = np.asarray(self.allreduce(flat)) / self.world",
     "        total = np.asarray(self.allreduce(flat))", "the sum is not averaged over the ranks"),
]

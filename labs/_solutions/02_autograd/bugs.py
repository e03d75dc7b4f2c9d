"""Planted bugs: each is one edit of the solution that the grader must catch in its task
(tests/test_labs.py applies each and grades).  (task, file, old text, new text, what)."""
BUGS = [
    ("2.1", "engine.py", "    return order[::-1]", "    return order",
     "post-order not reversed: inputs' nodes come first"),
    ("2.2", "engine.py", "pending[key] = gi if key not in pending else pending[key] + gi",
     "pending[key] = gi", "a node shared by two consumers keeps only the last gradient"),
    ("2.3", "engine.py", "                    total = replaced", "                    total = total",
     "the hook's replacement gradient is ignored"),
    ("2.4", "engine.py", "            out.append(targets.get(id(t.grad_fn)))",
     "            out.append(None)", "intermediate tensors get no gradient"),
]

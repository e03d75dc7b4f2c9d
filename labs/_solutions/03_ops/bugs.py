"""Planted bugs: each is one edit of the solution that the grader must catch in its task
(tests/test_labs.py applies each and grades).  (task, file, old text, new text, what)."""
BUGS = [
    ("3.1", "ops.py", ") / (2 * eps)", ") / eps", "the central difference is not halved"),
    ("3.2", "ops.py", "e = np.exp(x - x.max(axis=dim, keepdims=True))", "e = np.exp(x)",
     "no max subtracted: overflow to inf/NaN on large inputs"),
    ("3.3", "ops.py", "                  - xhat * (gxhat * xhat).mean(-1, keepdim=True))",
     "                  )", "the xhat term of the layer-norm gradient is dropped"),
    ("3.4", "ops.py", "j = np.arange(kw).reshape(1, kw, 1, 1) + stride * np.arange(ow)",
     "j = np.arange(kw).reshape(1, kw, 1, 1) + np.arange(ow)",
     "im2col ignores the stride along the width"),
]

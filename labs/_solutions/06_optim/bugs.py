"""Planted bugs: each is one edit of the solution that the grader must catch in its task
(tests/test_labs.py applies each and grades).  (task, file, old text, new text, what)."""
BUGS = [
    ("6.1", "optim.py", "g = g + h[\"momentum\"] * b if h[\"nesterov\"] else b",
     "g = b", "Nesterov momentum ignored"),
    ("6.2", "optim.py", "p.sub_(h[\"lr\"] * (m / (1 - b1 ** t)) / denom)",
     "p.sub_(h[\"lr\"] * m / denom)", "no bias correction of the first moment"),
    ("6.3", "optim.py", "clr = h[\"lr\"] / (1 + (t - 1) * h[\"lr_decay\"])",
     "clr = h[\"lr\"] / (1 + t * h[\"lr_decay\"])", "AdaGrad's decay starts one step early"),
    ("6.4", "optim.py", "return base_lr * (step + 1) / warmup", "return base_lr * step / warmup",
     "the warm-up starts at 0 instead of base_lr / warmup"),
    ("6.5", "optim.py", "warmup_cosine(step, total, total // 10, 5e-3)",
     "warmup_cosine(step, total, total // 10, 5e-6)", "a learning rate far too small to train"),
]

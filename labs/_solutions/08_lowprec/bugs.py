"""Planted bugs: each is one edit of the solution that the grader must catch in its task
(tests/test_labs.py applies each and grades).  (task, file, old text, new text, what)."""
BUGS = [
    ("8.1", "lowprec.py", "        if not found:\n            optimizer.step()",
     "        optimizer.step()", "the step is taken even when a gradient overflowed"),
    ("8.2", "lowprec.py", "            self.scale_value *= self.backoff_factor\n            self.tracker = 0",
     "            self.scale_value *= self.backoff_factor", "the clean-step count survives an overflow"),
    ("8.3", "lowprec.py", "    lo, hi = min(lo, 0.0), max(hi, 0.0)", "    lo, hi = lo, hi",
     "the range need not contain 0: zero is not exactly representable"),
    ("8.4", "lowprec.py", "self.w_scale = np.where(amax > 0, amax / 127.0, 1.0)",
     "self.w_scale = np.where(amax > 0, amax / 255.0, 1.0)", "weights scaled for 8 unsigned bits"),
]

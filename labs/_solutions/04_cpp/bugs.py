"""Planted bugs: each is one edit of the solution that the grader must catch in its task
(tests/test_labs.py applies each and grades).  (task, file, old text, new text, what)."""
BUGS = [
    ("4.1", "kernels.cpp", "po[i] = std::max(v, 0.0f) + std::log1p(std::exp(-std::fabs(v)));",
     "po[i] = std::log1p(std::exp(v));", "softplus overflows for large x"),
    ("4.2", "kernels.cpp", "for (py::ssize_t p = 0; p < k; ++p) s += pa[i * k + p] * pb[p * n + j];",
     "for (py::ssize_t p = 0; p < k; ++p) s += pa[i * k + p] * pb[j * k + p];",
     "B read as if transposed"),
    ("4.3", "kernels.cpp", "                const py::ssize_t p1 = std::min(k, p0 + BK);",
     "                const py::ssize_t p1 = std::min(k, p0 + BK - 1);",
     "each k block drops its last column"),
]

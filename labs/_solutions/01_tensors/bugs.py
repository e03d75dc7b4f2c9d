"""Planted bugs: each is one edit of the solution that the grader must catch in its task
(tests/test_labs.py applies each and grades).  (task, file, old text, new text, what)."""
BUGS = [
    ("1.1", "strided.py", "pos += (i % size) * stride", "pos += i * stride",
     "negative indices not wrapped"),
    ("1.2", "strided.py", "tuple(self.strides[d] for d in dims), self.offset)",
     "self.strides, self.offset)", "permute forgets to permute the strides"),
    ("1.3", "strided.py", "        if strides is not None:\n            return StridedArray(self.buffer, shape, strides, self.offset)",
     "        if True:\n            return StridedArray(self.buffer, shape, None, self.offset)",
     "reshape always views the buffer as contiguous"),
    ("1.4", "strided.py", "strides.append(stride if size == want else 0)",
     "strides.append(stride)", "broadcast_to keeps the stride of a stretched dim"),
]

"""Lab 1: a strided array — shape, strides and offset over a flat buffer.

A `StridedArray` never owns its numbers: it is a window onto `buffer` (a flat list or 1-D
numpy array).  Element (i0, i1, ...) lives at buffer[offset + i0*s0 + i1*s1 + ...].
Views (permute, transpose, slicing, broadcasting, most reshapes) make a new window onto
the same buffer; only a reshape the strides cannot express copies.

Your work: every function below that raises NotImplementedError("TODO ...") (README.md
lists the tasks).  Grade it with: python -m tinyfw.labs grade 1 --src <this folder>
"""
from __future__ import annotations

import math


def contiguous_strides(shape: tuple) -> tuple:
    """TASK 1.1 — the row-major (C-order) strides, in elements, of an array of `shape`:
    the last dim has stride 1, each earlier one the product of the sizes after it."""
    raise NotImplementedError("TODO 1.1: contiguous_strides")


def broadcast_shapes(*shapes: tuple) -> tuple:
    """TASK 1.4 — the shape two or more shapes broadcast to (NumPy/PyTorch rules: align
    on the right, a size 1 stretches, other sizes must agree); ValueError otherwise."""
    raise NotImplementedError("TODO 1.4: broadcast_shapes")


class StridedArray:
    """A view of `buffer` with a shape, strides (in elements) and an offset."""

    def __init__(self, buffer, shape: tuple, strides: tuple | None = None, offset: int = 0):
        self.buffer = buffer
        self.shape = tuple(int(s) for s in shape)
        self.strides = contiguous_strides(self.shape) if strides is None else tuple(strides)
        self.offset = offset
        if len(self.strides) != len(self.shape):
            raise ValueError(f"{len(self.strides)} strides for {len(self.shape)} dims")

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    # -- TASK 1.1: indexing ---------------------------------------------------------------
    def flat_index(self, index: tuple) -> int:
        """TASK 1.1 — the buffer position of element `index` (one int per dim; negative
        ints count from the end); IndexError when the count or a value is out of range."""
        raise NotImplementedError("TODO 1.1: flat_index")

    def is_contiguous(self) -> bool:
        """TASK 1.1 — True when the elements lie in row-major order with no gaps (size-1
        dims may have any stride; an empty array is contiguous)."""
        raise NotImplementedError("TODO 1.1: is_contiguous")

    def __getitem__(self, index: tuple):
        return self.buffer[self.flat_index(index)]

    def tolist(self):
        """The elements as nested lists (row-major)."""
        def rec(prefix: tuple):
            if len(prefix) == self.ndim:
                return self[prefix]
            return [rec(prefix + (i,)) for i in range(self.shape[len(prefix)])]
        return rec(())

    # -- TASK 1.2: views ------------------------------------------------------------------
    def permute(self, *dims: int) -> "StridedArray":
        """TASK 1.2 — a view with the dims reordered: result dim k is this array's dim
        dims[k] (negative dims count from the end); ValueError unless dims is a
        permutation of range(ndim)."""
        raise NotImplementedError("TODO 1.2: permute")

    def transpose(self, dim0: int, dim1: int) -> "StridedArray":
        """TASK 1.2 — a view with two dims swapped."""
        raise NotImplementedError("TODO 1.2: transpose")

    def slice(self, dim: int, start: int, stop: int, step: int = 1) -> "StridedArray":
        """TASK 1.2 — a view of elements start, start+step, ... (< stop) along `dim`
        (Python's rules for negative and out-of-range start/stop; step >= 1)."""
        raise NotImplementedError("TODO 1.2: slice")

    # -- TASK 1.3: reshape ----------------------------------------------------------------
    def contiguous(self) -> "StridedArray":
        """A row-major copy in a new buffer (self when already contiguous)."""
        if self.is_contiguous():
            return self
        flat = []

        def rec(prefix: tuple):
            if len(prefix) == self.ndim:
                flat.append(self[prefix])
                return
            for i in range(self.shape[len(prefix)]):
                rec(prefix + (i,))
        rec(())
        return StridedArray(flat, self.shape)

    def _view_strides(self, shape: tuple) -> tuple | None:
        """TASK 1.3 (helper) — the strides that show this array's elements in `shape`
        without a copy, or None when none can.  Walk the old dims from the last: dims whose strides chain
        (stride[d-1] == stride[d] * size[d]) form one chunk of evenly spaced elements,
        and the new dims must split each chunk exactly, taking strides within it."""
        raise NotImplementedError("TODO 1.3: _view_strides")

    def reshape(self, *shape: int) -> "StridedArray":
        """TASK 1.3 — the same elements (row-major order) in `shape`; one size may be -1
        (inferred).  A view when the strides allow it (NumPy's and PyTorch's rule),
        else a contiguous copy.  ValueError when the sizes do not match."""
        raise NotImplementedError("TODO 1.3: reshape")

    # -- TASK 1.4: broadcasting -----------------------------------------------------------
    def broadcast_to(self, shape: tuple) -> "StridedArray":
        """TASK 1.4 — a view of this array stretched to `shape` (new leading dims and
        size-1 dims get stride 0); ValueError when it does not broadcast to exactly
        `shape`."""
        raise NotImplementedError("TODO 1.4: broadcast_to")


def add(a: StridedArray, b: StridedArray) -> StridedArray:
    """TASK 1.4 — a + b elementwise with broadcasting, as a new contiguous array."""
    raise NotImplementedError("TODO 1.4: add")

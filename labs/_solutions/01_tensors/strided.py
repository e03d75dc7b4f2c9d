"""Lab 1: a strided array — shape, strides and offset over a flat buffer.

A `StridedArray` never owns its numbers: it is a window onto `buffer` (a flat list or 1-D
numpy array).  Element (i0, i1, ...) lives at buffer[offset + i0*s0 + i1*s1 + ...].
Views (permute, transpose, slicing, broadcasting, most reshapes) make a new window onto
the same buffer; only a reshape the strides cannot express copies.
"""
from __future__ import annotations

import math


def contiguous_strides(shape: tuple) -> tuple:
    """TASK 1.1 — the row-major (C-order) strides, in elements, of an array of `shape`:
    the last dim has stride 1, each earlier one the product of the sizes after it."""
    strides = []
    step = 1
    for size in reversed(shape):
        strides.append(step)
        step *= max(size, 1)
    return tuple(reversed(strides))


def broadcast_shapes(*shapes: tuple) -> tuple:
    """TASK 1.4 — the shape two or more shapes broadcast to (NumPy/PyTorch rules: align
    on the right, a size 1 stretches, other sizes must agree); ValueError otherwise."""
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for k in range(ndim):
        sizes = {s[len(s) - ndim + k] for s in shapes if len(s) - ndim + k >= 0}
        sizes.discard(1)
        if len(sizes) > 1:
            raise ValueError(f"shapes {shapes} do not broadcast: sizes {sorted(sizes)} at dim {k}")
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


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
        if len(index) != self.ndim:
            raise IndexError(f"{len(index)} indices for a {self.ndim}-d array")
        pos = self.offset
        for i, size, stride in zip(index, self.shape, self.strides):
            if not -size <= i < size:
                raise IndexError(f"index {i} is out of range for size {size}")
            pos += (i % size) * stride
        return pos

    def is_contiguous(self) -> bool:
        """TASK 1.1 — True when the elements lie in row-major order with no gaps (size-1
        dims may have any stride; an empty array is contiguous)."""
        if self.size == 0:
            return True
        expected = 1
        for size, stride in zip(reversed(self.shape), reversed(self.strides)):
            if size != 1 and stride != expected:
                return False
            expected *= size
        return True

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
        dims = tuple(d % self.ndim if self.ndim else d for d in dims)
        if sorted(dims) != list(range(self.ndim)):
            raise ValueError(f"permute: {dims} is not a permutation of {self.ndim} dims")
        return StridedArray(self.buffer, tuple(self.shape[d] for d in dims),
                            tuple(self.strides[d] for d in dims), self.offset)

    def transpose(self, dim0: int, dim1: int) -> "StridedArray":
        """TASK 1.2 — a view with two dims swapped."""
        order = list(range(self.ndim))
        order[dim0], order[dim1] = order[dim1], order[dim0]
        return self.permute(*order)

    def slice(self, dim: int, start: int, stop: int, step: int = 1) -> "StridedArray":
        """TASK 1.2 — a view of elements start, start+step, ... (< stop) along `dim`
        (Python's rules for negative and out-of-range start/stop; step >= 1)."""
        if step < 1:
            raise ValueError(f"slice: step must be positive, got {step}")
        dim %= self.ndim
        start, stop, step = slice(start, stop, step).indices(self.shape[dim])
        n = max(0, (stop - start + step - 1) // step)
        shape = self.shape[:dim] + (n,) + self.shape[dim + 1:]
        strides = self.strides[:dim] + (self.strides[dim] * step,) + self.strides[dim + 1:]
        return StridedArray(self.buffer, shape, strides, self.offset + start * self.strides[dim])

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
        if self.ndim == 0:
            return contiguous_strides(shape)
        new = [0] * len(shape)
        v = len(shape) - 1                  # the next new dim to give a stride
        base = self.strides[-1]            # stride of the current chunk's innermost dim
        old_count = new_count = 1          # elements covered in the chunk / by new dims
        for d in range(self.ndim - 1, -1, -1):
            old_count *= self.shape[d]
            chunk_ends = d == 0 or (self.shape[d - 1] != 1
                                    and self.strides[d - 1] != old_count * base)
            if not chunk_ends:
                continue
            while v >= 0 and (new_count < old_count or shape[v] == 1):
                new[v] = new_count * base
                new_count *= shape[v]
                v -= 1
            if new_count != old_count:
                return None
            if d > 0:
                base, old_count, new_count = self.strides[d - 1], 1, 1
        return tuple(new) if v == -1 else None

    def reshape(self, *shape: int) -> "StridedArray":
        """TASK 1.3 — the same elements (row-major order) in `shape`; one size may be -1
        (inferred).  A view when the strides allow it (NumPy's and PyTorch's rule),
        else a contiguous copy.  ValueError when the sizes do not match."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        if list(shape).count(-1) > 1:
            raise ValueError("reshape: only one dimension can be -1")
        known = math.prod(s for s in shape if s != -1)
        if -1 in shape:
            if known == 0 or self.size % known:
                raise ValueError(f"reshape: cannot infer -1 in {shape} for {self.size} elements")
            shape = tuple(self.size // known if s == -1 else s for s in shape)
        if math.prod(shape) != self.size:
            raise ValueError(f"reshape: shape {shape} has {math.prod(shape)} elements, the "
                             f"array {self.size}")
        if self.size == 0:
            return StridedArray(self.buffer, shape, None, self.offset)
        strides = self._view_strides(shape)
        if strides is not None:
            return StridedArray(self.buffer, shape, strides, self.offset)
        c = self.contiguous()
        return StridedArray(c.buffer, shape, None, c.offset)

    # -- TASK 1.4: broadcasting -----------------------------------------------------------
    def broadcast_to(self, shape: tuple) -> "StridedArray":
        """TASK 1.4 — a view of this array stretched to `shape` (new leading dims and
        size-1 dims get stride 0); ValueError when it does not broadcast to exactly
        `shape`."""
        shape = tuple(shape)
        if broadcast_shapes(self.shape, shape) != shape:
            raise ValueError(f"broadcast_to: {self.shape} does not broadcast to {shape}")
        lead = len(shape) - self.ndim
        strides = [0] * lead
        for size, want, stride in zip(self.shape, shape[lead:], self.strides):
            strides.append(stride if size == want else 0)
        return StridedArray(self.buffer, shape, tuple(strides), self.offset)


def add(a: StridedArray, b: StridedArray) -> StridedArray:
    """TASK 1.4 — a + b elementwise with broadcasting, as a new contiguous array."""
    shape = broadcast_shapes(a.shape, b.shape)
    x, y = a.broadcast_to(shape), b.broadcast_to(shape)
    out = StridedArray([0] * math.prod(shape), shape)
    for flat in range(out.size):
        idx, rest = [], flat
        for s in reversed(shape):
            idx.append(rest % s)
            rest //= s
        idx = tuple(reversed(idx))
        out.buffer[flat] = x[idx] + y[idx]
    return out

"""torch.linalg's norms and products: vector_norm, matrix_norm, norm, cross, diagonal,
matmul, multi_dot, vecdot, vander (compositions of tinyfw ops)."""
from __future__ import annotations

import math

from ..ops import reduce as R
from ..ops.linalg import matmul as _matmul
from ..ops._util import Tensor, broadcast_shapes, ensure_tensor
from . import _check as C

_MATRIX_ORDS = ("fro", "nuc", math.inf, -math.inf, 1, -1, 2, -2)


def _to_end(A: Tensor, d0: int, d1: int) -> Tensor:
    """A with dims d0, d1 moved to the end, in that order."""
    rest = [d for d in range(A.ndim) if d not in (d0, d1)]
    return A.permute(*rest, d0, d1)


def _cast(x: Tensor, dtype, op: str) -> Tensor:
    x = ensure_tensor(x, op)
    if dtype is not None:
        x = x.to(dtype)
    if not x.dtype.is_floating_point:
        raise RuntimeError(f"{op}: Expected a floating point or complex tensor as input. "
                           f"Got {C._torch_name(x.dtype)}")
    return x


def vector_norm(x, ord=2, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """The ord-norm of x over `dim` (all dims when None): sum(|x|^ord)^(1/ord), max|x|
    for inf, min|x| for -inf, the count of non-zeros for 0."""
    x = _cast(x, dtype, "linalg.vector_norm")
    if isinstance(ord, str):
        raise RuntimeError(f"linalg.vector_norm: ord must be a number, got {ord!r}")
    if ord < 0 and ord != -math.inf or ord == -math.inf:
        if x.numel() == 0:
            raise RuntimeError("linalg.vector_norm cannot compute the "
                               f"{ord} norm on an empty tensor because the operation does not "
                               "have an identity")
    if isinstance(dim, int):
        dim = (dim,)
    if ord < 0 and ord != -math.inf:
        a = x.abs()
        return R.sum(a ** ord, dim, keepdim) ** (1.0 / ord)
    return R.norm(x, ord, dim, keepdim)


def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim: bool = False, *, dtype=None) -> Tensor:
    """Frobenius, nuclear, or the operator norm of order 1, -1, 2, -2, inf, -inf over the
    two dims `dim`."""
    op = "linalg.matrix_norm"
    A = _cast(A, dtype, op)
    if A.ndim < 2:
        raise RuntimeError(f"{op}: The input tensor A must have at least 2 dimensions.")
    if ord not in _MATRIX_ORDS:
        raise RuntimeError(f"{op}: Order {ord} not supported.")
    d0, d1 = (d % A.ndim for d in dim)
    if d0 == d1:
        raise RuntimeError(f"{op}: dims must be different. Got ({dim[0]}, {dim[1]})")
    if ord == "fro":
        return R.norm(A, 2, (d0, d1), keepdim)
    if ord in ("nuc", 2, -2):
        from ._decomp import svdvals
        S = svdvals(_to_end(A, d0, d1))
        out = S.sum(-1) if ord == "nuc" else (S.amax(-1) if ord == 2 else S.amin(-1))
        if keepdim:
            for d in sorted((d0, d1)):
                out = out.unsqueeze(d)
        return out
    # 1 / -1: max/min column sum; inf / -inf: max/min row sum
    sum_dim, red_dim = (d0, d1) if ord in (1, -1) else (d1, d0)
    sums = A.abs().sum(sum_dim, keepdim=True)
    out = sums.amax(red_dim, keepdim=True) if ord > 0 else sums.amin(red_dim, keepdim=True)
    return out if keepdim else out.squeeze(max(d0, d1)).squeeze(min(d0, d1))


def norm(A, ord=None, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """vector_norm or matrix_norm as PyTorch chooses: a matrix norm when `dim` is a pair,
    or when it is None, ord is given and A is 2-d; else a vector norm (2-norm of the
    flattened tensor when both ord and dim are None)."""
    A = _cast(A, dtype, "linalg.norm")
    if dim is not None and not isinstance(dim, int) and len(dim) == 2:
        return matrix_norm(A, "fro" if ord is None else ord, tuple(dim), keepdim)
    if dim is None and ord is not None:
        if A.ndim == 2:
            return matrix_norm(A, ord, (-2, -1), keepdim)
        if A.ndim != 1:
            raise RuntimeError("linalg.norm: If dim is not specified but ord is, the input "
                               f"must be 1D or 2D. Got {A.ndim}D.")
    if isinstance(ord, str):
        raise RuntimeError(f"linalg.norm: Order {ord} not supported for vector norms.")
    return vector_norm(A, 2 if ord is None else ord, dim, keepdim)


def cross(input, other, *, dim: int = -1) -> Tensor:
    """The cross product of 3-vectors along `dim` (batches broadcast)."""
    op = "linalg.cross"
    a, b = ensure_tensor(input, op), ensure_tensor(other, op)
    if a.ndim != b.ndim:
        raise RuntimeError(f"{op}: inputs must have the same number of dimensions.")
    if a.shape[dim] != 3 or b.shape[dim] != 3:
        raise RuntimeError(f"{op}: inputs dimension {dim} must have length 3. Got "
                           f"{a.shape[dim]} and {b.shape[dim]}")
    shape = broadcast_shapes(tuple(a.shape), tuple(b.shape), op=op)
    a, b = a.expand(*shape), b.expand(*shape)
    from ..ops.index import stack
    x = [a.select(dim, i) for i in range(3)]
    y = [b.select(dim, i) for i in range(3)]
    return stack([x[1] * y[2] - x[2] * y[1], x[2] * y[0] - x[0] * y[2],
                  x[0] * y[1] - x[1] * y[0]], dim % len(shape))


def diagonal(A, *, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:
    """The diagonal `offset` (above the main one when > 0) of the matrices in dims
    (dim1, dim2), as the last dim."""
    A = ensure_tensor(A, "linalg.diagonal")
    nd = A.ndim
    if nd < 2:
        raise RuntimeError(f"linalg.diagonal: expected a tensor of at least 2 dims, got {nd}")
    d1, d2 = dim1 % nd, dim2 % nd
    if d1 == d2:
        raise RuntimeError(f"linalg.diagonal: dim1 and dim2 cannot be the same ({dim1})")
    X = _to_end(A, d1, d2)
    m, n = X.shape[-2:]
    if offset >= 0:
        k = max(0, min(m, n - offset))
        X = X.narrow(-1, min(offset, n), k).narrow(-2, 0, k)
    else:
        k = max(0, min(m + offset, n))
        X = X.narrow(-2, min(-offset, m), k).narrow(-1, 0, k)
    batch = tuple(X.shape[:-2])
    if k == 0:
        return X.reshape(*batch, 0)
    return X.reshape(*batch, k * k)[..., ::k + 1]


def matmul(input, other) -> Tensor:
    """tinyfw.matmul (torch.linalg.matmul is torch.matmul)."""
    return _matmul(input, other)


def multi_dot(tensors) -> Tensor:
    """The product of a chain of matrices (the first may be a row vector, the last a
    column vector), multiplied in the order of fewest scalar multiplications."""
    tensors = list(tensors)
    if len(tensors) < 2:
        raise RuntimeError(f"multi_dot(): expected at least 2 tensors but got {len(tensors)}")
    first_vec, last_vec = tensors[0].ndim == 1, tensors[-1].ndim == 1
    ms = [t for t in tensors]
    if first_vec:
        ms[0] = ms[0].unsqueeze(0)
    if last_vec:
        ms[-1] = ms[-1].unsqueeze(-1)
    for i, t in enumerate(ms):
        if t.ndim != 2:
            raise RuntimeError(f"multi_dot(): tensor {i} must be 2D but got {tensors[i].ndim}D")
    for i in range(len(ms) - 1):
        if ms[i].shape[1] != ms[i + 1].shape[0]:
            raise RuntimeError(f"multi_dot(): tensors {i} and {i + 1} with shapes "
                               f"{tuple(tensors[i].shape)} and {tuple(tensors[i + 1].shape)} "
                               "cannot be multiplied")
    out = _chain(ms, _order(ms), 0, len(ms) - 1)
    if first_vec:
        out = out.squeeze(0)
    if last_vec:
        out = out.squeeze(-1)
    return out


def _order(ms: list) -> list:
    """The matrix-chain split table (dynamic programming on the multiplication count)."""
    dims = [ms[0].shape[0]] + [m.shape[1] for m in ms]
    n = len(ms)
    cost = [[0] * n for _ in range(n)]
    split = [[0] * n for _ in range(n)]
    for length in range(1, n):
        for i in range(n - length):
            j = i + length
            cost[i][j] = math.inf
            for k in range(i, j):
                c = cost[i][k] + cost[k + 1][j] + dims[i] * dims[k + 1] * dims[j + 1]
                if c < cost[i][j]:
                    cost[i][j], split[i][j] = c, k
    return split


def _chain(ms: list, split: list, i: int, j: int) -> Tensor:
    if i == j:
        return ms[i]
    k = split[i][j]
    return _matmul(_chain(ms, split, i, k), _chain(ms, split, k + 1, j))


def vecdot(x, y, *, dim: int = -1) -> Tensor:
    """sum(x * y) over `dim` (batches broadcast)."""
    x, y = ensure_tensor(x, "linalg.vecdot"), ensure_tensor(y, "linalg.vecdot")
    return (x * y).sum(dim)


def vander(x, *, N: int | None = None) -> Tensor:
    """The Vandermonde matrix with columns x^0, x^1, ..., x^(N-1) (N = x.shape[-1] by
    default)."""
    x = ensure_tensor(x, "linalg.vander")
    if x.ndim < 1:
        raise RuntimeError("linalg.vander: x must have at least one dimension")
    n = x.shape[-1] if N is None else N
    if n <= 1:
        raise RuntimeError("N must be greater than 1.")
    from ..ops.index import stack
    cols = [x * 0 + 1]
    for _ in range(n - 1):
        cols.append(cols[-1] * x)
    return stack(cols, -1)

"""NaN-aware sums and means, aminmax, trace, diff, dist, renorm, cov, corrcoef (issue 16).

Every op here is a composition of existing tinyfw ops, so gradients of any order, every
backend, the tracer and the meta device come from the ops it is made of."""
from __future__ import annotations

import math
import warnings
from collections import namedtuple

from .. import dtypes as _dt
from ..tensor import register_method
from ._util import Tensor, _wrap_dim, ensure_tensor

aminmax_result = namedtuple("aminmax", ["min", "max"])


def _nan_zeroed(x: Tensor) -> Tensor:
    # where() passes no gradient to the zeroed NaN positions, as PyTorch's nansum
    return where(x.isnan(), 0.0, x) if x.dtype.is_floating_point else x


def nansum(x, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """Sum over `dim` treating NaN as zero (ints and bools sum to int64, as sum)."""
    x = ensure_tensor(x, "nansum")
    if dtype is not None:
        x = x.to(dtype)
    return _nan_zeroed(x).sum(dim, keepdim=keepdim)


def nanmean(x, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """Mean over `dim` of the non-NaN elements (NaN where a slice has none)."""
    x = ensure_tensor(x, "nanmean")
    if dtype is not None:
        x = x.to(dtype)
    if not x.dtype.is_floating_point:
        raise TypeError(f"nanmean: input dtype must be floating point, got {x.dtype.name}")
    count = (~x.isnan()).sum(dim, keepdim=keepdim).to(x.dtype)
    return _nan_zeroed(x).sum(dim, keepdim=keepdim) / count


def aminmax(x, *, dim: int | None = None, keepdim: bool = False):
    """(min, max) over `dim` (all elements when None), a namedtuple as PyTorch's."""
    x = ensure_tensor(x, "aminmax")
    if x.numel() == 0 and (dim is None or x.ndim == 0):
        raise RuntimeError("aminmax: cannot compute on an empty tensor without a dim "
                           f"(shape {tuple(x.shape)})")
    if dim is not None and x.ndim == 0:
        _wrap_dim(dim, 1, "aminmax")
        return aminmax_result(x, x)
    if dim is None and keepdim:
        # PyTorch keeps every dim as size 1 here
        dims = tuple(range(x.ndim))
        return aminmax_result(x.amin(dims, keepdim=True), x.amax(dims, keepdim=True))
    return aminmax_result(x.amin(dim, keepdim=keepdim), x.amax(dim, keepdim=keepdim))


def trace(x) -> Tensor:
    """Sum of the main diagonal of a 2-D tensor (ints and bools give int64)."""
    x = ensure_tensor(x, "trace")
    if x.ndim != 2:
        raise RuntimeError(f"trace: expected a matrix (2-D), got shape {tuple(x.shape)}")
    n, m = x.shape
    k = min(n, m)
    if k == 0:
        return x.reshape(-1)[:0].sum()
    # element (i, i) sits at flat position i * (m + 1)
    return x.reshape(-1)[::m + 1][:k].sum()


def diff(x, n: int = 1, dim: int = -1, prepend=None, append=None) -> Tensor:
    """n-th forward difference along `dim`; `prepend`/`append` are joined first.  Bools
    give `!=` of neighbours (PyTorch's logical_xor)."""
    x = ensure_tensor(x, "diff")
    if x.ndim == 0:
        raise RuntimeError("diff: expects input to be at least one-dimensional")
    if not isinstance(n, int) or n < 0:
        raise RuntimeError(f"diff: order n must be a non-negative integer, got {n!r}")
    d = _wrap_dim(dim, x.ndim, "diff")
    parts = []
    for name, t in (("prepend", prepend), (None, x), ("append", append)):
        if t is None:
            continue
        if name is not None:
            t = ensure_tensor(t, "diff")
            if t.ndim == 0:  # a scalar stands for a size-1 slice along dim
                shape = list(x.shape)
                shape[d] = 1
                t = t.expand(*shape)
            if t.ndim != x.ndim:
                raise RuntimeError(f"diff: {name} must have {x.ndim} dims like the input, got "
                                   f"shape {tuple(t.shape)}")
        parts.append(t)
    if len(parts) > 1:
        dt = _dt.result_type(*parts)
        x = cat([p.to(dt) for p in parts], d)
    for _ in range(n):
        if x.shape[d] == 0:
            break
        hi, lo = x.narrow(d, 1, x.shape[d] - 1), x.narrow(d, 0, x.shape[d] - 1)
        x = hi != lo if x.dtype is _dt.bool_ else hi - lo
    return x


def dist(x, other, p: float = 2) -> Tensor:
    """The p-norm of x - other (broadcast); p = 0 counts non-zeros, inf/-inf give max/min."""
    x, other = ensure_tensor(x, "dist"), ensure_tensor(other, "dist")
    if not (x.dtype.is_floating_point and other.dtype.is_floating_point):
        raise TypeError(f"dist: inputs must be floating point, got {x.dtype.name} and "
                        f"{other.dtype.name}")
    if isinstance(p, Tensor):
        p = p.item()
    if not isinstance(p, (int, float)) or p < 0 and p != -math.inf:
        raise RuntimeError(f"dist: p must be a non-negative number or +-inf, got {p!r}")
    return norm(x - other, p)


def renorm(x, p: float, dim: int, maxnorm: float) -> Tensor:
    """Each slice x.select(dim, i) whose p-norm exceeds `maxnorm` scaled down to norm
    maxnorm (by maxnorm / (norm + 1e-7), PyTorch's factor); the others unchanged."""
    x = ensure_tensor(x, "renorm")
    if not x.dtype.is_floating_point:
        raise TypeError(f"renorm: input must be floating point, got {x.dtype.name}")
    if x.ndim <= 1:
        raise RuntimeError(f"renorm: input needs at least 2 dims, got shape {tuple(x.shape)}")
    if p <= 0:
        raise RuntimeError(f"renorm: non-positive norm p={p} is not supported")
    if maxnorm < 0:
        raise RuntimeError(f"renorm: expected maxnorm >= 0, got {maxnorm}")
    d = _wrap_dim(dim, x.ndim, "renorm")
    others = tuple(i for i in range(x.ndim) if i != d)
    nrm = norm(x, p, others, keepdim=True)
    factor = where(nrm > maxnorm, maxnorm / (nrm + 1e-7), 1.0).to(x.dtype)
    return x * factor


def _weights(w, n: int, name: str, integral: bool) -> Tensor | None:
    if w is None:
        return None
    w = ensure_tensor(w, "cov")
    if w.ndim > 1:
        raise RuntimeError(f"cov: expected {name} to have one or fewer dimensions, got shape "
                           f"{tuple(w.shape)}")
    if w.numel() != n:
        raise RuntimeError(f"cov: expected {name} to have the same numel as there are "
                           f"observations ({n}), got {w.numel()}")
    if integral and w.dtype.is_floating_point:
        raise TypeError(f"cov: expected {name} to have an integral dtype, got {w.dtype.name}")
    if not integral and not w.dtype.is_floating_point:
        raise TypeError(f"cov: expected {name} to have a floating point dtype, got "
                        f"{w.dtype.name}")
    if bool((w < 0).any()):
        raise RuntimeError(f"cov: {name} cannot be negative")
    return w.reshape(-1)


def cov(x, *, correction: int = 1, fweights=None, aweights=None) -> Tensor:
    """Covariance of the variables in the rows of x (observations in the columns; a 1-D x
    is one variable), with frequency and analytic weights, dividing by
    sum(w) - correction * sum(w * a) / sum(w) (numpy/PyTorch's weighted formula)."""
    x = ensure_tensor(x, "cov")
    if x.ndim > 2:
        raise RuntimeError(f"cov: expected input to have two or fewer dimensions, got shape "
                           f"{tuple(x.shape)}")
    obs = x.reshape(1, -1) if x.ndim < 2 else x
    n = obs.shape[1]
    fw = _weights(fweights, n, "fweights", True)
    aw = _weights(aweights, n, "aweights", False)
    if not obs.dtype.is_floating_point:
        obs = obs.to(_dt.get_default_dtype())
    w = fw
    if aw is not None:
        w = aw if w is None else w * aw
    if w is None:
        wsum = obs.new_full((), float(n))
        avg = obs.mean(1, keepdim=True) if n else obs.sum(1, keepdim=True) / 0.0
    else:
        w = w.to(obs.dtype)
        wsum = w.sum()
        avg = (obs * w).sum(1, keepdim=True) / wsum
    if correction == 0:
        norm_factor = wsum
    elif w is None:
        if n - correction <= 0:
            warnings.warn("cov: degrees of freedom is <= 0 (correction should be less than "
                          f"the number of observations, {n}); the result is inf/NaN",
                          UserWarning, stacklevel=2)
        norm_factor = wsum - correction
    elif aw is None:
        norm_factor = wsum - correction
    else:
        norm_factor = wsum - correction * (w * aw.to(obs.dtype)).sum() / wsum
    # PyTorch clamps a non-positive denominator to 0 (inf/NaN results, with a warning)
    norm_factor = where(norm_factor <= 0, 0.0, norm_factor).to(obs.dtype)
    centered = obs - avg
    cw = centered if w is None else centered * w
    c = cw.matmul(centered.transpose(0, 1)) / norm_factor
    return c.squeeze()


def corrcoef(x) -> Tensor:
    """Pearson correlation coefficients of the rows of x, clipped to [-1, 1]."""
    x = ensure_tensor(x, "corrcoef")
    if x.ndim > 2:
        raise RuntimeError(f"corrcoef: expected input to have two or fewer dimensions, got "
                           f"shape {tuple(x.shape)}")
    c = cov(x)
    if c.ndim == 0:
        return c / c
    k = c.shape[0]
    d = c.reshape(-1)[::k + 1].sqrt()
    c = c / d.unsqueeze(1) / d.unsqueeze(0)
    return c.clamp(-1.0, 1.0)


from .elementwise import where  # noqa: E402
from .index import cat  # noqa: E402
from .reduce import norm  # noqa: E402

_METHODS = {
    "nansum": nansum, "nanmean": nanmean, "aminmax": aminmax, "trace": trace, "diff": diff,
    "dist": dist, "renorm": renorm, "cov": cov, "corrcoef": corrcoef,
}
for _name, _fn in _METHODS.items():
    register_method(_name, _fn)

__all__ = list(_METHODS)

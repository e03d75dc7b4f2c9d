"""`grouped_mm`: one matrix product per group (mixture-of-experts layers), PyTorch's
operand conventions, each group's product through tinyfw's matmul (so differentiable,
where PyTorch's CPU grouped GEMM is not).

Shapes (G groups; `offs` holds each group's end along the jagged dimension):
- a (G, M, K), b (G, K, N), no offs -> (G, M, N): a batched product;
- a (M_total, K), b (G, K, N) -> (M_total, N): rows [offs[i-1], offs[i]) use b[i];
- a (M, K_total), b (K_total, N) -> (G, M, N): group i contracts K range i;
- a (G, M, K), b (K, N_total) -> (M, N_total): columns [offs[i-1], offs[i]) use a[i].
Rows or columns past offs[-1] are zero (PyTorch leaves them unspecified)."""
from __future__ import annotations

from .. import creation
from .. import dtypes as _dt
from ..ops._util import Tensor, ensure_tensor
from ..ops.index import cat, stack


def _ends(offs, g: int | None, length: int, op: str) -> list[int]:
    o = ensure_tensor(offs, op)
    if o.ndim != 1 or o.dtype.is_floating_point or o.dtype is _dt.bool_:
        raise ValueError(f"{op}: offs must be a 1-d integer tensor, got {o.dtype.name} of shape "
                         f"{tuple(o.shape)}")
    ends = [int(v) for v in o.tolist()]
    if g is not None and len(ends) != g:
        raise ValueError(f"{op}: offs has {len(ends)} entries for {g} groups")
    prev = 0
    for e in ends:
        if e < prev or e > length:
            raise ValueError(f"{op}: offs must be non-decreasing and at most {length}, got "
                             f"{ends}")
        prev = e
    return ends


def _spans(ends: list[int]) -> list[tuple[int, int]]:
    return list(zip([0] + ends[:-1], ends))


def grouped_mm(mat_a, mat_b, *, offs=None, bias=None, out_dtype=None) -> Tensor:
    """The products of the groups of mat_a and mat_b (see the module doc for the four
    shape cases); bias broadcasts onto each group's result; out_dtype casts the result."""
    op = "grouped_mm"
    a, b = ensure_tensor(mat_a, op), ensure_tensor(mat_b, op)
    if a.ndim not in (2, 3) or b.ndim not in (2, 3):
        raise ValueError(f"{op}: mat_a and mat_b must be 2-d or 3-d, got {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"{op}: mat_a {tuple(a.shape)} and mat_b {tuple(b.shape)} do not "
                         f"contract: K {a.shape[-1]} vs {b.shape[-2]}")
    if (offs is None) != (a.ndim == 3 and b.ndim == 3):
        raise ValueError(f"{op}: offs is needed when an operand is 2-d and not allowed when "
                         "both are 3-d")
    if a.ndim == 3 and b.ndim == 3:
        if a.shape[0] != b.shape[0]:
            raise ValueError(f"{op}: {a.shape[0]} groups in mat_a, {b.shape[0]} in mat_b")
        out = a @ b
    elif a.ndim == 2 and b.ndim == 3:
        spans = _spans(_ends(offs, b.shape[0], a.shape[0], op))
        parts = [a[s:e] @ b[i] for i, (s, e) in enumerate(spans)]
        tail = a.shape[0] - (spans[-1][1] if spans else 0)
        parts.append(creation.zeros(tail, b.shape[2], dtype=a.dtype, device=a.device))
        out = cat(parts, 0)
    elif a.ndim == 2 and b.ndim == 2:
        spans = _spans(_ends(offs, None, a.shape[1], op))
        out = stack([a[:, s:e] @ b[s:e] for s, e in spans], 0) if spans else \
            creation.zeros(0, a.shape[0], b.shape[1], dtype=a.dtype, device=a.device)
    else:
        spans = _spans(_ends(offs, a.shape[0], b.shape[1], op))
        parts = [a[i] @ b[:, s:e] for i, (s, e) in enumerate(spans)]
        tail = b.shape[1] - (spans[-1][1] if spans else 0)
        parts.append(creation.zeros(a.shape[1], tail, dtype=a.dtype, device=a.device))
        out = cat(parts, 1)
    if bias is not None:
        out = out + ensure_tensor(bias, op)
    return out if out_dtype is None else out.to(out_dtype)

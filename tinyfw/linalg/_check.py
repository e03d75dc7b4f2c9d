"""Argument checks and error reports shared by tinyfw.linalg (PyTorch's messages)."""
from __future__ import annotations

from .. import dtypes as _dt
from ..ops.linalg_fn import LinAlgError
from ..ops._util import Tensor, broadcast_shapes, ensure_tensor
from ..tensor import _trace_hook

_FLOATS = (_dt.float32, _dt.float64)


def floating(A, op: str, name: str = "A") -> Tensor:
    """A as a float32/float64 tensor, or PyTorch's error naming the op."""
    A = ensure_tensor(A, op)
    if A.dtype not in _FLOATS:
        if not A.dtype.is_floating_point:
            raise RuntimeError(f"{op}: Expected a floating point or complex tensor as input. "
                               f"Got {_torch_name(A.dtype)}")
        raise RuntimeError(f"{op}: Low precision dtypes not supported. Got {_torch_name(A.dtype)}")
    return A


def matrix(A, op: str, square: bool = True, name: str = "A") -> Tensor:
    """A checked as a batch of (square) float matrices."""
    A = floating(A, op, name)
    if A.ndim < 2:
        raise RuntimeError(f"{op}: The input tensor {name} must have at least 2 dimensions.")
    if square and A.shape[-1] != A.shape[-2]:
        raise RuntimeError(f"{op}: {name} must be batches of square matrices, but they are "
                           f"{A.shape[-2]} by {A.shape[-1]} matrices")
    return A


def same_dtype(A: Tensor, B: Tensor, op: str) -> None:
    """PyTorch's linalg ops do not promote between their operands."""
    if A.dtype is not B.dtype:
        raise RuntimeError(f"{op}: Expected A and B to have the same dtype, but found A of "
                           f"type {_torch_name(A.dtype)} and B of type {_torch_name(B.dtype)} "
                           "instead")


def batch_broadcast(A: Tensor, B: Tensor, op: str) -> tuple:
    """A and B expanded to their common batch dims (all but the last two)."""
    batch = broadcast_shapes(tuple(A.shape[:-2]), tuple(B.shape[:-2]), op=f"{op} batch dims")
    return (A.expand(*batch, *A.shape[-2:]), B.expand(*batch, *B.shape[-2:]))


def raise_info(info: Tensor, op: str, why) -> None:
    """Raise LinAlgError for the first batch element whose LAPACK info is not 0; `why(k)`
    says what info k means.  Reads info to the host (PyTorch synchronises the same)."""
    if info.numel() == 0 or info.device.type == "meta":  # meta: shapes only, no values
        return
    if _trace_hook.get() is not None:
        # under jit.trace a value read would bake this call's outcome into the graph: the
        # traced function returns what the _ex variant returns (docs/semantics.md)
        return
    flat = info.reshape(-1).tolist()
    for i, k in enumerate(flat):
        if k != 0:
            where = f"(Batch element {i}): " if info.ndim else ""
            raise LinAlgError(f"{op}: {where}{why(k)}")


def singular_inv(k: int) -> str:
    return (f"The diagonal element {k} is zero, the inversion could not be completed because "
            "the input matrix is singular.")


def not_pd(k: int) -> str:
    return ("The factorization could not be completed because the input is not "
            f"positive-definite (the leading minor of order {k} is not positive-definite).")


def _torch_name(dt) -> str:
    names = {"float16": "Half", "bfloat16": "BFloat16", "int64": "Long", "int32": "Int",
             "int8": "Char", "uint8": "Byte", "bool": "Bool", "float32": "Float",
             "float64": "Double", "int16": "Short"}
    return names.get(str(dt).replace("tinyfw.", ""), str(dt))

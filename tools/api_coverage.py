"""How much of PyTorch's public surface tinyfw implements (issue 16).

    python tools/api_coverage.py            # the four fractions
    python tools/api_coverage.py --missing  # and the names still missing

Four lists are read from the installed PyTorch (2.13 in CI), never from a copy:

- **tensor ops**: public functions of ``torch`` that are also ``torch.Tensor`` methods;
  implemented when ``tinyfw.<name>`` and ``tinyfw.Tensor.<name>`` both exist;
- **functional**: public functions of ``torch.nn.functional``; implemented when
  ``tinyfw.nn.functional.<name>`` exists;
- **nn modules**: ``torch.nn.Module`` subclasses in ``torch.nn``; implemented when
  ``tinyfw.nn.<name>`` exists;
- **linalg**: public names of ``torch.linalg``; implemented when ``tinyfw.linalg.<name>``
  exists.

`EXCLUDED` holds the only names left out, each with its reason (the categories issue 16
allows: complex numbers, sparse tensors, quantized-tensor internals, torch-function-override
helpers, deprecated or removed aliases, ``unsafe_*``).  A name is only counted as
implemented here; whether it agrees with PyTorch is the test suite's job
(tests/op_table.py and the tests that use it).
"""
from __future__ import annotations

import argparse
import inspect
import sys

COMPLEX = "complex numbers: tinyfw has no complex dtype"
SPARSE = "sparse tensors: tinyfw has no sparse layout"
QUANT = "quantized-tensor internals: tinyfw quantizes through tinyfw.quantization, not a qtensor"
OVERRIDE = "torch-function-override / argument-parsing helper, not an op"
DEPRECATED = "deprecated or removed alias (PyTorch raises or warns; the current name is counted)"
UNSAFE = "unsafe_* variant: the same op without aliasing checks"

EXCLUDED: dict[str, str] = {
    # complex numbers
    "conj": COMPLEX, "conj_physical": COMPLEX, "conj_physical_": COMPLEX, "resolve_conj": COMPLEX,
    "is_conj": COMPLEX, "imag": COMPLEX, "real": COMPLEX, "stft": COMPLEX, "istft": COMPLEX,
    "view_as_complex": COMPLEX, "view_as_real": COMPLEX, "polar": COMPLEX,
    # sparse tensors
    "smm": SPARSE, "sspaddmm": SPARSE, "resize_as_sparse_": SPARSE,
    # quantized-tensor internals
    "q_per_channel_axis": QUANT, "q_per_channel_scales": QUANT,
    "q_per_channel_zero_points": QUANT, "q_scale": QUANT, "q_zero_point": QUANT,
    "int_repr": QUANT, "dequantize": QUANT,
    # override helpers (torch.nn.functional's internals)
    "handle_torch_function": OVERRIDE, "has_torch_function": OVERRIDE,
    "has_torch_function_unary": OVERRIDE, "has_torch_function_variadic": OVERRIDE,
    "boolean_dispatch": OVERRIDE, "assert_int_or_pair": OVERRIDE,
    # deprecated or removed
    "symeig": DEPRECATED, "eig": DEPRECATED, "lstsq": DEPRECATED, "solve": DEPRECATED,
    "matrix_rank": DEPRECATED,
    "upsample": DEPRECATED, "upsample_bilinear": DEPRECATED, "upsample_nearest": DEPRECATED,
    "Container": DEPRECATED, "NLLLoss2d": DEPRECATED,
    # unsafe_*
    "unsafe_chunk": UNSAFE, "unsafe_split": UNSAFE, "unsafe_split_with_sizes": UNSAFE,
}
# names excluded in one list only: torch.linalg.solve / lstsq / matrix_rank are the current
# API (only the torch.* spellings are removed)
_TORCH_ONLY = {"solve", "lstsq", "matrix_rank", "eig"}
# torch.linalg.eig / eigvals return complex tensors for every input
_LINALG_EXCLUDED = {"eig": COMPLEX, "eigvals": COMPLEX}


def _public_functions(mod, require_torch_module: bool) -> list[str]:
    names = []
    for n in dir(mod):
        if n.startswith("_"):
            continue
        v = getattr(mod, n)
        if not callable(v) or inspect.isclass(v) or inspect.ismodule(v):
            continue
        if require_torch_module and not (getattr(v, "__module__", "") or "").startswith("torch"):
            continue  # re-exported helpers (typing, math) are not functional's API
        names.append(n)
    return names


def lists() -> dict[str, list[str]]:
    """The four lists of PyTorch names, before exclusions."""
    import torch
    import torch.nn as tnn
    import torch.nn.functional as tF

    tensor_ops = [n for n in _public_functions(torch, False) if hasattr(torch.Tensor, n)]
    functional = _public_functions(tF, True)
    modules = [n for n in dir(tnn) if inspect.isclass(getattr(tnn, n))
               and issubclass(getattr(tnn, n), tnn.Module)]
    linalg = [n for n in dir(torch.linalg) if not n.startswith("_")
              and callable(getattr(torch.linalg, n))]
    return {"tensor ops": tensor_ops, "functional": functional, "nn modules": modules,
            "linalg": linalg}


def _excluded(list_name: str, name: str) -> bool:
    if list_name == "linalg" and name in _LINALG_EXCLUDED:
        return True
    if name not in EXCLUDED:
        return False
    return not (list_name == "linalg" and name in _TORCH_ONLY)


def implemented(list_name: str, name: str) -> bool:
    """Whether tinyfw has `name` where that list's PyTorch name lives."""
    import tinyfw

    if list_name == "tensor ops":
        return hasattr(tinyfw, name) and hasattr(tinyfw.Tensor, name)
    if list_name == "functional":
        return hasattr(tinyfw.nn.functional, name)
    if list_name == "nn modules":
        return hasattr(tinyfw.nn, name)
    linalg = getattr(tinyfw, "linalg", None)
    return linalg is not None and getattr(linalg, "__name__", "") == "tinyfw.linalg" \
        and hasattr(linalg, name)


def coverage() -> dict[str, dict]:
    """Per list: ``have`` and ``missing`` (names after exclusions) and ``excluded``."""
    out = {}
    for list_name, names in lists().items():
        kept = [n for n in names if not _excluded(list_name, n)]
        have = [n for n in kept if implemented(list_name, n)]
        out[list_name] = {"have": have, "missing": [n for n in kept if n not in have],
                          "excluded": [n for n in names if _excluded(list_name, n)]}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--missing", action="store_true", help="list the missing names")
    args = ap.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("api_coverage: PyTorch is not installed; it is the list being measured "
              "(pip install torch==2.13.0)", file=sys.stderr)
        return 2
    print(f"tinyfw against PyTorch {torch.__version__} (after {len(EXCLUDED)} excluded names)")
    for list_name, c in coverage().items():
        n = len(c["have"]) + len(c["missing"])
        print(f"  {list_name:<11} {len(c['have']):4d} / {n:<4d} {100 * len(c['have']) / n:5.1f}%"
              f"   ({len(c['excluded'])} excluded)")
        if args.missing and c["missing"]:
            print("      missing: " + ", ".join(c["missing"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

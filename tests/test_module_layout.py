"""The files split by idea keep one public face each.

`tinyfw.ops.elementwise`, `tinyfw.optim.lr_scheduler` and `tinyfw.nn.modules.module` define
their contents in private sibling files; users, pickles and reprs must still see every
name at the public path, and the Tensor methods the ops attach must be the same objects.
"""
from __future__ import annotations

import pickle

import pytest

import tinyfw
from tinyfw.nn.modules import module as M
from tinyfw.ops import (_elementwise_activation, _elementwise_binary, _elementwise_unary,
                        elementwise as E)
from tinyfw.optim import _lr_scheduler_composite, _lr_scheduler_simple, lr_scheduler as L

PARTS = [(E, _elementwise_binary), (E, _elementwise_unary), (E, _elementwise_activation),
         (L, _lr_scheduler_simple), (L, _lr_scheduler_composite)]


@pytest.mark.parametrize("public, part", PARTS, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_every_name_is_public_under_its_old_module(public, part):
    for name in part.__all__:
        obj = getattr(part, name)
        assert getattr(public, name) is obj, f"{public.__name__}.{name} is not re-exported"
        assert obj.__module__ == public.__name__, name
        if getattr(public, obj.__qualname__, None) is not obj:
            continue  # made by a factory (eq, Logical_and, ...): not picklable by name,
            # before the split either
        # pickles name the public path, and load back as the very same object
        blob = pickle.dumps(obj)
        assert public.__name__.encode() in blob and b"._elementwise" not in blob
        assert b"_lr_scheduler_" not in blob
        assert pickle.loads(blob) is obj


def test_lr_scheduler_all_is_unchanged():
    assert L.__all__ == ["LRScheduler", "LambdaLR", "StepLR", "MultiStepLR", "ExponentialLR",
                         "CosineAnnealingLR", "LinearLR", "SequentialLR", "OneCycleLR",
                         "ReduceLROnPlateau"]
    assert sorted(L.__all__) == sorted(_lr_scheduler_simple.__all__
                                       + _lr_scheduler_composite.__all__)


def test_tensor_methods_are_the_elementwise_functions():
    t = tinyfw.Tensor
    for name in ("add", "mul", "div", "pow", "exp", "log", "relu", "clamp", "eq",
                 "isfinite", "square", "trunc", "sigmoid"):
        assert getattr(t, name) is getattr(E, name), name
    assert t.__add__ is E.add and t.clip is E.clamp and t.__neg__ is E.neg


def test_module_keeps_its_methods_and_name():
    assert M.Module.__module__ == M.__name__ == "tinyfw.nn.modules.module"
    for name in ("state_dict", "load_state_dict", "to", "float", "double", "half",
                 "bfloat16", "cpu", "train", "register_forward_hook", "named_parameters"):
        assert callable(getattr(M.Module, name)) and getattr(M.Module, name).__doc__, name
    lin = tinyfw.nn.Linear(2, 3)
    keys = lin.load_state_dict(lin.state_dict())
    assert type(keys).__module__ == M.__name__ and repr(keys) == "<All keys matched successfully>"
    assert pickle.loads(pickle.dumps(keys)) == keys
    m = pickle.loads(pickle.dumps(tinyfw.nn.ReLU()))  # a module without parameters pickles
    assert type(m) is tinyfw.nn.ReLU and m.training


# -- no numpy around the backend ---------------------------------------------------------------
# what any device's array offers (tinyfw.backend's array protocol); anything else goes
# through the backend's functions
ARRAY_PROTOCOL = {"shape", "dtype", "ndim", "size", "itemsize", "strides", "device", "backend"}
NUMPY_FREE = ("ops", "autograd")


def _numpy_uses(path) -> list:
    """'line: what' for each numpy import, np./numpy. name, or attribute of a tensor's
    array outside the array protocol (x._data.flags, ...) in one source file."""
    import ast

    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "numpy" for a in node.names):
            found.append(f"{node.lineno}: import numpy")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "numpy":
            found.append(f"{node.lineno}: from numpy import")
        elif isinstance(node, ast.Name) and node.id in ("np", "numpy"):
            found.append(f"{node.lineno}: {node.id}")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) \
                and node.value.attr == "_data" and node.attr not in ARRAY_PROTOCOL:
            found.append(f"{node.lineno}: ._data.{node.attr}")
    return found


@pytest.mark.parametrize("package", NUMPY_FREE)
def test_no_numpy_outside_the_backends(package):
    """tinyfw/ops and tinyfw/autograd reach arrays only through a backend, so that they
    run on any device (issue 9): no numpy import, no np. call, no array attribute beyond
    the protocol every device's array has."""
    from pathlib import Path

    root = Path(tinyfw.__file__).parent / package
    bad = {p.name: _numpy_uses(p) for p in sorted(root.glob("*.py"))}
    bad = {k: v for k, v in bad.items() if v}
    assert not bad, f"numpy reached around the backend in tinyfw/{package}: {bad}"


def test_the_numpy_check_finds_what_it_looks_for(tmp_path):
    p = tmp_path / "sample.py"
    p.write_text("import numpy as np\nfrom numpy import zeros\n"
                 "def f(t):\n    return np.asarray(t._data.flags), t._data.shape\n")
    assert sorted(_numpy_uses(p)) == ["1: import numpy", "2: from numpy import",
                                      "4: ._data.flags", "4: np"]

"""A catalogue of bad inputs: each must raise a Python exception of the right type whose
message names the op and the offending shapes/dtypes/values, before any kernel runs."""
from __future__ import annotations

import numpy as np
import pytest

import tinyfw as tf

F32 = tf.float32


def _m(*shape, **kw):
    return tf.zeros(*shape, **kw)


CASES = [
    # (id, callable, exception type, regex the message must match)
    ("matmul inner dims", lambda: _m(3, 4) @ _m(5, 2), RuntimeError,
     r"matmul: \(3, 4\) @ \(5, 2\): inner dimensions 4 and 5 differ"),
    ("matmul 0-d", lambda: tf.matmul(_m(()), _m(3)), RuntimeError,
     r"matmul: both operands need at least 1 dim.*\(\) and \(3,\)"),
    ("matmul batch broadcast", lambda: _m(2, 3, 4) @ _m(3, 4, 5), RuntimeError,
     r"matmul batch dims: shapes \(2,\) and \(3,\) cannot be broadcast"),
    ("matmul bool", lambda: _m(2, 2, dtype=tf.bool) @ _m(2, 2, dtype=tf.bool), TypeError,
     r"matmul: bool tensors"),
    ("mm needs 2-d", lambda: tf.mm(_m(3), _m(3, 2)), RuntimeError, r"mm: expects 2-d.*\(3,\)"),
    ("bmm batch", lambda: tf.bmm(_m(2, 3, 4), _m(3, 4, 5)), RuntimeError,
     r"bmm: .*\(2, 3, 4\) and \(3, 4, 5\)"),
    ("dot needs 1-d", lambda: tf.dot(_m(2, 2), _m(2)), RuntimeError, r"dot: expects 1-d.*\(2, 2\)"),
    ("linear features", lambda: tf.linear(_m(2, 3), _m(4, 5)), RuntimeError,
     r"linear: input \(2, 3\) has 3 features but weight \(4, 5\) expects 5"),
    ("linear weight 1-d", lambda: tf.linear(_m(2, 3), _m(3)), RuntimeError,
     r"linear: weight must be 2-d.*\(3,\)"),
    ("add broadcast", lambda: _m(2, 3) + _m(4), RuntimeError,
     r"add: shapes \(2, 3\) and \(4,\) cannot be broadcast: dimension -1 is 3 vs 4"),
    ("mul broadcast", lambda: _m(2, 3) * _m(3, 3), RuntimeError, r"mul: shapes \(2, 3\) and \(3, 3\)"),
    ("where broadcast", lambda: tf.where(_m(2, dtype=tf.bool), _m(3), _m(2)), RuntimeError,
     r"where: shapes \(2,\) and \(3,\) and \(2,\) cannot be broadcast"),
    ("where non-bool cond", lambda: tf.where(_m(2), _m(2), _m(2)), TypeError,
     r"where: condition must be a bool tensor, got float32"),
    ("add a string", lambda: _m(2) + "a", TypeError, r"add: expected Tensors or numbers, got str"),
    ("and on floats", lambda: _m(2) & _m(2), TypeError,
     r"bitwise_and: expected integer or bool tensors, got float32"),
    ("int pow negative", lambda: tf.tensor([2, 3]) ** -1, ValueError,
     r"pow: integers to negative integer powers are not allowed"),
    ("int floor_divide by zero", lambda: tf.tensor([1]) // 0, ZeroDivisionError,
     r"floor_divide: integer division by zero"),
    ("int remainder by zero", lambda: tf.tensor([1]) % tf.tensor([0]), ZeroDivisionError,
     r"remainder: integer division by zero"),
    ("atan2 broadcast", lambda: tf.atan2(_m(2, 3), _m(4)), RuntimeError,
     r"atan2: shapes \(2, 3\) and \(4,\) cannot be broadcast: dimension -1 is 3 vs 4"),
    ("div rounding mode", lambda: tf.div(_m(2), _m(2), rounding_mode="up"), ValueError,
     r"div: rounding_mode must be None, 'floor' or 'trunc', got 'up'"),
    ("gelu approximate", lambda: tf.gelu(_m(2), approximate="fast"), ValueError,
     r"gelu: approximate must be 'none' or 'tanh', got 'fast'"),
    ("clamp no bounds", lambda: _m(2).clamp(), ValueError, r"clamp: at least one of min and max"),
    ("sum dim out of range", lambda: _m(2, 3).sum(2), IndexError,
     r"sum: dim 2 is out of range for a tensor with 2 dimensions \(expected -2..1\)"),
    ("sum repeated dim", lambda: _m(2, 3).sum((0, -2)), RuntimeError,
     r"sum: dim \(0, -2\) names a dimension more than once"),
    ("mean of ints", lambda: tf.tensor([1, 2]).mean(), TypeError,
     r"mean: input dtype must be floating point, got int64"),
    ("amax of empty dim", lambda: _m(0, 3).amax(0), IndexError,
     r"amax: cannot reduce over dim 0 of size 0 \(shape \(0, 3\)\)"),
    ("max of empty", lambda: _m(0).max(), IndexError, r"amax: cannot reduce over dim 0 of size 0"),
    ("argmax of empty dim", lambda: _m(2, 0).argmax(1), IndexError, r"argmax: cannot reduce over dim 1"),
    ("var unbiased and correction", lambda: _m(3).var(unbiased=True, correction=0), ValueError,
     r"var: pass either unbiased or correction"),
    ("norm of ints", lambda: tf.tensor([1, 2]).norm(), TypeError, r"norm: input must be floating point, got int64"),
    ("reshape wrong numel", lambda: _m(2, 3).reshape(4, 2), RuntimeError,
     r"reshape: shape \(4, 2\) is invalid for input of shape \(2, 3\) \(6 elements\)"),
    ("reshape two -1", lambda: _m(6).reshape(-1, -1), RuntimeError, r"reshape: invalid shape \(-1, -1\)"),
    ("view bad strides", lambda: _m(3, 4).T.view(12), RuntimeError,
     r"view: shape \(12,\) is not compatible with the strides of the input \(shape \(4, 3\)"),
    ("permute wrong count", lambda: _m(2, 3).permute(0), RuntimeError,
     r"permute: got 1 dims \(0,\) for a tensor with 2 dims \(shape \(2, 3\)\)"),
    ("permute repeated", lambda: _m(2, 3).permute(0, 0), RuntimeError, r"permute: dims \(0, 0\) repeat"),
    ("transpose dim range", lambda: _m(2, 3).transpose(0, 3), IndexError, r"transpose: dim 3 is out of range"),
    ("expand incompatible", lambda: _m(2, 3).expand(2, 4), RuntimeError,
     r"expand: the input's size 3 at dim 1 cannot be expanded to 4"),
    ("expand fewer dims", lambda: _m(2, 3).expand(3), RuntimeError, r"expand: target \(3,\) has fewer dims"),
    ("squeeze dim range", lambda: _m(2, 1).squeeze(2), IndexError, r"squeeze: dim 2 is out of range"),
    ("unsqueeze dim range", lambda: _m(2).unsqueeze(3), IndexError, r"unsqueeze: dim 3 is out of range"),
    ("flatten order", lambda: _m(2, 3, 4).flatten(2, 1), RuntimeError, r"flatten: start_dim 2 comes after end_dim 1"),
    ("index out of bounds", lambda: _m(2, 3)[2], IndexError,
     r"index 2 is out of bounds for dim 0 with size 2 \(tensor shape \(2, 3\)\)"),
    ("too many indices", lambda: _m(2, 3)[0, 0, 0], IndexError, r"too many indices for a tensor of shape \(2, 3\)"),
    ("negative slice step", lambda: _m(4)[::-1], ValueError, r"slice steps must be positive \(got -1\); use flip"),
    ("float index tensor", lambda: _m(4)[tf.tensor([0.0])], IndexError,
     r"index: tensors used as indices must be integer or bool, got float32"),
    ("int array out of range", lambda: _m(3)[tf.tensor([0, 5])], IndexError,
     r"index: index .* does not fit a tensor of shape \(3,\)"),
    ("bool mask shape", lambda: _m(3)[tf.tensor([True, False])], IndexError, r"does not fit a tensor of shape \(3,\)"),
    ("cat shapes", lambda: tf.cat([_m(2, 3), _m(2, 4)]), RuntimeError,
     r"cat: tensor 1 has shape \(2, 4\), which does not match \(2, 3\) except in dim 0"),
    ("cat empty list", lambda: tf.cat([]), ValueError, r"cat: expected a non-empty list"),
    ("cat 0-d", lambda: tf.cat([tf.tensor(1.0), tf.tensor(2.0)]), RuntimeError,
     r"cat: tensor 0 is zero-dimensional"),
    ("stack shapes", lambda: tf.stack([_m(2), _m(3)]), RuntimeError,
     r"stack: tensor 1 has shape \(3,\), tensor 0 has \(2,\)"),
    ("split sections", lambda: _m(5).split([2, 2]), RuntimeError,
     r"split: sections \[2, 2\] sum to 4, but dim 0 has size 5"),
    ("chunk zero", lambda: _m(5).chunk(0), ValueError, r"chunk: chunks must be positive, got 0"),
    ("narrow range", lambda: _m(5).narrow(0, 3, 4), IndexError, r"narrow: range \[3, 7\) is outside dim 0 of size 5"),
    ("pad odd length", lambda: tf.pad(_m(2, 3), (1,)), RuntimeError, r"pad: \(1,\) must have an even length"),
    ("pad mode", lambda: tf.pad(_m(2, 3), (1, 1), mode="reflect"), NotImplementedError,
     r"pad: only mode='constant'.*'reflect'"),
    ("repeat fewer dims", lambda: _m(2, 3).repeat(2), RuntimeError, r"repeat: 1 repeat counts for a tensor with 2 dims"),
    ("gather float index", lambda: _m(2, 3).gather(1, _m(2, 3)), TypeError,
     r"gather: index must be an integer tensor, got float32"),
    ("gather ndim", lambda: _m(2, 3).gather(1, tf.tensor([0, 1])), RuntimeError,
     r"gather: index has 1 dims but the input has 2 \(shapes \(2,\) and \(2, 3\)\)"),
    ("gather out of range", lambda: _m(2, 3).gather(1, tf.tensor([[0, 3]])), IndexError,
     r"gather: index 3 is out of bounds for dim 1 with size 3"),
    ("scatter_add index too big", lambda: _m(2, 3).scatter_add(1, tf.tensor([[0], [1], [0]]), _m(3, 1)), RuntimeError,
     r"scatter_add: index size 3 at dim 0 exceeds the input's 2"),
    ("index_select 2-d index", lambda: _m(3).index_select(0, tf.tensor([[0]])), RuntimeError,
     r"index_select: index must be 1-d, got shape \(1, 1\)"),
    ("masked_fill float mask", lambda: _m(3).masked_fill(_m(3), 1.0), TypeError,
     r"masked_fill: mask must be bool, got float32"),
    ("topk k too big", lambda: _m(3).topk(4), RuntimeError, r"topk: k=4 is out of range for dim 0 of size 3"),
    ("triu 1-d", lambda: _m(3).triu(), RuntimeError, r"triu: needs at least 2 dims, got shape \(3,\)"),
    ("item of many", lambda: _m(3).item(), RuntimeError, r"item\(\): the tensor has 3 elements \(shape \(3,\)\)"),
    ("bool of many", lambda: bool(_m(2)), RuntimeError, r"bool value of a tensor with 2 elements is ambiguous"),
    ("len of 0-d", lambda: len(tf.tensor(1.0)), TypeError, r"len\(\) of a 0-d tensor"),
    ("requires_grad on ints", lambda: tf.tensor([1]).requires_grad_(), RuntimeError,
     r"only floating-point tensors can require gradients, this one is int64"),
    ("unknown dtype", lambda: tf.zeros(2, dtype="complex64"), TypeError, r"unknown dtype 'complex64'"),
    ("negative size", lambda: tf.zeros(2, -1), RuntimeError, r"zeros: negative dimension in size \(2, -1\)"),
    ("arange zero step", lambda: tf.arange(0, 5, 0), RuntimeError, r"arange: step must be non-zero"),
    ("arange wrong direction", lambda: tf.arange(0, 5, -1), RuntimeError, r"arange: the range \[0, 5\) cannot be walked with step -1"),
    ("randint empty range", lambda: tf.randint(5, 5, (2,)), RuntimeError, r"randint: empty range \[5, 5\)"),
    ("ragged list", lambda: tf.tensor([[1, 2], [3]]), ValueError, r"tensor: cannot make a tensor from list"),
    ("cuda device", lambda: _m(2).to("cuda"), RuntimeError, r"device 'cuda'.*CUDA backend is not available"),
    ("unknown device", lambda: tf.zeros(2, device="npu"), ValueError, r"unknown device 'npu'"),
    ("unknown backend", lambda: tf.set_backend("gpu"), ValueError, r"unknown backend 'gpu'; choose one of"),
    ("grad wrong shape", lambda: setattr(tf.zeros(2, requires_grad=True), "grad", _m(3)), RuntimeError,
     r"grad: assigned shape \(3,\) does not match the tensor's shape \(2,\)"),
    ("inplace on leaf", lambda: tf.zeros(2, requires_grad=True).mul_(2), RuntimeError,
     r"mul_: a leaf tensor that requires grad is used in an in-place operation"),
    ("inplace float into int", lambda: tf.tensor([1, 2]).mul_(1.5), RuntimeError,
     r"mul_: result type float32 cannot be cast to the tensor's dtype int64"),
    ("inplace broadcast grows", lambda: _m(3).add_(_m(2, 3)), RuntimeError,
     r"add_: the result's shape \(2, 3\) .* does not match the tensor's shape \(3,\)"),
    ("copy_ shapes", lambda: _m(3).copy_(_m(4)), RuntimeError, r"copy_: source of shape \(4,\) does not broadcast to \(3,\)"),
    ("setitem shape", lambda: _m(2, 3).__setitem__(0, _m(4)), RuntimeError,
     r"__setitem__: cannot assign a value of shape \(4,\) to index 0 of a tensor of shape \(2, 3\)"),
    ("backward non-scalar", lambda: (tf.zeros(2, requires_grad=True) * 2).backward(), RuntimeError,
     r"backward: grad can be implicitly created only for scalar outputs, this one has shape \(2,\)"),
    ("backward no grad", lambda: _m(2).sum().backward(), RuntimeError,
     r"backward: the tensor \(shape \(\)\) does not require grad"),
    ("gradcheck float32", lambda: tf.gradcheck(lambda x: x * 2, (tf.zeros(2, requires_grad=True),)), TypeError,
     r"gradcheck: input 0 is float32; finite differences need float64"),
    ("gradcheck nothing requires grad", lambda: tf.gradcheck(lambda x: x, (_m(2),)), ValueError,
     r"gradcheck: no input requires grad"),
    ("manual_seed float", lambda: tf.manual_seed(1.5), TypeError, r"manual_seed: the seed must be an int, got float"),
    # devices: tensors on two devices in one op, values of dataless or non-CPU tensors
    ("devices mixed", lambda: tf.ones(2, device="cpu") + tf.ones(2, device="check"), RuntimeError,
     r"Add: expected all tensors on one device, got tensors on cpu and check; move them"),
    ("devices mixed matmul", lambda: tf.ones(2, 2, device="check") @ tf.ones(2, 2, device="cpu"),
     RuntimeError, r"Matmul: expected all tensors on one device, got tensors on check and cpu"),
    ("devices mixed index", lambda: tf.ones(3, device="check")[tf.tensor([0, 1], device="cpu")],
     RuntimeError, r"Index: expected all tensors on one device, got tensors on check and cpu"),
    ("devices mixed cat", lambda: tf.cat([tf.ones(2, device="meta"), tf.ones(2, device="cpu")]),
     RuntimeError, r"Cat: expected all tensors on one device, got tensors on meta and cpu"),
    ("devices mixed setitem", lambda: tf.ones(3, device="cpu").__setitem__(0, tf.ones(1, device="check")),
     RuntimeError, r"__setitem__: the value is on device 'check' and the tensor on 'cpu'"),
    ("devices mixed in place", lambda: tf.ones(2, device="check").add_(tf.ones(2, device="cpu")),
     RuntimeError, r"Add: expected all tensors on one device, got tensors on check and cpu"),
    ("numpy of a check tensor", lambda: tf.ones(2, device="check").numpy(), TypeError,
     r"numpy\(\): the tensor is on device 'check'.*\.cpu\(\)"),
    ("numpy of a meta tensor", lambda: tf.ones(2, device="meta").numpy(), TypeError,
     r"numpy\(\): the tensor is on device 'meta'"),
    ("np.asarray of a check tensor", lambda: np.asarray(tf.ones(2, device="check")), TypeError,
     r"cannot convert a tensor on device 'check' to a numpy array; call \.cpu\(\) first"),
    ("item of a meta tensor", lambda: tf.ones(2, device="meta").sum().item(), RuntimeError,
     r"a tensor on the 'meta' device \(shape \(\)\) has no data"),
    ("meta to cpu", lambda: tf.ones(2, device="meta").cpu(), RuntimeError,
     r"'meta' device \(shape \(2,\)\) has no data"),
    ("cuda index not a number", lambda: tf.zeros(2, device="cuda:x"), ValueError,
     r"device 'cuda:x': the index after ':' must be a non-negative integer"),
    ("unknown device tpu", lambda: tf.ones(2).to("tpu"), ValueError,
     r"unknown device 'tpu'; expected one of 'cpu', 'cuda\[:N\]', 'meta', 'check'"),
    ("to cuda:1", lambda: tf.ones(2).to("cuda:1"), RuntimeError,
     r"device 'cuda:1' is not available: .*CUDA backend is not available"),
    ("check device index", lambda: tf.zeros(2, device="check:1"), RuntimeError,
     r"device 'check:1' is not available: the check device has one instance"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_raises_a_clear_error(case):
    _, fn, exc, pattern = case
    with pytest.raises(exc, match=pattern):
        fn()


def test_catalogue_is_large_enough():
    assert len(CASES) >= 40


def test_zero_dim_cpu_tensors_and_numbers_join_any_device():
    """As in PyTorch: a Python number or a 0-d CPU tensor is moved to the other operands'
    device, and a 0-d CPU leaf gets its gradient back on the CPU."""
    for dev in ("check", "meta"):
        x = tf.ones(3, device=dev, requires_grad=True)
        w = tf.tensor(2.0, requires_grad=True, device="cpu")
        y = (x * w + 1.5).sum() + tf.tensor(0.5, device="cpu")
        assert y.device == tf.device(dev)
        if dev == "check":
            y.backward()
            assert x.grad.device == tf.device("check") and x.grad.tolist() == [2.0] * 3
            assert w.grad.device == tf.device("cpu") and w.grad.item() == 3.0
        assert tf.where(x > 0, x, tf.tensor(0.0, device="cpu")).device == tf.device(dev)


def test_errors_leave_no_partial_state():
    """A rejected in-place op must not have written anything or bumped the version."""
    x = tf.tensor([1, 2, 3])
    with pytest.raises(RuntimeError):
        x.mul_(1.5)
    assert x.tolist() == [1, 2, 3] and x._version[0] == 0
    y = tf.zeros(3)
    with pytest.raises(RuntimeError):
        y.add_(tf.ones(2, 3))
    assert y.tolist() == [0.0, 0.0, 0.0] and y._version[0] == 0

"""Issue 16: nn.SyncBatchNorm.  Two ranks (the launcher, shm backend) each normalise
their half of a batch; the outputs, the input gradients of the summed loss, the
parameter gradients (summed over ranks) and the running statistics must be those of one
BatchNorm2d over the whole batch."""
from __future__ import annotations

import json

import numpy as np
import pytest

import tinyfw
import tinyfw.distributed
from dist_util import launch, write_script
from helpers import npy

pytestmark = pytest.mark.skipif(not tinyfw.distributed.is_available(),
                                reason="tinyfw.distributed is not available here")

WORKER = """
import json
import numpy as np
rng = np.random.default_rng(0)
x = rng.standard_normal((6, 3, 2, 2))
g = rng.standard_normal((6, 3, 2, 2))
rows = [slice(0, 4), slice(4, 6)][r]  # uneven halves: the counts must be global
bn = tf.nn.SyncBatchNorm(3, momentum=0.3).to(tf.float64)
with tf.no_grad():
    bn.weight.copy_(tf.tensor([1.0, 2.0, -0.5], dtype=tf.float64))
    bn.bias.copy_(tf.tensor([0.1, 0.0, 0.3], dtype=tf.float64))
xi = tf.tensor(x[rows], requires_grad=True)
y = bn(xi)
(y * tf.tensor(g[rows])).sum().backward()
# one file per rank: two ranks' long lines on one shared stdout pipe can interleave
with open(os.environ["OUT_DIR"] + f"/rank{r}.json", "w") as f:
    json.dump({"rank": r, "y": y.detach().numpy().tolist(), "gx": xi.grad.numpy().tolist(),
               "gw": bn.weight.grad.numpy().tolist(), "gb": bn.bias.grad.numpy().tolist(),
               "rm": bn.running_mean.numpy().tolist(), "rv": bn.running_var.numpy().tolist()}, f)
"""


def test_sync_batchnorm_over_two_ranks_is_batchnorm_over_the_whole_batch(tmp_path):
    out = launch(2, write_script(tmp_path, WORKER), DIST_TIMEOUT=60, timeout=120,
                 OUT_DIR=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    res = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    rng = np.random.default_rng(0)
    x, g = rng.standard_normal((6, 3, 2, 2)), rng.standard_normal((6, 3, 2, 2))
    bn = tinyfw.nn.BatchNorm2d(3, momentum=0.3).to(tinyfw.float64)
    with tinyfw.no_grad():
        bn.weight.copy_(tinyfw.tensor([1.0, 2.0, -0.5], dtype=tinyfw.float64))
        bn.bias.copy_(tinyfw.tensor([0.1, 0.0, 0.3], dtype=tinyfw.float64))
    xt = tinyfw.tensor(x, requires_grad=True)
    y = bn(xt)
    (y * tinyfw.tensor(g)).sum().backward()
    tol = dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.concatenate([res[0]["y"], res[1]["y"]]), npy(y), **tol)
    np.testing.assert_allclose(np.concatenate([res[0]["gx"], res[1]["gx"]]), npy(xt.grad), **tol)
    np.testing.assert_allclose(np.add(res[0]["gw"], res[1]["gw"]), npy(bn.weight.grad), **tol)
    np.testing.assert_allclose(np.add(res[0]["gb"], res[1]["gb"]), npy(bn.bias.grad), **tol)
    for d in res:
        np.testing.assert_allclose(d["rm"], npy(bn.running_mean), **tol)
        np.testing.assert_allclose(d["rv"], npy(bn.running_var), **tol)


def test_sync_batchnorm_without_a_group_is_batchnorm():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 3, 5))
    sb, bn = tinyfw.nn.SyncBatchNorm(3), tinyfw.nn.BatchNorm1d(3)
    a, b = sb(tinyfw.tensor(x, dtype=tinyfw.float32)), bn(tinyfw.tensor(x, dtype=tinyfw.float32))
    assert np.array_equal(npy(a), npy(b))
    assert np.array_equal(npy(sb.running_var), npy(bn.running_var))


def test_convert_sync_batchnorm_keeps_parameters_and_statistics():
    m = tinyfw.nn.Sequential(tinyfw.nn.Conv2d(2, 3, 1), tinyfw.nn.BatchNorm2d(3),
                             tinyfw.nn.Sequential(tinyfw.nn.BatchNorm1d(3)))
    w = m[1].weight
    with tinyfw.no_grad():
        m[1].running_mean.fill_(0.5)
    out = tinyfw.nn.SyncBatchNorm.convert_sync_batchnorm(m)
    assert isinstance(out[1], tinyfw.nn.SyncBatchNorm) and out[1].weight is w
    assert isinstance(out[2][0], tinyfw.nn.SyncBatchNorm)
    assert float(out[1].running_mean[0]) == 0.5
    assert list(out.state_dict()) == list(m.state_dict())
    with pytest.raises(ValueError, match="process_group=None"):
        tinyfw.nn.SyncBatchNorm(3, process_group=object())

"""The shm backend's kernels (tinyfw/distributed/_kernels.py, csrc/collective.cpp): the
C++ rank sum against its numpy definition bit for bit (IEEE additions and one division,
correctly rounded on every machine), their errors, the GIL-free wait for a shared word;
and DDP's shared buckets falling back to the ring, with a warning, when rank 0 cannot
get their memory."""
import threading
import time

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from dist_util import launch, write_script
from tinyfw.backend.cpu import _C
from tinyfw.distributed import _kernels as KD
from tinyfw.dtypes import bfloat16

IMPLS = [pytest.param(KD.sum_into_ref, id="ref"),
         pytest.param(getattr(_C, "sum_into", None), id="cpu", marks=pytest.mark.skipif(
             _C is None, reason="tinyfw._C is not built (python setup.py build_ext --inplace)"))]
WAITS = [pytest.param(KD.wait_word_ge_ref, id="ref"),
         pytest.param(getattr(_C, "wait_word_ge", None), id="cpu", marks=pytest.mark.skipif(
             _C is None, reason="tinyfw._C is not built"))]
DTYPES = [np.float32, np.float64, np.float16, bfloat16.np]


def _exact(ins, divisor, dtype):
    """The definition in float64 arithmetic, exact for these inputs' sums in float32 order:
    each partial sum rounded to the compute type, as the kernel must."""
    ct = np.float64 if dtype == np.float64 else np.float32
    acc = ins[0].astype(ct)
    for a in ins[1:]:
        acc = (acc.astype(np.float64) + a.astype(np.float64)).astype(ct)  # one rounding
    if divisor != 1:
        acc = (acc.astype(np.float64) / divisor).astype(ct) if ct is np.float32 else acc / divisor
    return acc.astype(dtype)


@pytest.mark.skipif(_C is None, reason="tinyfw._C is not built")
@settings(max_examples=60, deadline=None)
@given(dt=st.sampled_from(DTYPES), n=st.integers(1, 4), size=st.integers(0, 2500),
       avg=st.booleans(), alias=st.booleans(), two=st.booleans(), seed=st.integers(0, 999))
def test_sum_into_cpu_equals_its_definition(dt, n, size, avg, alias, two, seed):
    rng = np.random.default_rng(seed)
    ins = [(rng.standard_normal(size) * 10.0 ** rng.integers(-3, 4, size)).astype(dt)
           for _ in range(n)]
    if size:
        ins[0][0] = np.inf if n == 1 else ins[0][0]  # specials go through unchanged
    want = _exact(ins, float(n) if avg else 1.0, dt)
    outs_c = [ins[0].copy() if alias else np.empty(size, dt)]
    outs_r = [outs_c[0].copy()]
    ins_c = [outs_c[0]] + [a.copy() for a in ins[1:]] if alias else [a.copy() for a in ins]
    ins_r = [outs_r[0]] + [a.copy() for a in ins[1:]] if alias else [a.copy() for a in ins]
    if two:
        outs_c.append(np.empty(size, dt))
        outs_r.append(np.empty(size, dt))
    _C.sum_into(outs_c, ins_c, float(n) if avg else 1.0)
    KD.sum_into_ref(outs_r, ins_r, float(n) if avg else 1.0)
    for oc, orf in zip(outs_c, outs_r):
        assert oc.tobytes() == orf.tobytes() == want.tobytes()


@pytest.mark.parametrize("impl", IMPLS)
def test_sum_into_errors_name_the_problem(impl):
    a, b = np.ones(8, np.float32), np.ones(8, np.float32)
    with pytest.raises(ValueError, match="floating"):
        impl([np.ones(4, np.int32)], [np.ones(4, np.int32)])
    with pytest.raises(ValueError, match="differ"):
        impl([a], [a, np.ones(8, np.float64)])
    with pytest.raises(ValueError, match="differ"):
        impl([a], [a, np.ones(9, np.float32)])
    with pytest.raises(ValueError, match="contiguous"):
        impl([a], [a, np.ones(16, np.float32)[::2]])
    with pytest.raises(ValueError, match="divisor"):
        impl([a], [a, b], 0.0)
    with pytest.raises(ValueError, match="at least one"):
        impl([], [a])
    if impl is not KD.sum_into_ref:  # numpy copies first, so overlap is harmless there
        big = np.ones(16, np.float32)
        with pytest.raises(ValueError, match="overlap"):
            impl([big[1:9]], [big[:8], b])


@pytest.mark.parametrize("impl", WAITS)
def test_wait_word_ge(impl):
    ctl = np.zeros(4, np.int64)
    ctl[2] = 5
    assert impl(ctl, 2, 5, 0.0, 0.0) is True
    t0 = time.monotonic()
    assert impl(ctl, 1, 1, 0.03, 0.01) is False
    assert time.monotonic() - t0 >= 0.03
    # another Python thread sets the word while this one waits: it can only run if the
    # wait gives up the GIL
    setter = threading.Timer(0.01, lambda: ctl.__setitem__(1, 7))
    setter.start()
    assert impl(ctl, 1, 7, 5.0, 0.001) is True
    setter.join()


@pytest.mark.skipif(_C is None, reason="tinyfw._C is not built")
def test_wait_word_ge_checks_its_array():
    with pytest.raises(ValueError, match="int64"):
        _C.wait_word_ge(np.zeros(4, np.int32), 0, 1, 0.0, 0.0)
    with pytest.raises(ValueError, match="range"):
        _C.wait_word_ge(np.zeros(4, np.int64), 4, 1, 0.0, 0.0)


SHM_FULL = """
import warnings
import numpy as np
from tinyfw.nn.parallel import DistributedDataParallel as DDP
if r == 0:
    def full(fd, off, size):
        raise OSError(28, "No space left on device")
    os.posix_fallocate = full
tf.manual_seed(0)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    model = DDP(tf.nn.Linear(4, 3))
assert model._reducer.shared is None
assert any("could not make" in str(w.message) and "ring" in str(w.message) for w in caught)
x = tf.tensor(np.full((2, 4), float(r + 1), np.float32))
model(x).sum().backward()
sys.stdout.write(f"grad {model.module.weight.grad.numpy()[0].tolist()}\\n")  # one write
"""


def test_ddp_falls_back_to_the_ring_when_shm_is_full(tmp_path):
    proc = launch(2, write_script(tmp_path, SHM_FULL), DIST_TIMEOUT=30)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    grads = [ln for ln in proc.stdout.splitlines() if ln.startswith("grad")]
    # d(sum)/dW = column sums of x: 2 rows of (r + 1), averaged over ranks 1 and 2
    assert len(grads) == 2 and all(g == "grad [3.0, 3.0, 3.0, 3.0]" for g in grads), grads

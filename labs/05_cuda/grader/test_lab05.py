"""Lab 5's grader: links the student's kernels.cu with the given harness (harness.cu) and
runs it on the CUDA emulator (tinyfw/labs/cuda/cuda_emu.h: races and divergent barriers
show deterministically), and also on the GPU when nvidia-smi finds one and nvcc is on
PATH; wherever nvcc is on PATH the file must compile with it too.  Results are compared
with float64 references within stated bounds (or exactly, on data whose float32 sums are
exact); the tiled GEMM's speed is graded on a GPU only."""
from __future__ import annotations

import math
import os
import pathlib

import numpy as np
import pytest

from tinyfw.labs import SRC_ENV, cudabuild
from tinyfw.labs.student import seed

HERE = pathlib.Path(__file__).resolve().parent
SKELETON = HERE.parent / "skeleton"
HARNESS = HERE / "harness.cu"
_DEFAULT = cudabuild.backend()
BACKENDS = ["emu"] + (["gpu"] if _DEFAULT.name == "gpu" else [])
U = 2.0 ** -24  # float32's unit roundoff
SPEEDUP = 1.25  # tiled over naive at 1024^3 on a GPU (why this value: README.md, Grading)
NAN_HINT = (" (NaN: a read of a shared cell not yet written, or past an input's end, or an "
            "output element never written?)")


class Lab5:
    """The student's kernels behind the harness's entry points, run in a worker process."""

    def __init__(self, backend: cudabuild.Backend, lib: pathlib.Path):
        self.backend = backend
        self.worker = cudabuild.Worker(lib, timeout=30.0)

    def reduce(self, which: str, x: np.ndarray) -> float:
        x = np.ascontiguousarray(x, np.float32)
        out = np.zeros(1, np.float32)
        fn = {"reduce_sum": 0, "reduce_sum_warp": 1}[which]
        res = self.worker.call("lab5_reduce", fn, x, x.size, out, seed("emu order"))
        return float(res[1][0])

    def gemm(self, which: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        (m, k), n = a.shape, b.shape[1]
        c = np.empty((m, n), np.float32)
        fn = {"gemm_naive": 0, "gemm_tiled": 1}[which]
        return self.worker.call("lab5_gemm", fn, a, b, c, m, n, k, seed("emu order"))[2]

    def time_gemm(self, which: str, a: np.ndarray, b: np.ndarray, reps: int):
        """(milliseconds of each launch, the result): GPU only."""
        (m, k), n = a.shape, b.shape[1]
        c, ms = np.empty((m, n), np.float32), np.zeros(reps, np.float32)
        fn = {"gemm_naive": 0, "gemm_tiled": 1}[which]
        res = self.worker.call("lab5_time_gemm", fn, a, b, c, m, n, k, reps, ms)
        return [float(t) for t in res[3]], res[2]

    def counters(self) -> dict:
        """What the emulator did since the last call: launches, blocks, barriers, shuffles."""
        got = self.worker.call("lab5_emu_counters", np.zeros(4, np.int64))[0]
        return dict(zip(("launches", "blocks", "barriers", "shuffles"), map(int, got)))


def _src() -> pathlib.Path:
    return pathlib.Path(os.environ.get(SRC_ENV) or SKELETON)


@pytest.fixture(scope="module")
def nvcc_ok():
    # the emulator accepts some code that nvcc rejects: a CUDA lab must compile with nvcc
    if cudabuild.nvcc():
        cudabuild.nvcc_check(_src() / "kernels.cu")


@pytest.fixture(scope="module", params=BACKENDS)
def K(request, nvcc_ok):
    be = _DEFAULT if request.param == _DEFAULT.name else cudabuild.Backend("emu", "next to the GPU")
    lib = cudabuild.build([_src() / "kernels.cu", HARNESS], _src() / "build", "lab5", be)
    lab = Lab5(be, lib)
    yield lab
    lab.worker.close()


def _exact_data(rng, n: int) -> np.ndarray:
    """n multiples of 1/8 whose magnitudes add up to at most 2^18: every partial sum, in any
    order, is a multiple of 1/8 below 2^21, exact in float32, so the sum has one right answer."""
    kmax = max(1, min(64, 2 ** 21 // max(n, 1)))
    return (rng.integers(-kmax, kmax + 1, n) / 8).astype(np.float32)


def _sizes(rng) -> list:
    """Sizes around the block size (256) and the grid's, one drawn per student."""
    return [1, 2, 31, 32, 33, 255, 256, 257, 1000, 4097, 256 * 1024 + 3,
            int(rng.integers(5000, 70000))]


def _check_sum(got: float, x: np.ndarray, what: str, exact: bool) -> None:
    want = math.fsum(x.astype(np.float64))  # correctly rounded in float64
    n = x.size
    # any order of summation: |error| <= gamma(n-1) * sum|x|, gamma(k) = k u / (1 - k u)
    # (Higham, Accuracy and Stability, 4.3); the float64 reference's own error is smaller
    # than 2^-52 * sum|x| and is added
    gamma = (n - 1) * U / (1 - (n - 1) * U)
    tol = 0.0 if exact else (gamma + 2.0 ** -52) * float(np.abs(x.astype(np.float64)).sum())
    if not abs(got - want) <= tol:
        kind = "exactly representable sums" if exact else "random floats"
        hint = NAN_HINT if math.isnan(got) else (
            f" (off by {got - want:g}: an element missed or counted twice?)" if exact else "")
        raise AssertionError(f"{what} of n = {n} ({kind}): got {got!r}, expected {want!r}"
                             + (f" within {tol:.3g}" if tol else "") + hint)


def _check_product(got: np.ndarray, a: np.ndarray, b: np.ndarray, what: str) -> None:
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    want, mag, k = a64 @ b64, np.abs(a64) @ np.abs(b64), a.shape[1]
    # each element is a k-term dot product: |error| <= gamma(k) * (|A| |B|)[i, j], in any
    # order and with or without fused multiply-adds (plus the float64 reference's error)
    tol = (k * U / (1 - k * U) + 2.0 ** -50) * mag
    if got.shape != want.shape:
        raise AssertionError(f"{what}: shape {got.shape}, expected {want.shape}")
    bad = ~(np.abs(got.astype(np.float64) - want) <= tol)
    if bad.any():
        i, j = (int(v) for v in np.argwhere(bad)[0])
        raise AssertionError(f"{what}: C[{i}, {j}] is {float(got[i, j])!r}, expected "
                             f"{float(want[i, j])!r} within {tol[i, j]:.3g} "
                             f"({int(bad.sum())} of {bad.size} elements wrong)"
                             + (NAN_HINT if np.isnan(got[i, j]) else ""))


# -- 5.1 and 5.2: the reductions ------------------------------------------------------------
def _reduce_exact(K, which, task):
    rng = np.random.default_rng(seed(task))
    sizes = _sizes(rng) + ([2 ** 24 - 5] if K.backend.name == "gpu" else [])
    for n in sizes:
        x = _exact_data(rng, n)
        _check_sum(K.reduce(which, x), x, f"{which} on {K.backend.name}", exact=True)


def _reduce_floats(K, which, task):
    rng = np.random.default_rng(seed(task + "f"))
    for n in (100, 10_000, int(rng.integers(20_000, 60_000))):
        x = rng.standard_normal(n).astype(np.float32)
        _check_sum(K.reduce(which, x), x, f"{which} on {K.backend.name}", exact=False)


def _reduce_empty(K, which):
    got = K.reduce(which, np.zeros(0, np.float32))
    if got != 0.0:
        raise AssertionError(f"{which} of no elements: got {got!r}, expected 0.0")


@pytest.mark.task("5.1")
def test_sum_is_exact_on_exact_data(K):
    _reduce_exact(K, "reduce_sum", "5.1")


@pytest.mark.task("5.1")
def test_sum_of_random_floats_is_within_the_bound(K):
    _reduce_floats(K, "reduce_sum", "5.1")


@pytest.mark.task("5.1")
def test_sum_of_nothing_is_zero(K):
    _reduce_empty(K, "reduce_sum")


@pytest.mark.task("5.2")
def test_warp_sum_is_exact_on_exact_data(K):
    _reduce_exact(K, "reduce_sum_warp", "5.2")


@pytest.mark.task("5.2")
def test_warp_sum_of_random_floats_and_of_nothing(K):
    _reduce_floats(K, "reduce_sum_warp", "5.2")
    _reduce_empty(K, "reduce_sum_warp")


@pytest.mark.task("5.2")
@pytest.mark.parametrize("K", ["emu"], indirect=True)
def test_warp_sum_shuffles(K):
    K.counters()
    K.reduce("reduce_sum_warp", np.ones(5000, np.float32))
    got = K.counters()
    if got["shuffles"] == 0:
        raise AssertionError("reduce_sum_warp made no warp shuffle (__shfl_down_sync): the task "
                             "is to finish each block's sum in one warp with shuffles")


# -- 5.3 and 5.4: the products --------------------------------------------------------------
SHAPES = [(1, 1, 1), (3, 5, 2), (17, 33, 9), (64, 40, 70), (33, 1, 65), (1, 64, 31),
          (32, 32, 32), (33, 31, 65), (100, 65, 47)]


def _products(K, which, task):
    rng = np.random.default_rng(seed(task))
    drawn = tuple(int(v) for v in rng.integers(1, 130, 3))
    for m, n, k in SHAPES + [drawn]:
        a = rng.standard_normal((m, k)).astype(np.float32)
        b = rng.standard_normal((k, n)).astype(np.float32)
        _check_product(K.gemm(which, a, b), a, b,
                       f"{which} on {K.backend.name} of ({m}, {k}) @ ({k}, {n})")


def _products_exact(K, which, task):
    # small integers: every product and partial sum is exact, so C must be exactly A @ B
    rng = np.random.default_rng(seed(task + "x"))
    m, n, k = (int(v) for v in rng.integers(40, 140, 3))
    a = rng.integers(-4, 5, (m, k)).astype(np.float32)
    b = rng.integers(-4, 5, (k, n)).astype(np.float32)
    got, want = K.gemm(which, a, b), a.astype(np.float64) @ b
    if not np.array_equal(got, want):
        i, j = (int(v) for v in np.argwhere(got != want)[0])
        raise AssertionError(f"{which} on {K.backend.name} of integer ({m}, {k}) @ ({k}, {n}): "
                             f"C[{i}, {j}] is {float(got[i, j])!r}, expected {float(want[i, j])!r}"
                             + (NAN_HINT if np.isnan(got[i, j]) else ""))


@pytest.mark.task("5.3")
def test_naive_product(K):
    _products(K, "gemm_naive", "5.3")


@pytest.mark.task("5.3")
def test_naive_product_is_exact_on_integers(K):
    _products_exact(K, "gemm_naive", "5.3")


@pytest.mark.task("5.4")
def test_tiled_product(K):
    _products(K, "gemm_tiled", "5.4")


@pytest.mark.task("5.4")
def test_tiled_product_is_exact_on_integers(K):
    _products_exact(K, "gemm_tiled", "5.4")


@pytest.mark.task("5.4")
@pytest.mark.parametrize("K", ["emu"], indirect=True)
def test_tiled_product_synchronises_its_tiles(K):
    K.counters()
    a = np.ones((40, 70), np.float32)
    K.gemm("gemm_tiled", a, a.T.copy())
    if K.counters()["barriers"] == 0:
        raise AssertionError("gemm_tiled ran no __syncthreads(): a tiled kernel loads tiles into "
                             "shared memory and must wait for them before reading")


@pytest.mark.task("5.4")
@pytest.mark.parametrize("K", BACKENDS[-1:], indirect=True)  # the GPU if there is one
def test_tiled_is_faster_than_naive_on_a_gpu(K, record_property):
    if K.backend.name != "gpu":
        pytest.skip(f"speed is graded on a GPU only ({_DEFAULT.why}); here 5.4's correctness "
                    "tests carry its points")
    n = 1024
    rng = np.random.default_rng(seed("5.4t"))
    a, b = (rng.standard_normal((n, n)).astype(np.float32) for _ in range(2))
    times = {"gemm_naive": [], "gemm_tiled": []}
    for _ in range(3):  # interleaved, medians
        for which in times:
            ms, c = K.time_gemm(which, a, b, reps=5)
            times[which] += ms
    _check_product(c, a, b, f"gemm_tiled on the GPU at {n}^3")
    naive, tiled = (float(np.median(times[w])) for w in times)
    gflops = {w: 2 * n ** 3 / (float(np.median(t)) * 1e-3) / 1e9 for w, t in times.items()}
    text = (f"{K.backend.why}, {n}^3: gemm_tiled {tiled:.3f} ms ({gflops['gemm_tiled']:.0f} "
            f"GFLOP/s), gemm_naive {naive:.3f} ms ({gflops['gemm_naive']:.0f} GFLOP/s): "
            f"{naive / tiled:.2f}x")
    record_property("note", text)
    if not naive >= SPEEDUP * tiled:
        raise AssertionError(f"{text}; need {SPEEDUP}x")

#!/usr/bin/env bash
# The one command a session with a lent GPU runs (issue 13): build tinyfw with the CUDA
# kernels, run the CUDA tests (the conformance tables' cuda cases and tests/test_cuda_*.py)
# and the CUDA benchmarks, grade lab 5's solution on the GPU, and print one report.
# Budget: under 8 minutes on an H100 machine (16 cores); each step has its own time limit.
# Exits non-zero when the build, a test or a benchmark's correctness check fails, or lab 5's
# solution loses points (a missed benchmark speed target is reported, not a failure).
#
#   bash benchmarks/gpu_check.sh            # report on stdout; logs in $OUT or /tmp/gpu_check
#
# Python packages the tests need beyond numpy/torch/pybind11 (ml_dtypes, scipy, pytest,
# hypothesis) are installed offline from .gpu_deps/wheels when missing: fill that folder
# on a connected machine with benchmarks/gpu_deps.sh and carry it with the run.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
LOG=${OUT:-/tmp/gpu_check}
mkdir -p "$LOG"
t0=$(date +%s)
status=0
step() { echo; echo "== $1 ($(( $(date +%s) - t0 )) s)"; }

step "device"
nvidia-smi --query-gpu=name,memory.total,clocks.max.memory,driver_version --format=csv,noheader 2>&1 | head -4
$PY -c "import sys, numpy, torch; print('python', sys.version.split()[0], '| numpy', numpy.__version__, '| torch', torch.__version__, '| torch.cuda', torch.cuda.is_available())"

step "python packages"
if ! $PY -c "import ml_dtypes, scipy, pytest, hypothesis" 2>/dev/null; then
    if [ -d .gpu_deps/wheels ]; then
        $PY -m pip install -q --no-index --no-deps --target .gpu_deps/site .gpu_deps/wheels/*.whl \
            > "$LOG/pip.log" 2>&1 || { echo "offline install failed:"; tail -5 "$LOG/pip.log"; }
        export PYTHONPATH="$PWD/.gpu_deps/site${PYTHONPATH:+:$PYTHONPATH}"
    fi
fi
$PY -c "import ml_dtypes, scipy, pytest, hypothesis; print('ok: ml_dtypes scipy pytest hypothesis')" \
    || { echo "missing packages: run benchmarks/gpu_deps.sh on a connected machine and carry .gpu_deps"; exit 3; }

step "build (TINYFW_CUDA=1, sm_${TINYFW_CUDA_ARCH:-90})"
export TINYFW_CUDA=1 TINYFW_CUDA_ARCH=${TINYFW_CUDA_ARCH:-90}
if ! timeout 300 $PY setup.py build_ext --inplace > "$LOG/build.log" 2>&1; then
    echo "BUILD FAILED"; grep -E "error|Error" "$LOG/build.log" | head -30; tail -20 "$LOG/build.log"; exit 1
fi
grep -E "^nvcc:" "$LOG/build.log" || echo "(CUDA objects up to date)"
$PY -c "import tinyfw; print('cuda available:', tinyfw.cuda.is_available(), tinyfw.cuda.unavailable_reason() or tinyfw.cuda.get_device_name())"

step "CUDA tests"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if ! timeout 240 $PY -m pytest -q -p no:cacheprovider -x --hypothesis-seed=0 \
        tests/test_cuda_device.py tests/test_cuda_setup.py "tests/test_conformance.py" -k "cuda or test_cuda" \
        > "$LOG/tests.log" 2>&1; then
    status=1
    echo "TESTS FAILED"; grep -E "^(FAILED|ERROR)|Error|assert" "$LOG/tests.log" | head -40
fi
tail -3 "$LOG/tests.log"

step "benchmarks"
if ! timeout 150 $PY benchmarks/bench_cuda.py --json "$LOG/bench_cuda.json" > "$LOG/bench.log" 2>&1; then
    status=1
    echo "BENCHMARK FAILED"
fi
cat "$LOG/bench.log" | tail -15

step "lab 5 graded on the GPU (the CUDA lab's solution: full marks, and its speed note)"
# the grader also reruns every test on the CUDA emulator; about a minute in all
if ! timeout 150 $PY -m tinyfw.labs grade 5 --src labs/_solutions/05_cuda --student gpu_check \
        > "$LOG/lab5.log" 2>&1; then
    status=1
    echo "LAB 5 SOLUTION LOST POINTS (if only 5.4's speed test: calibrate SPEEDUP in labs/05_cuda/grader/test_lab05.py)"
fi
tail -16 "$LOG/lab5.log"

step "done: status $status, $(( $(date +%s) - t0 )) s; logs in $LOG"
exit $status

#!/usr/bin/env bash
# Fill .gpu_deps/wheels with the Python 3.12 wheels gpu_check.sh needs on a GPU machine
# that has numpy/torch/pybind11 but no network: ml_dtypes, scipy, pytest, hypothesis
# (numpy itself is not replaced: --no-deps at install).  About 39 MB: carry .gpu_deps.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
$PY -m pip download -q --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
    ml_dtypes scipy pytest hypothesis -d .gpu_deps/wheels
rm -f .gpu_deps/wheels/numpy-*.whl
du -sh .gpu_deps/wheels

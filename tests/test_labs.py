"""The lab kit's graders are tested (issue 17): for every lab, the reference solution gets
full marks, the untouched skeleton gets zero, and each planted bug loses marks in the task
it belongs to (tinyfw/labs/selfcheck.py; each grading is a fresh process, as a student's).
Lab 5 (CUDA) runs here on the CUDA emulator when there is no GPU."""
from __future__ import annotations

import pathlib
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from tinyfw import labs as L
from tinyfw.labs import cudabuild, selfcheck

LABS = L.labs()
# each grading is a fresh process running a whole grader: end-to-end, so CI runs these once
slow = pytest.mark.slow


@slow
@pytest.mark.parametrize("lab", LABS, ids=lambda x: x.path.name)
def test_the_solution_gets_full_marks(lab):
    res = selfcheck.grade_json(lab.number, lab.solution)
    assert res["score"] == res["total"] == sum(t.points for t in lab.tasks), res


@slow
@pytest.mark.parametrize("lab", LABS, ids=lambda x: x.path.name)
def test_the_skeleton_gets_zero(lab):
    res = selfcheck.grade_json(lab.number, lab.skeleton)
    assert res["score"] == 0 and res["total"] == sum(t.points for t in lab.tasks), res


@slow
@pytest.mark.parametrize("lab", LABS, ids=lambda x: x.path.name)
def test_every_task_has_a_planted_bug_that_its_grader_catches(lab, tmp_path):
    bugs = selfcheck.bugs(lab)
    assert {b[0] for b in bugs} == {t.id for t in lab.tasks}, "a task without a planted bug"
    for k, bug in enumerate(bugs):
        src = selfcheck.with_bug(lab, bug, tmp_path / str(k))
        r = selfcheck.grade_json(lab.number, src, task=bug[0])["tasks"][bug[0]]
        assert r["failed"] > 0, f"the grader of task {bug[0]} misses the bug: {bug[4]}"
        assert r["first_failure"], f"task {bug[0]} failed without a message"


def test_export_holds_handouts_and_skeletons_only(tmp_path):
    from tinyfw.labs.__main__ import export

    out = tmp_path / "labs.zip"
    names = export(out)
    with zipfile.ZipFile(out) as z:
        listed = z.namelist()
    assert sorted(listed) == sorted(names)
    assert not [n for n in listed if "_solutions" in n or "/grader/" in n or "/build/" in n]
    for lab in LABS:
        assert f"labs/{lab.path.name}/README.md" in listed
        assert any(n.startswith(f"labs/{lab.path.name}/skeleton/") for n in listed)


def test_grade_errors_name_the_problem():
    out = subprocess.run([sys.executable, "-m", "tinyfw.labs", "grade", "99"], capture_output=True,
                         text=True, timeout=120, cwd=L.ROOT)
    assert out.returncode == 2 and "no lab 99" in out.stderr
    out = subprocess.run([sys.executable, "-m", "tinyfw.labs", "grade", "1", "--task", "1.9"],
                         capture_output=True, text=True, timeout=120, cwd=L.ROOT)
    assert out.returncode == 2 and "no task 1.9" in out.stderr


def test_the_tinyfw_lab_command_is_installed():
    exe = pathlib.Path(sys.executable).parent / "tinyfw-lab"
    if not exe.exists():
        pytest.skip("tinyfw is not pip-installed in this interpreter's environment (no "
                    "tinyfw-lab next to it): pip install -e .")
    out = subprocess.run([str(exe), "list"], capture_output=True, text=True, timeout=120,
                         cwd=L.ROOT)
    assert out.returncode == 0, out.stderr
    for lab in LABS:
        assert f"{lab.number:2d}  {lab.title}" in out.stdout
    out = subprocess.run([str(exe), "grade", "99"], capture_output=True, text=True,
                         timeout=120, cwd=L.ROOT)
    assert out.returncode == 2 and "no lab 99" in out.stderr


@pytest.mark.skipif(cudabuild.nvcc() is None, reason="nvcc is not on PATH")
def test_lab5_solution_builds_with_nvcc_for_the_gpu(tmp_path, monkeypatch):
    """The GPU back end's build of lab 5 (nvcc, the harness linked, no undefined symbol);
    without a GPU a call reports CUDA's error instead of crashing, with one it is right."""
    lab = L.lab(5)
    cudabuild.nvcc_check(lab.solution / "kernels.cu")
    if cudabuild.gpu_name() is None:  # nvcc's -arch=native needs a GPU to look at
        monkeypatch.setenv(cudabuild.ARCH_ENV, "90")
    lib = cudabuild.build([lab.solution / "kernels.cu", lab.grader / "harness.cu"], tmp_path,
                          "lab5", cudabuild.Backend("gpu", "test"))
    x, out = np.arange(1000, dtype=np.float32), np.zeros(1, np.float32)
    with cudabuild.Worker(lib) as w:
        if cudabuild.gpu_name() is None:
            with pytest.raises(cudabuild.KernelError, match="reduce_sum: .*CUDA error"):
                w.call("lab5_reduce", 0, x, x.size, out, 0)
        else:
            assert w.call("lab5_reduce", 0, x, x.size, out, 0)[1][0] == 499500.0

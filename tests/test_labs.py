"""The lab kit's graders are tested (issue 17): for every lab, the reference solution gets
full marks, the untouched skeleton gets zero, and each planted bug loses marks in the
task it belongs to.  Each grading runs `python -m tinyfw.labs grade N --json` in a fresh
process, as a student would."""
from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import zipfile

import pytest

from tinyfw import labs as L

LABS = L.labs()
# each grading is a fresh process running a whole grader: end-to-end, so CI runs these once
slow = pytest.mark.slow


def _grade(number: int, src, student: str = "ci", task: str | None = None) -> dict:
    extra = ["--task", task] if task else []
    out = subprocess.run([sys.executable, "-m", "tinyfw.labs", "grade", str(number), "--src",
                          str(src), "--student", student, "--json", *extra],
                         capture_output=True, text=True, timeout=300, cwd=L.ROOT)
    assert out.stdout.strip(), out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _bugs(lab: L.Lab) -> list:
    spec = importlib.util.spec_from_file_location("_bugs", lab.solution / "bugs.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.BUGS


@slow
@pytest.mark.parametrize("lab", LABS, ids=lambda x: x.path.name)
def test_the_solution_gets_full_marks(lab):
    res = _grade(lab.number, lab.solution)
    assert res["score"] == res["total"] == sum(t.points for t in lab.tasks), res


@slow
@pytest.mark.parametrize("lab", LABS, ids=lambda x: x.path.name)
def test_the_skeleton_gets_zero(lab):
    res = _grade(lab.number, lab.skeleton)
    assert res["score"] == 0 and res["total"] == sum(t.points for t in lab.tasks), res


@slow
@pytest.mark.parametrize("lab", LABS, ids=lambda x: x.path.name)
def test_every_task_has_a_planted_bug_that_its_grader_catches(lab, tmp_path):
    bugs = _bugs(lab)
    assert {b[0] for b in bugs} == {t.id for t in lab.tasks}, "a task without a planted bug"
    for task, fname, old, new, what in bugs:
        src = tmp_path / task
        shutil.copytree(lab.solution, src)
        text = (src / fname).read_text()
        assert text.count(old) == 1, f"bug {task} ({what}): its text is not once in {fname}"
        (src / fname).write_text(text.replace(old, new))
        res = _grade(lab.number, src, task=task)  # the bug's own task is the one to fail
        r = res["tasks"][task]
        assert r["failed"] > 0, f"the grader of task {task} misses the bug: {what}"
        assert r["first_failure"], f"task {task} failed without a message"


def test_export_holds_handouts_and_skeletons_only(tmp_path):
    from tinyfw.labs.__main__ import export

    out = tmp_path / "labs.zip"
    names = export(out)
    with zipfile.ZipFile(out) as z:
        listed = z.namelist()
    assert sorted(listed) == sorted(names)
    assert not [n for n in listed if "_solutions" in n or "/grader/" in n]
    for lab in LABS:
        assert f"labs/{lab.path.name}/README.md" in listed
        assert any(n.startswith(f"labs/{lab.path.name}/skeleton/") for n in listed)


def test_grade_errors_name_the_problem(tmp_path):
    out = subprocess.run([sys.executable, "-m", "tinyfw.labs", "grade", "99"], capture_output=True,
                         text=True, timeout=120, cwd=L.ROOT)
    assert out.returncode == 2 and "no lab 99" in out.stderr
    out = subprocess.run([sys.executable, "-m", "tinyfw.labs", "grade", "1", "--task", "1.9"],
                         capture_output=True, text=True, timeout=120, cwd=L.ROOT)
    assert out.returncode == 2 and "no task 1.9" in out.stderr

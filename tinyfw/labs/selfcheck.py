"""The graders' own check (issue 17): every lab's reference solution must get full marks,
its untouched skeleton zero, and each planted bug (labs/_solutions/NN/bugs.py) must lose
points in its own task, with a message.  Each grading runs in a fresh process, as a
student's would: ``python -m tinyfw.labs grade N --json``."""
from __future__ import annotations

import importlib.util
import json
import pathlib
import shutil
import subprocess
import sys
import tempfile

from . import ROOT, Lab


def grade_json(number: int, src, task: str | None = None, student: str = "ci") -> dict:
    """The JSON result of grading `src` in a subprocess."""
    extra = ["--task", task] if task else []
    out = subprocess.run([sys.executable, "-m", "tinyfw.labs", "grade", str(number), "--src",
                          str(src), "--student", student, "--json", *extra],
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    if not out.stdout.strip():
        raise RuntimeError(f"grading lab {number} printed nothing: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def bugs(lab: Lab) -> list:
    """The lab's planted bugs: (task, file, old text, new text, what)."""
    spec = importlib.util.spec_from_file_location(f"_bugs_{lab.number}", lab.solution / "bugs.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return list(mod.BUGS)


def with_bug(lab: Lab, bug: tuple, folder: pathlib.Path) -> pathlib.Path:
    """A copy of the solution in `folder` with `bug` applied (its text must occur once)."""
    task, fname, old, new, what = bug
    shutil.copytree(lab.solution, folder, ignore=shutil.ignore_patterns("build", "__pycache__"))
    text = (folder / fname).read_text()
    if text.count(old) != 1:
        raise ValueError(f"lab {lab.number} bug {task} ({what}): its text occurs "
                         f"{text.count(old)} times in {fname}")
    (folder / fname).write_text(text.replace(old, new))
    return folder


def check(lab: Lab) -> list:
    """Rows (what was graded, score, total, the task that lost points, ok?) for one lab."""
    rows = []
    full = sum(t.points for t in lab.tasks)
    res = grade_json(lab.number, lab.solution)
    rows.append(("solution", res["score"], res["total"], "", res["score"] == full))
    res = grade_json(lab.number, lab.skeleton)
    rows.append(("skeleton", res["score"], res["total"], "", res["score"] == 0))
    with tempfile.TemporaryDirectory() as tmp:
        for k, bug in enumerate(bugs(lab)):
            src = with_bug(lab, bug, pathlib.Path(tmp) / str(k))
            res = grade_json(lab.number, src, task=bug[0])
            r = res["tasks"].get(bug[0], {})
            caught = r.get("failed", 0) > 0 and bool(r.get("first_failure"))
            rows.append((f"bug {bug[0]}: {bug[4]}", res["score"], res["total"],
                         bug[0] if caught else "-", caught))
    return rows


def main(numbers: list | None = None) -> int:
    """Print the table for the given labs (all by default); 1 if any row is wrong."""
    from . import labs

    ok = True
    for lab in labs():
        if numbers and lab.number not in numbers:
            continue
        print(f"Lab {lab.number}: {lab.title}")
        for what, score, total, task, good in check(lab):
            print(f"  {'ok ' if good else 'BAD'} {what:<66} {score:5.1f} / {total:<3} {task}")
            ok &= good
    return 0 if ok else 1

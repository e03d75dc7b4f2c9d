"""The lab kit's tooling: find the labs, grade a student's work, export the handouts.

    python -m tinyfw.labs list
    python -m tinyfw.labs grade 1 [--task 1.2] [--src DIR] [--student ID]
    python -m tinyfw.labs export labs.zip

A lab is a folder ``labs/NN_name/`` next to the tinyfw package holding ``README.md`` (the
handout), ``lab.py`` (its title and task table), ``skeleton/`` (the package the student
edits) and ``grader/`` (pytest files whose tests carry ``@pytest.mark.task("N.k")``).
Teachers also have ``labs/_solutions/NN_name/``: the reference solution and the planted
bugs that check each grader (tests/test_labs.py).  The grader imports the student's code
from ``--src`` (the skeleton folder by default) through `tinyfw.labs.student`.
"""
from __future__ import annotations

import importlib.util
import pathlib
from dataclasses import dataclass

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
LABS = ROOT / "labs"
SOLUTIONS = LABS / "_solutions"

# the environment variables the grader's tests read (set by `grade`)
SRC_ENV = "TINYFW_LAB_SRC"
STUDENT_ENV = "TINYFW_LAB_STUDENT"


@dataclass(frozen=True)
class Task:
    """One graded task: its id ("1.2"), what it asks, and its points."""
    id: str
    title: str
    points: int


@dataclass(frozen=True)
class Lab:
    """One lab folder and its metadata (from its lab.py)."""
    number: int
    path: pathlib.Path
    title: str
    tasks: tuple

    @property
    def skeleton(self) -> pathlib.Path:
        return self.path / "skeleton"

    @property
    def grader(self) -> pathlib.Path:
        return self.path / "grader"

    @property
    def solution(self) -> pathlib.Path:
        return SOLUTIONS / self.path.name


def _load_meta(path: pathlib.Path):
    spec = importlib.util.spec_from_file_location(f"_lab_meta_{path.parent.name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def labs() -> list[Lab]:
    """Every lab, in order."""
    out = []
    for d in sorted(LABS.glob("[0-9][0-9]_*")):
        meta = _load_meta(d / "lab.py")
        tasks = tuple(Task(t, title, pts) for t, title, pts in meta.TASKS)
        out.append(Lab(int(d.name[:2]), d, meta.TITLE, tasks))
    return out


def lab(number: int) -> Lab:
    """The lab numbered `number`; ValueError naming the labs there are otherwise."""
    for item in labs():
        if item.number == number:
            return item
    have = ", ".join(str(x.number) for x in labs()) or "none"
    raise ValueError(f"no lab {number} (labs: {have})")

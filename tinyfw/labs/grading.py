"""Run a lab's grader (pytest, in-process) on a student's folder and score it per task.

Each test carries ``@pytest.mark.task("N.k")``; a task's score is its points times the
fraction of its tests that pass, and the table shows, per task, the first failure's
message (what was wrong), not a traceback.  A test that cannot run here (``pytest.skip``,
e.g. a speed test without a GPU) counts neither way: its reason is shown as a note, as is
anything a test records with ``record_property("note", text)`` (a measured speed)."""
from __future__ import annotations

import os
import pathlib
import re
from dataclasses import dataclass, field

import pytest

from . import SRC_ENV, STUDENT_ENV, Lab


@dataclass
class TaskResult:
    """The tests of one task: how many passed, and the first failure's message."""
    passed: int = 0
    failed: int = 0
    first_failure: str = ""
    failures: list = field(default_factory=list)
    skipped: int = 0
    notes: list = field(default_factory=list)


class _Collector:
    """A pytest plugin: results per task marker."""

    def __init__(self):
        self.tasks: dict[str, TaskResult] = {}
        self.unmarked: list[str] = []
        self.errors: list[str] = []

    def pytest_runtest_logreport(self, report):
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            task = getattr(report, "task_id", None)
            if task is None:
                self.unmarked.append(report.nodeid)
                return
            r = self.tasks.setdefault(task, TaskResult())
            for name, value in getattr(report, "user_properties", ()):
                if name == "note" and str(value) not in r.notes:
                    r.notes.append(str(value))
            if report.outcome == "skipped":  # not gradable here: neither passed nor failed
                r.skipped += 1
                why = _skip_reason(report)
                if why not in r.notes:
                    r.notes.append(why)
                return
            if report.outcome == "passed":
                r.passed += 1
            else:
                r.failed += 1
                msg = _message(report)
                r.failures.append((report.nodeid, msg))
                if not r.first_failure:
                    r.first_failure = msg

    def pytest_collectreport(self, report):
        if report.outcome == "failed":
            self.errors.append(_message(report))


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    text = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return " ".join(text.removeprefix("Skipped: ").split())[:300]


def _message(report) -> str:
    exc = getattr(report.longrepr, "reprcrash", None)
    text = exc.message if exc is not None else str(report.longrepr)
    # "tinyfw.labs.cudabuild.KernelError: ..." -> "KernelError: ...": the message matters
    text = re.sub(r"^(?:\w+\.)+(?=\w+: )", "", text.strip())
    return " ".join(text.split())[:300]


class _TaskPlugin:
    """Registers the task marker, keeps one task's tests (``--task``), and copies each
    test's task id onto its reports."""

    def __init__(self, task: str | None):
        self.task = task

    def pytest_configure(self, config):
        config.addinivalue_line("markers", "task(id): the lab task a grader test belongs to")

    def pytest_collection_modifyitems(self, config, items):
        if self.task is None:
            return
        keep = [i for i in items if (m := i.get_closest_marker("task")) is not None
                and str(m.args[0]) == self.task]
        config.hook.pytest_deselected(items=[i for i in items if i not in keep])
        items[:] = keep

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        marker = item.get_closest_marker("task")
        if marker is not None:
            outcome.get_result().task_id = str(marker.args[0])


def grade(lab: Lab, src: pathlib.Path, student: str = "anonymous", task: str | None = None,
          quiet: bool = True) -> dict[str, TaskResult]:
    """Grade the student's folder `src` with `lab`'s grader; {task id: TaskResult}."""
    if task is not None and task not in {t.id for t in lab.tasks}:
        raise ValueError(f"lab {lab.number} has no task {task} (tasks: "
                         f"{', '.join(t.id for t in lab.tasks)})")
    src = pathlib.Path(src).resolve()
    if not src.is_dir():
        raise FileNotFoundError(f"--src {src} is not a folder")
    old = {k: os.environ.get(k) for k in (SRC_ENV, STUDENT_ENV)}
    os.environ[SRC_ENV], os.environ[STUDENT_ENV] = str(src), student
    collector = _Collector()
    args = [str(lab.grader), "-p", "no:cacheprovider", "-o", "addopts=", "--rootdir",
            str(lab.path)]
    if quiet:
        args += ["-p", "no:terminal"]
    try:
        pytest.main(args, plugins=[collector, _TaskPlugin(task)])
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    if collector.errors:
        for t in lab.tasks:
            collector.tasks.setdefault(t.id, TaskResult(failed=1, first_failure=collector.errors[0]))
    return collector.tasks


def score(lab: Lab, results: dict[str, TaskResult]) -> tuple[float, int]:
    """(points earned, points possible) over the tasks that were graded."""
    got = total = 0
    for t in lab.tasks:
        r = results.get(t.id)
        if r is None:
            continue
        n = r.passed + r.failed
        got += t.points * (r.passed / n if n else 0.0)
        total += t.points
    return got, total


def table(lab: Lab, results: dict[str, TaskResult]) -> str:
    """The per-task score table, with the first failure of each task."""
    lines = [f"Lab {lab.number}: {lab.title}", "",
             f"{'task':<6} {'score':>11}  {'tests':>7}  title / first problem", "-" * 72]
    for t in lab.tasks:
        r = results.get(t.id)
        if r is None:
            continue
        n = r.passed + r.failed
        pts = t.points * (r.passed / n if n else 0.0)
        lines.append(f"{t.id:<6} {pts:5.1f} / {t.points:<3} {r.passed:>3}/{n:<3}  {t.title}")
        if r.first_failure:
            lines.append(f"{'':<28}-> {r.first_failure}")
        for note in r.notes:
            lines.append(f"{'':<28}   note: {note}")
    got, total = score(lab, results)
    lines += ["-" * 72, f"{'total':<6} {got:5.1f} / {total:<3}"]
    return "\n".join(lines)

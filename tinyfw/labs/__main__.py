"""``python -m tinyfw.labs``: list the labs, grade one, export the handouts (see the
package doc)."""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
import zipfile

from . import LABS, labs, lab as find_lab


def export(out: pathlib.Path) -> list[str]:
    """Write a zip of every lab's handout, lab.py and skeleton (no graders' solutions:
    labs/_solutions is left out); returns the archived paths."""
    names = []
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for item in labs():
            files = [item.path / "README.md", item.path / "lab.py"]
            files += sorted(p for p in item.skeleton.rglob("*") if p.is_file()
                            and not {"__pycache__", "build"} & set(p.parts))
            for f in files:
                name = str(f.relative_to(LABS.parent))
                z.write(f, name)
                names.append(name)
    return names


def main(argv: list[str] | None = None) -> int:
    prog = "tinyfw-lab" if pathlib.Path(sys.argv[0]).name == "tinyfw-lab" else "python -m tinyfw.labs"
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="the labs and their tasks")
    g = sub.add_parser("grade", help="grade a student's folder")
    g.add_argument("lab", type=int)
    g.add_argument("--task", help="grade one task, e.g. 1.2")
    g.add_argument("--src", help="the student's folder (default: the lab's skeleton/)")
    g.add_argument("--student", default="anonymous", help="student id (seeds the hidden cases)")
    g.add_argument("--json", action="store_true", help="print the results as JSON")
    e = sub.add_parser("export", help="zip the handouts and skeletons for students")
    e.add_argument("out", type=pathlib.Path)
    c = sub.add_parser("selfcheck", help="grade every solution, skeleton and planted bug")
    c.add_argument("labs", type=int, nargs="*", help="lab numbers (default: all)")
    args = ap.parse_args(argv)
    if args.cmd == "selfcheck":
        from .selfcheck import main as selfcheck

        return selfcheck(args.labs)
    if args.cmd == "list":
        for item in labs():
            pts = sum(t.points for t in item.tasks)
            print(f"{item.number:2d}  {item.title}  ({len(item.tasks)} tasks, {pts} points)")
            for t in item.tasks:
                print(f"      {t.id:<5} {t.title} ({t.points})")
        return 0
    if args.cmd == "export":
        names = export(args.out)
        print(f"wrote {args.out}: {len(names)} files from {len(labs())} labs")
        return 0
    from .grading import grade, score, table

    try:
        item = find_lab(args.lab)
        results = grade(item, pathlib.Path(args.src) if args.src else item.skeleton,
                        args.student, args.task)
    except (ValueError, FileNotFoundError) as err:
        print(f"tinyfw.labs: {err}", file=sys.stderr)
        return 2
    got, total = score(item, results)
    if args.json:
        print(json.dumps({"lab": item.number, "score": got, "total": total,
                          "tasks": {t: {"passed": r.passed, "failed": r.failed,
                                        "skipped": r.skipped, "first_failure": r.first_failure,
                                        "notes": r.notes}
                                    for t, r in results.items()}}))
    else:
        print(table(item, results))
    return 0 if total and got == total else 1


if __name__ == "__main__":
    sys.exit(main())

"""Planted bugs: each is one edit of the solution that the grader must catch in its task
(tests/test_labs.py applies each and grades).  (task, file, old text, new text, what)."""
BUGS = [
    ("7.1", "passes.py", "            used.update(v.id for v in node.inputs)\n    removed",
     "    removed", "a kept node's inputs are not marked used: live producers die"),
    ("7.2", "passes.py", "        key = (node.fn, tuple(v.id for v in node.inputs), attr_key(node.attrs))",
     "        key = (node.fn, tuple(v.id for v in node.inputs))",
     "attributes ignored: ops that differ only in an attribute are merged"),
    ("7.3", "passes.py", "                if any(g in deps(w) for w in others):\n                    continue",
     "                pass", "no cycle check: a group can depend on itself through a reduction"),
    ("7.4", "passes.py", "        outs = [v for n in members for v in n.outputs if v.id in used_outside]",
     "        outs = [members[-1].outputs[0]]", "only the last member's value leaves the group"),
]

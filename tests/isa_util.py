"""Reading the instruction-set levels of machine code (for tests/test_isa_build.py).

``functions(path)`` disassembles a shared object with objdump into functions: their
instructions' ISA level (0 baseline x86-64, 1 AVX2 level = x86-64-v3, 2 AVX-512) and the
functions they call, jump to or take the address of.  The level of one instruction:

- EVEX-encoded (first opcode byte 0x62 in 64-bit mode) or an opmask instruction
  (``k...`` on ``%k`` registers): AVX-512, level 2;
- VEX-encoded (0xc4 / 0xc5: AVX, AVX2, FMA, F16C, BMI1/2), or one of the SSE3..SSE4.2,
  POPCNT, LZCNT/TZCNT, MOVBE instructions that baseline x86-64 lacks: level 1;
- anything else: level 0.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field

# legacy segment / address-size prefixes that may precede a VEX or EVEX prefix
_SKIP = {"26", "2e", "36", "3e", "64", "65", "67"}
# non-VEX instructions of x86-64-v2/v3 (SSE3, SSSE3, SSE4.1, SSE4.2, POPCNT, LZCNT, TZCNT, MOVBE)
_V2 = re.compile(
    r"^(popcnt|lzcnt|tzcnt|movbe|crc32|pshufb|palignr|phadd|phsub|pmaddubsw|pmulhrsw|psign|pabs"
    r"|round[sp][sd]|blendv?p[sd]|pblend|ptest|pmulld|pmuldq|pminsb|pminsd|pminuw|pminud|pmaxsb|pmaxsd"
    r"|pmaxuw|pmaxud|pextr[bdq]"
    r"|pinsr[bdq]|insertps|extractps|dpp[sd]|pcmpeqq|pcmpgtq|packusdw|pmov[sz]x|mpsadbw|phminposuw"
    r"|movntdqa|pcmp[ei]str|movddup|movshdup|movsldup|hadd|hsub|addsubp|lddqu|monitor|mwait)")
_LINE = re.compile(r"^\s*([0-9a-f]+):\t([0-9a-f ]+?)\s*\t(\S+)\s*(.*)$")
_HEAD = re.compile(r"^([0-9a-f]+) <(.+)>:$")
_REF = re.compile(r"(?:call|jmp|j\w+)\s+([0-9a-f]+) <|#\s*([0-9a-f]+) <")
LEVEL_NAMES = ("scalar", "avx2", "avx512")


def instruction_level(hexbytes: str, mnemonic: str, operands: str) -> int:
    """The ISA level one disassembled instruction needs (see the module docstring)."""
    b = hexbytes.split()
    i = 0
    while i < len(b) and b[i] in _SKIP:
        i += 1
    first = b[i] if i < len(b) else ""
    if first == "62" or (mnemonic.startswith("k") and "%k" in operands):
        return 2
    if first in ("c4", "c5") or _V2.match(mnemonic):
        return 1
    return 0


@dataclass
class Function:
    name: str  # the mangled symbol
    start: int
    end: int = 0  # one past its last instruction
    level: int = 0  # the highest level among its instructions
    example: str = ""  # an instruction of that level
    refs: set = field(default_factory=set)  # addresses it calls, jumps to or takes


def objdump_available() -> bool:
    return shutil.which("objdump") is not None


def functions(path: str) -> dict[int, Function]:
    """The functions of the executable sections of `path`, by start address."""
    out = subprocess.run(["objdump", "-d", "--insn-width=16", path], capture_output=True,
                         text=True, check=True).stdout
    funcs: dict[int, Function] = {}
    cur = None
    for line in out.splitlines():
        m = _LINE.match(line)
        if m and cur is not None:
            cur.end = int(m.group(1), 16) + len(m.group(2).split())
            lv = instruction_level(m.group(2), m.group(3), m.group(4))
            if lv > cur.level:
                cur.level, cur.example = lv, f"{m.group(3)} {m.group(4)}".strip()
            r = _REF.search(f"{m.group(3)} {m.group(4)}")
            if r:
                cur.refs.add(int(r.group(1) or r.group(2), 16))
            continue
        h = _HEAD.match(line)
        if h:
            cur = Function(h.group(2), int(h.group(1), 16))
            funcs[cur.start] = cur
    return funcs


def data_references(path: str) -> set[int]:
    """Addresses stored in the object's data (dynamic relocations: function pointers in
    tables, vtables, Python method tables), which any code may call through."""
    out = subprocess.run(["readelf", "-rW", path], capture_output=True, text=True, check=True).stdout
    refs = set()
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 4 and f[2] == "R_X86_64_RELATIVE":
            refs.add(int(f[3], 16))
        elif len(f) >= 5 and f[2] in ("R_X86_64_64", "R_X86_64_GLOB_DAT"):
            refs.add(int(f[3], 16))
    return refs


def level_of_name(name: str) -> int | None:
    """The level a symbol's name puts it in (its per-ISA namespace), or None."""
    found = [lv for lv, n in enumerate(LEVEL_NAMES) if f"isa_{n}" in name]
    return max(found) if found else None


def allowed_levels(funcs: dict[int, Function], data_refs: set[int]) -> dict[int, int]:
    """The highest level each function may contain.

    A function in a per-ISA namespace: that level.  Any other function (the standard
    library's and pybind11's inline code, the ISA-independent files, compiler clones) may
    be reached from anywhere it is referenced, so it gets the lowest level among the
    functions that reference it (a greatest fixed point over the reference graph); one
    whose address is stored in data (`data_refs`) may be called from anywhere: baseline.
    A function nothing references is dead code (the build links with --gc-sections, so
    these are rare) and keeps its own level.
    """
    import bisect

    starts = sorted(funcs)
    def owner(addr: int) -> int | None:  # the function whose code holds addr
        i = bisect.bisect_right(starts, addr) - 1
        return starts[i] if i >= 0 and addr < funcs[starts[i]].end else None

    referrers: dict[int, set] = {s: set() for s in starts}
    for s, f in funcs.items():
        for a in f.refs:
            o = owner(a)
            if o is not None and o != s:
                referrers[o].add(s)
    named = {s: level_of_name(f.name) for s, f in funcs.items()}
    roots = {owner(a) for a in data_refs} | {s for s, f in funcs.items() if f.name == "PyInit__C"}
    allowed = {}
    for s in starts:
        if named[s] is not None:
            allowed[s] = named[s]
        elif s in roots:
            allowed[s] = 0
        else:
            allowed[s] = 2 if referrers[s] else funcs[s].level
    changed = True
    while changed:
        changed = False
        for s in starts:
            if named[s] is not None or s in roots or not referrers[s]:
                continue
            lv = min(allowed[r] for r in referrers[s])
            if lv < allowed[s]:
                allowed[s], changed = lv, True
    return allowed


def demangle(names: list[str]) -> list[str]:
    """C++ names for messages (the mangled ones when c++filt is missing)."""
    if not shutil.which("c++filt"):
        return names
    return subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True).stdout.splitlines()

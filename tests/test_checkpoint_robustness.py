"""Checkpoints that are damaged, hostile or foreign (issue 14, item 8).

- U8 and I16 load as uint8/int16; the integer types tinyfw has no dtype for (U16, U32,
  U64) load widened, losslessly, to int32/int64 tensors that compute; a U64 value above
  int64 and types tinyfw cannot hold are errors naming the tensor.
- Every malformed header or structure is a `CheckpointError` naming the problem (never
  AttributeError, TypeError, RecursionError, ...), and nothing is ever unpickled: fixed
  cases that failed before, then hypothesis mutating every level of real files.
- Interrupted saves leave temporary files that the next save of the same target removes,
  only when their writer is gone; concurrent writers never lose theirs.
"""
from __future__ import annotations

import copy
import json
import os
import pickle
import re
import struct
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import tinyfw
from tinyfw import nn, optim
from tinyfw import serialization as S
from tinyfw.serialization import CheckpointError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _write(path, header: dict, buffer: bytes, raw_header: str | None = None) -> None:
    hb = (raw_header if raw_header is not None else json.dumps(header)).encode()
    path.write_bytes(struct.pack("<Q", len(hb)) + hb + buffer)


def _split(data: bytes) -> tuple[dict, bytes]:
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + n]), data[8 + n:]


# -- integer types tinyfw has no dtype for ------------------------------------------------------
WIDE = [("U8", np.uint8, tinyfw.uint8), ("I16", np.int16, tinyfw.int16),  # native since issue 16
        ("U16", np.uint16, tinyfw.int32), ("U32", np.uint32, tinyfw.int64),
        ("U64", np.uint64, tinyfw.int64)]


@pytest.mark.parametrize("code,np_type,dtype", WIDE, ids=[w[0] for w in WIDE])
def test_unsigned_and_int16_tensors_load_widened_and_compute(tmp_path, code, np_type, dtype):
    from safetensors.numpy import save_file

    info = np.iinfo(np_type)
    hi = min(int(info.max), 2 ** 63 - 1)  # U64 loads when every value fits int64
    values = [int(info.min), 0, 1, hi - 1, hi]
    save_file({"w": np.array(values, np_type).reshape(5, 1)}, str(tmp_path / "f.safetensors"))
    t = tinyfw.load(tmp_path / "f.safetensors")["w"]
    assert t.dtype is dtype and t.shape == (5, 1) and t.device == tinyfw.device("cpu")
    assert [v[0] for v in t.tolist()] == values  # exact, as Python ints
    assert (t - t).abs().sum().item() == 0 and (t * 0 + 1).dtype is dtype
    assert t.float().dtype is tinyfw.float32


def test_u64_beyond_int64_is_an_error_naming_the_tensor(tmp_path):
    from safetensors.numpy import save_file

    save_file({"ids": np.array([1, 2 ** 63], np.uint64)}, str(tmp_path / "f.safetensors"))
    with pytest.raises(CheckpointError, match=r"tensor 'ids' of dtype U64 holds values tinyfw "
                                              r"cannot represent \(value 9223372036854775808"):
        tinyfw.load(tmp_path / "f.safetensors")


@pytest.mark.parametrize("code", ["F8_E4M3", "F8_E5M2", "C64", "U1"])
def test_types_tinyfw_cannot_hold_are_refused_by_name(tmp_path, code):
    _write(tmp_path / "f", {"x": {"dtype": code, "shape": [2], "data_offsets": [0, 2]}}, b"ab")
    with pytest.raises(CheckpointError, match=f"tensor 'x' has dtype '{code}', which tinyfw"):
        tinyfw.load(tmp_path / "f")


def test_bool_bytes_other_than_0_and_1_are_refused(tmp_path):
    _write(tmp_path / "f", {"m": {"dtype": "BOOL", "shape": [3], "data_offsets": [0, 3]}},
           b"\x00\x01\x02")
    with pytest.raises(CheckpointError, match="'m' of dtype BOOL.*bool bytes must be 0 or 1"):
        tinyfw.load(tmp_path / "f")


# -- malformed files: fixed cases -------------------------------------------------------------
@pytest.fixture(scope="module")
def base(tmp_path_factory) -> bytes:
    """A real checkpoint: model and optimizer state, numbers, tuples, a meta tensor."""
    return _checkpoint(tmp_path_factory.mktemp("base"))


def _checkpoint(tmp_path) -> bytes:
    tinyfw.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    opt = optim.Adam(model.parameters(), lr=0.1)
    model(tinyfw.randn(5, 3)).sum().backward()
    opt.step()
    obj = {"model": model.state_dict(), "opt": opt.state_dict(), "epoch": 3,
           "best": float("inf"), "note": ("a", None, True), "meta": tinyfw.empty(2, device="meta")}
    tinyfw.save(obj, tmp_path / "base.tfw")
    return (tmp_path / "base.tfw").read_bytes()


def _tensors(data: bytes) -> dict:
    """name -> host array of a valid file, to recompute the checksum of a new structure."""
    from safetensors.numpy import load as st_load

    return st_load(data)


def _with_structure(data: bytes, structure: str) -> tuple[dict, bytes]:
    """The header of `data` holding `structure` with a valid checksum: the decoder runs."""
    header, buffer = _split(data)
    header["__metadata__"][S._MAGIC] = structure
    header["__metadata__"][S._CRC] = S._checksum(structure, _tensors(data))
    return header, buffer


def _meta(**kv):
    def f(h):
        h["__metadata__"].update(kv)
    return f


def _entry(key, value):
    def f(h):
        h["t0"][key] = value
    return f


# (what, change to the header dict) — each raised another exception, or loaded, before
HEADER_CASES = [
    ("structure entry is a number", _meta(**{S._MAGIC: 5}), "must map strings to strings"),
    ("format is a list", _meta(**{S._FORMAT: ["2"]}), "must map strings to strings"),
    ("metadata values not strings", _meta(**{S._CRC: None}), "must map strings to strings"),
    ("shape holds a bool", _entry("shape", [True]), "shape must be a list"),
    ("shape holds a string", _entry("shape", ["3"]), "shape must be a list"),
    ("shape holds a float", _entry("shape", [3.7]), "shape must be a list"),
    ("offsets hold strings", _entry("data_offsets", ["0", "8"]), "data_offsets must be"),
    ("offsets reversed", _entry("data_offsets", [8, 0]), "data_offsets must be"),
    ("dtype is a list", _entry("dtype", ["F32"]), "dtype must be a string"),
    ("entry has an extra key", _entry("byteorder", "big"), "expected the keys"),
    ("tensor is a number", lambda h: h.update(t0=5), "expected an object"),
]


@pytest.mark.parametrize("what,change,msg", HEADER_CASES, ids=[c[0] for c in HEADER_CASES])
def test_malformed_header_is_a_checkpoint_error(tmp_path, base, what, change, msg):
    header, buffer = _split(base)
    change(header)
    _write(tmp_path / "bad", header, buffer)
    with pytest.raises(CheckpointError, match=re.escape(msg)):
        tinyfw.load(tmp_path / "bad")


def test_tensors_must_tile_the_data_exactly(tmp_path):
    f32 = {"dtype": "F32", "shape": [2]}
    cases = [({"a": dict(f32, data_offsets=[0, 8]), "b": dict(f32, data_offsets=[4, 12])},
              12, "tensor 'b' begins at byte 4 of the data, expected 8 (overlapping it)"),
             ({"a": dict(f32, data_offsets=[0, 8]), "b": dict(f32, data_offsets=[12, 20])},
              20, "tensor 'b' begins at byte 12 of the data, expected 8 (a gap before it)"),
             ({"a": dict(f32, data_offsets=[0, 8])},
              16, "its tensors need 8 bytes of data but the file has 16 after the header")]
    for header, size, msg in cases:
        _write(tmp_path / "f", header, bytes(size))
        with pytest.raises(CheckpointError, match=re.escape(msg)):
            tinyfw.load(tmp_path / "f")


def test_duplicate_keys_in_the_header_are_refused(tmp_path, base):
    header, buffer = _split(base)
    text = json.dumps(header)
    dup = text[:-1] + ', "t0": ' + json.dumps(header["t0"]) + "}"  # a second 't0' wins in JSON
    _write(tmp_path / "bad", {}, buffer, raw_header=dup)
    with pytest.raises(CheckpointError, match="key 't0' appears twice"):
        tinyfw.load(tmp_path / "bad")


STRUCTURE_CASES = [
    ("deep nesting beyond json", '{"L":[' * 100_000 + "]}" * 100_000, "nested too deeply"),
    ("deep nesting beyond the decoder", '{"L":[' * 300 + "1" + "]}" * 300,
     f"nested more than {S.MAX_DEPTH} levels"),
    ("a 5000-digit number", '{"L":[' + "9" * 5000 + "]}", "corrupt structure entry"),
    ("non-finite float not a string", '{"F":[1]}', "non-finite float"),
    ("non-finite float garbage", '{"F":"1e5"}', "non-finite float"),
    ("dict not a list", '{"D":5}', "a dict must be a list"),
    ("dict key a list", '{"D":[[["k"],1]]}', "a dict must be a list"),
    ("dict key a float", '{"D":[[1.5,1]]}', "a dict must be a list"),
    ("list not a list", '{"L":{"a":1}}', "must be a JSON list"),
    ("unknown tag", '{"Q":1}', "unknown tag"),
    ("two tags", '{"L":[],"U":[]}', "unrecognised node"),
    ("tensor reference a number", '{"T":7}', "tensor reference must be"),
    ("tensor on a garbage device", '{"T":["t0","garbage"]}', "device 'garbage'"),
    ("meta dtype missing", '{"M":[[2],null]}', "meta tensor must be"),
    ("meta shape a bool", '{"M":[[true],"float32"]}', "meta tensor must be"),
    ("meta too many elements", '{"M":[[4294967296,4294967296],"float32"]}', "too many elements"),
]


@pytest.mark.parametrize("what,structure,msg", STRUCTURE_CASES,
                         ids=[c[0] for c in STRUCTURE_CASES])
def test_malformed_structure_is_a_checkpoint_error(tmp_path, what, structure, msg):
    tinyfw.save([tinyfw.ones(2)], tmp_path / "one.tfw")
    header, buffer = _with_structure((tmp_path / "one.tfw").read_bytes(), structure)
    _write(tmp_path / "bad", header, buffer)
    with pytest.raises(CheckpointError, match=re.escape(msg)):
        tinyfw.load(tmp_path / "bad")


@pytest.mark.parametrize("structure,msg", [
    ('{"L":[{"T":["t0","cpu"]},{"T":["t0","cpu"]}]}', "tensor 't0' is referred to twice"),
    ('{"L":[]}', "tensors 't0' are in the file but not in the structure")])
def test_each_tensor_is_referred_to_exactly_once(tmp_path, structure, msg):
    """Two references would load as two tensors silently sharing one array."""
    tinyfw.save([tinyfw.ones(2)], tmp_path / "one.tfw")
    header, buffer = _with_structure((tmp_path / "one.tfw").read_bytes(), structure)
    _write(tmp_path / "bad", header, buffer)
    with pytest.raises(CheckpointError, match=re.escape(msg)):
        tinyfw.load(tmp_path / "bad")


def test_save_refuses_objects_nested_too_deeply(tmp_path):
    deep: list = []  # MAX_DEPTH + 1 lists, one inside the other
    for _ in range(S.MAX_DEPTH):
        deep = [deep]
    with pytest.raises(CheckpointError, match=f"nested more than {S.MAX_DEPTH} levels"):
        tinyfw.save(deep, tmp_path / "d")
    loop: list = []
    loop.append(loop)
    with pytest.raises(CheckpointError, match="contains itself"):
        tinyfw.save(loop, tmp_path / "d")
    ok: list = [{"t": tinyfw.ones(1)}]  # MAX_DEPTH containers, a tensor in the last
    for _ in range(S.MAX_DEPTH - 2):
        ok = [ok]
    tinyfw.save(ok, tmp_path / "d")
    back = tinyfw.load(tmp_path / "d")
    for _ in range(S.MAX_DEPTH - 2):
        back, ok = back[0], ok[0]
    assert back[0]["t"].tolist() == [1.0]


# -- malformed files: hypothesis --------------------------------------------------------------
_KEYS = ["dtype", "shape", "data_offsets", "__metadata__", S._MAGIC, S._CRC, S._FORMAT,
         "T", "M", "F", "D", "L", "U", "t0", "t1", "x"]
json_values = st.recursive(
    st.none() | st.booleans() | st.sampled_from([0, 1, -1, 2, 8, 2 ** 31, 2 ** 63, 2 ** 64,
                                                 -2 ** 63, 10 ** 30])
    | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(["", "F32", "U8", "BOOL", "cpu", "meta", "check", "cuda:3", "t0",
                       "inf", "nan", "float32", "2", "1"]) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(_KEYS) | st.text(max_size=3), inner, max_size=3),
    max_leaves=12)


def _paths(node, prefix=()):
    """Every position in a JSON tree: (path of keys/indices, node)."""
    yield prefix, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


@st.composite
def mutations(draw, tree):
    """`tree` with one position replaced, deleted or extended (or the same, sometimes
    nested far deeper)."""
    tree = copy.deepcopy(tree)
    paths = list(_paths(tree))
    path, node = paths[draw(st.integers(0, len(paths) - 1))]
    kind = draw(st.sampled_from(["replace", "delete", "insert", "wrap"]))
    value = draw(json_values)
    if kind == "wrap":  # deep nesting at this position
        # (far deeper is a fixed case: json.dumps here would run out of stack)
        depth = draw(st.sampled_from([S.MAX_DEPTH - 1, S.MAX_DEPTH + 5, 300]))
        value = node
        for _ in range(depth):
            value = {"L": [value]} if draw(st.booleans()) else [value]
    if not path:
        return value if kind in ("replace", "wrap") else tree
    parent = tree
    for p in path[:-1]:
        parent = parent[p]
    last = path[-1]
    if kind == "delete":
        del parent[last]
    elif kind == "insert" and isinstance(node, dict):
        node[draw(st.sampled_from(_KEYS))] = value
    elif kind == "insert" and isinstance(node, list):
        node.insert(draw(st.integers(0, len(node))), value)
    else:
        parent[last] = value
    return tree


@pytest.fixture
def no_unpickling(monkeypatch):
    """Any unpickling while this is active fails the test."""
    def refuse(*a, **k):
        raise AssertionError("load unpickled something")

    for name in ("loads", "load", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)


def _load_or_checkpoint_error(path) -> None:
    try:
        tinyfw.load(path)
    except CheckpointError as e:
        assert str(path) in str(e) and len(str(e)) < 2000  # names the file, stays readable


_SETTINGS = settings(suppress_health_check=list(HealthCheck), deadline=None)


@_SETTINGS
@given(data=st.data())
def test_fuzz_header(tmp_path_factory, base, no_unpickling, data):
    """Any change at any level of the header: it loads, or raises CheckpointError."""
    tmp = tmp_path_factory.mktemp("fuzz")
    header, buffer = _split(base)
    _write(tmp / "bad", data.draw(mutations(header)), buffer)
    _load_or_checkpoint_error(tmp / "bad")


@_SETTINGS
@given(data=st.data())
def test_fuzz_structure_with_a_valid_checksum(tmp_path_factory, base, no_unpickling, data):
    """Any change at any level of the structure, checksum recomputed so that the decoder
    sees it: it loads, or raises CheckpointError."""
    tmp = tmp_path_factory.mktemp("fuzz")
    header, _ = _split(base)
    tree = json.loads(header["__metadata__"][S._MAGIC])
    changed = json.dumps(data.draw(mutations(tree)))
    _write(tmp / "bad", *_with_structure(base, changed))
    _load_or_checkpoint_error(tmp / "bad")


@_SETTINGS
@given(cut=st.integers(0, 10_000), flip=st.integers(0, 10_000), bit=st.integers(0, 7))
def test_fuzz_truncated_and_flipped_files(tmp_path_factory, base, no_unpickling, cut, flip,
                                          bit):
    """Every flipped bit, with or without truncation, is detected."""
    tmp = tmp_path_factory.mktemp("fuzz")
    data = bytearray(base)
    data[flip % len(data)] ^= 1 << bit
    (tmp / "bad").write_bytes(bytes(data[:len(data) - cut % len(data)]))
    with pytest.raises(CheckpointError, match=re.escape(str(tmp / "bad"))):
        tinyfw.load(tmp / "bad")


def test_checkpoint_code_uses_no_numpy():
    for name in ("serialization.py", "_safetensors.py"):
        with open(os.path.join(ROOT, "tinyfw", name), encoding="utf-8") as f:
            bad = [line for line in f if re.search(r"^\s*(import numpy|from numpy)|\bnp\.", line)]
        assert not bad, f"{name} reaches numpy directly (use tinyfw.backend.host): {bad}"


# -- interrupted saves --------------------------------------------------------------------------
_INTERRUPTED = r"""
import os, sys
import tinyfw
os.replace = lambda *a: os._exit(3)  # the process dies between writing and renaming
tinyfw.save({"w": tinyfw.ones(3)}, sys.argv[1])
"""


def _interrupted_save(path) -> None:
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-c", _INTERRUPTED, str(path)], env=env, timeout=60)
    assert r.returncode == 3


def _temps(directory) -> set:
    return {n for n in os.listdir(directory) if n.startswith(".tmp-")}


def test_next_save_removes_what_an_interrupted_save_left(tmp_path):
    target = tmp_path / "ck.tfw"
    _interrupted_save(target)
    assert len(_temps(tmp_path)) == 1 and not target.exists()
    tinyfw.save({"w": tinyfw.zeros(3)}, target)
    assert _temps(tmp_path) == set() and tinyfw.load(target)["w"].tolist() == [0.0] * 3


def test_only_stale_temporaries_of_the_same_target_are_removed(tmp_path):
    target = tmp_path / "ck.tfw"
    _interrupted_save(target)
    (stale,) = _temps(tmp_path)
    dead = stale.rsplit(".", 2)[1]  # the pid of the interrupted writer
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        ours = S._temp_prefix("ck.tfw")
        other_pid = ours.rsplit(".", 2)[0] + f".{live.pid}."
        keep = {
            ours + "abcd_123",  # this process: maybe a save in another thread
            other_pid + "abcd_123",  # a live process saving the same target
            f".tmp-ck.tfw.0badc0de.{dead}.abcd_123",  # another host or pid namespace
            stale.replace("ck.tfw", "ck.tfw.bak"),  # another target
            ".tmp-ck.tfw-abcd_123",  # not our pattern
            stale + "x",  # not our pattern
        }
        for name in keep:
            (tmp_path / name).write_bytes(b"partial")
        tinyfw.save(tinyfw.ones(1), target)
        assert _temps(tmp_path) == keep  # the stale one went, nothing else
    finally:
        live.kill()
        live.wait()
    tinyfw.save(tinyfw.ones(1), target)  # its writer is gone now
    assert _temps(tmp_path) == keep - {other_pid + "abcd_123"}


_WRITER = r"""
import sys
import tinyfw
x = tinyfw.randn(100_000)
for i in range(10):
    tinyfw.save({"x": x, "i": i}, sys.argv[1])
"""


def test_concurrent_writers_of_one_target_never_break_each_other(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    target = str(tmp_path / "shared.tfw")
    writers = [subprocess.Popen([sys.executable, "-c", _WRITER, target], env=env,
                                stderr=subprocess.PIPE, text=True) for _ in range(2)]
    errs = [w.communicate(timeout=120)[1] for w in writers]
    assert [w.returncode for w in writers] == [0, 0], errs
    assert tinyfw.load(target)["x"].shape == (100_000,) and _temps(tmp_path) == set()


@pytest.mark.parametrize("dtype", ["uint8", "int16"])
def test_uint8_and_int16_round_trip_save_load(tmp_path, dtype):
    """tinyfw.save writes U8/I16 tensors (and their meta twins) that load back bit for bit."""
    vals = [0, 1, 127, 200, 255] if dtype == "uint8" else [-32768, -1, 0, 300, 32767]
    t = tinyfw.tensor(vals, dtype=dtype)
    m = tinyfw.empty((2, 3), dtype=dtype, device="meta")
    tinyfw.save({"t": t, "m": m}, tmp_path / "c")
    back = tinyfw.load(tmp_path / "c")
    assert back["t"].dtype is t.dtype and back["t"].tolist() == vals
    assert back["m"].dtype is t.dtype and back["m"].shape == (2, 3)

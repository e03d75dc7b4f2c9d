"""tinyfw.save / tinyfw.load: round trips of every supported value, atomic writes,
corruption (truncated, flipped bytes, wrong header, missing structure), and resuming
training from a checkpoint bit-identically."""
from __future__ import annotations

import json
import os
import struct

import numpy as np
import pytest

import tinyfw
from tinyfw import nn, optim
from tinyfw.data import DataLoader, TensorDataset
from tinyfw.serialization import CheckpointError

from helpers import DEVICE, from_np, npy


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16", "int64",
                                   "int32", "int8", "bool"])
@pytest.mark.parametrize("shape", [(), (0, 3), (5,), (2, 3, 4)])
def test_tensor_round_trip_exact(tmp_path, dtype, shape):
    rng = np.random.default_rng(0)
    t = from_np(np.asarray(rng.standard_normal(shape) * 50, np.float32)).to(
        getattr(tinyfw, dtype))
    p = tmp_path / "t.tfw"
    tinyfw.save(t, p)
    r = tinyfw.load(p)
    assert r.dtype is t.dtype and r.shape == t.shape and r.device == t.device
    assert npy(r).tobytes() == npy(t).tobytes()
    r.zero_()  # loaded tensors own writable memory
    assert npy(t).tobytes() != npy(r).tobytes() or not npy(t).any()


def test_nested_structure_round_trip(tmp_path):
    obj = {"w": tinyfw.randn(3, 4).T,  # a non-contiguous view
           0: {"step": tinyfw.tensor(3.0), "betas": (0.9, 0.999)},
           "list": [1, -2.5, float("inf"), float("-inf"), None, True, "text", []],
           "big": 2 ** 127 + 3, "empty": {}, "nan": float("nan")}
    tinyfw.save(obj, tmp_path / "c")
    r = tinyfw.load(tmp_path / "c")
    np.testing.assert_array_equal(npy(r["w"]), npy(obj["w"]))
    assert r[0]["betas"] == (0.9, 0.999) and isinstance(r[0]["betas"], tuple)
    assert r["list"][:4] == [1, -2.5, float("inf"), float("-inf")]
    assert r["list"][4:] == [None, True, "text", []]
    assert r["big"] == 2 ** 127 + 3 and r["empty"] == {} and np.isnan(r["nan"])
    assert list(r) == list(obj)  # key order and int keys preserved


def test_model_and_optimizer_state_dicts(tmp_path):
    m = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 2))
    opt = optim.Adam(m.parameters(), lr=0.01, amsgrad=True)
    m(tinyfw.randn(3, 4)).sum().backward()
    opt.step()
    tinyfw.save({"model": m.state_dict(), "opt": opt.state_dict()}, tmp_path / "ck")
    ck = tinyfw.load(tmp_path / "ck")
    m2 = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 2))
    m2.load_state_dict(ck["model"])
    opt2 = optim.Adam(m2.parameters(), lr=1.0)
    opt2.load_state_dict(ck["opt"])
    assert opt2.param_groups[0]["lr"] == 0.01 and opt2.param_groups[0]["betas"] == (0.9, 0.999)
    for a, b in zip(m.parameters(), m2.parameters()):
        np.testing.assert_array_equal(npy(a), npy(b))
        for k, v in opt.state[a].items():
            np.testing.assert_array_equal(npy(v), npy(opt2.state[b][k]))


def test_unsupported_values_are_refused(tmp_path):
    with pytest.raises(CheckpointError, match=r"obj\['f'\] is a function"):
        tinyfw.save({"f": lambda: 0}, tmp_path / "x")
    with pytest.raises(CheckpointError, match="numpy array; wrap it"):
        tinyfw.save([np.zeros(2)], tmp_path / "x")
    with pytest.raises(CheckpointError, match="key of type tuple"):
        tinyfw.save({(1, 2): 3}, tmp_path / "x")
    assert not os.listdir(tmp_path)  # nothing half-written


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    p = tmp_path / "ck"
    tinyfw.save({"v": tinyfw.ones(3)}, p)

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        tinyfw.save({"v": tinyfw.zeros(3)}, p)
    monkeypatch.undo()
    assert tinyfw.load(p)["v"].tolist() == [1.0, 1.0, 1.0]
    assert os.listdir(tmp_path) == ["ck"]  # the temporary file was removed


def _saved(tmp_path) -> tuple:
    p = tmp_path / "ck"
    tinyfw.save({"w": tinyfw.arange(100).float(), "meta": {"epoch": 3}}, p)
    return p, p.read_bytes()


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.tfw"):
        tinyfw.load(tmp_path / "nope.tfw")


@pytest.mark.parametrize("cut", [0, 5, 8, 40, -1, -100])
def test_truncated_file(tmp_path, cut):
    p, data = _saved(tmp_path)
    p.write_bytes(data[:cut])
    with pytest.raises(CheckpointError, match=f"{p.name}.*(truncated|corrupt)"):
        tinyfw.load(p)


def test_flipped_bytes_anywhere_are_detected(tmp_path):
    p, data = _saved(tmp_path)
    (n,) = struct.unpack("<Q", data[:8])
    rng = np.random.default_rng(0)
    positions = sorted(set(rng.integers(8, len(data), 60).tolist()) | {8 + n + 17, len(data) - 1})
    for pos in positions:
        bad = bytearray(data)
        bad[pos] ^= 0x04
        p.write_bytes(bytes(bad))
        with pytest.raises(CheckpointError, match=p.name):
            tinyfw.load(p)


def test_wrong_header(tmp_path):
    p, data = _saved(tmp_path)
    p.write_bytes(struct.pack("<Q", 1 << 40) + data[8:])
    with pytest.raises(CheckpointError, match="header length field"):
        tinyfw.load(p)
    p.write_bytes(b"PK\x03\x04 this is a zip file, not a checkpoint" * 3)
    with pytest.raises(CheckpointError, match=p.name):
        tinyfw.load(p)
    header = b'{"t0":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}'
    p.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 8)
    with pytest.raises(CheckpointError, match=r"shape \(3,\) of F32 needs 12 bytes but "
                                              "data_offsets"):
        tinyfw.load(p)


def test_missing_structure_metadata(tmp_path):
    p, data = _saved(tmp_path)
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    del header["__metadata__"]["tinyfw.structure"]
    hb = json.dumps(header).encode()
    p.write_bytes(struct.pack("<Q", len(hb)) + hb + data[8 + n:])
    with pytest.raises(CheckpointError, match="structure entry is missing"):
        tinyfw.load(p)


def test_plain_safetensors_file_loads_as_dict(tmp_path):
    from safetensors.numpy import save_file

    save_file({"a": np.arange(4, dtype=np.float32)}, str(tmp_path / "w.safetensors"))
    r = tinyfw.load(tmp_path / "w.safetensors")
    assert r["a"].tolist() == [0.0, 1.0, 2.0, 3.0]


# -- resuming training -------------------------------------------------------------------
def _setup(seed=0):
    tinyfw.manual_seed(seed)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3))
    opt = optim.AdamW(model.parameters(), lr=0.01, amsgrad=True)
    sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=40)
    rng = np.random.default_rng(1)
    ds = TensorDataset(from_np(rng.standard_normal((40, 6)).astype(np.float32)),
                       from_np(rng.integers(0, 3, 40)))
    gen = tinyfw.Generator(5)
    loader = DataLoader(ds, batch_size=8, shuffle=True, generator=gen)
    return model, opt, sched, loader, gen


def _train_epoch(model, opt, sched, loader):
    loss_fn = nn.CrossEntropyLoss()
    for x, y in loader:
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
        sched.step()


def test_resume_from_checkpoint_is_bit_identical(tmp_path):
    model, opt, sched, loader, gen = _setup()
    for _ in range(8):  # uninterrupted: 8 epochs of 5 batches
        _train_epoch(model, opt, sched, loader)
    expected = [npy(p).copy() for p in model.parameters()]

    model, opt, sched, loader, gen = _setup()
    for _ in range(3):
        _train_epoch(model, opt, sched, loader)
    tinyfw.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                 "scheduler": sched.state_dict(), "rng": tinyfw.get_rng_state(),
                 "loader_rng": gen.get_state()}, tmp_path / "resume.ckpt")
    del model, opt, sched, loader

    model, opt, sched, loader, gen = _setup(seed=123)  # fresh objects, different init
    ck = tinyfw.load(tmp_path / "resume.ckpt")
    model.load_state_dict(ck["model"])
    opt.load_state_dict(ck["optimizer"])
    sched.load_state_dict(ck["scheduler"])
    tinyfw.set_rng_state(ck["rng"])
    gen.set_state(ck["loader_rng"])
    for _ in range(5):
        _train_epoch(model, opt, sched, loader)
    for a, b in zip(model.parameters(), expected):
        np.testing.assert_array_equal(npy(a), b)


# -- devices -------------------------------------------------------------------------------
def _file(tmp_path, structure, tensors, version="2"):
    """A checkpoint written by hand (e.g. one a format-1 tinyfw or a GPU machine wrote)."""
    from safetensors.numpy import save as st_save

    from tinyfw import serialization as S

    text = json.dumps(structure)
    meta = {S._FORMAT: version, S._MAGIC: text, S._CRC: S._checksum(text, tensors)}
    p = tmp_path / "hand.tfw"
    p.write_bytes(st_save(tensors, metadata=meta))
    return p


def test_save_records_each_tensors_device_and_load_restores_it(tmp_path):
    a = tinyfw.arange(6, dtype=tinyfw.float32, device="check").reshape(2, 3)
    b = tinyfw.tensor([1, 2], device="cpu")
    tinyfw.save({"a": a, "b": b}, tmp_path / "ck")
    r = tinyfw.load(tmp_path / "ck")
    assert r["a"].device == tinyfw.device("check") and r["b"].device == tinyfw.device("cpu")
    assert r["a"].tolist() == a.tolist() and r["b"].tolist() == [1, 2]


@pytest.mark.parametrize("where", ["cpu", "check", "meta"])
@pytest.mark.parametrize("form", ["str", "device"])
def test_map_location_moves_every_tensor(tmp_path, where, form):
    obj = {"x": tinyfw.randn(3, 2, device="check"), "y": tinyfw.ones(2, device="cpu")}
    tinyfw.save(obj, tmp_path / "ck")
    r = tinyfw.load(tmp_path / "ck", map_location=where if form == "str" else tinyfw.device(where))
    for k in obj:
        assert r[k].device == tinyfw.device(where) and r[k].shape == obj[k].shape
        assert r[k].dtype is obj[k].dtype
        if where != "meta":  # meta tensors keep shape and dtype, no values
            np.testing.assert_array_equal(npy(r[k]), npy(obj[k]))


def test_map_location_dict_and_callable(tmp_path):
    tinyfw.save({"x": tinyfw.ones(2, device="check"), "y": tinyfw.zeros(2, device="cpu")},
                tmp_path / "ck")
    r = tinyfw.load(tmp_path / "ck", map_location={"check": "cpu"})  # cpu ones stay
    assert r["x"].device == tinyfw.device("cpu") and r["y"].device == tinyfw.device("cpu")
    r = tinyfw.load(tmp_path / "ck", map_location={tinyfw.device("cpu"): "check"})
    assert r["x"].device == tinyfw.device("check") and r["y"].device == tinyfw.device("check")
    seen = []

    def keep_on_host(t, location):  # PyTorch's lambda storage, loc: storage
        seen.append((location, t.device.type))
        return t

    r = tinyfw.load(tmp_path / "ck", map_location=keep_on_host)
    assert seen == [("check", "cpu"), ("cpu", "cpu")]
    assert r["x"].device == tinyfw.device("cpu") and r["x"].tolist() == [1.0, 1.0]
    r = tinyfw.load(tmp_path / "ck", map_location=lambda t, loc: None)  # None: saved device
    assert r["x"].device == tinyfw.device("check")
    with pytest.raises(TypeError, match="map_location returned a list"):
        tinyfw.load(tmp_path / "ck", map_location=lambda t, loc: [t])


def test_unavailable_saved_device_asks_for_map_location(tmp_path):
    p = _file(tmp_path, {"T": ["t0", "check:3"]}, {"t0": np.arange(3, dtype=np.float32)})
    with pytest.raises(RuntimeError, match="saved on 'check:3'.*map_location='cpu'"):
        tinyfw.load(p)
    r = tinyfw.load(p, map_location="cpu")
    assert r.device == tinyfw.device("cpu") and r.tolist() == [0.0, 1.0, 2.0]


def test_format_1_files_hold_cpu_tensors(tmp_path):
    p = _file(tmp_path, {"D": [["w", {"T": "t0"}]]}, {"t0": np.arange(4, dtype=np.float32)},
              version="1")
    r = tinyfw.load(p)
    assert r["w"].device == tinyfw.device("cpu") and r["w"].tolist() == [0.0, 1.0, 2.0, 3.0]
    assert tinyfw.load(p, map_location="check")["w"].device == tinyfw.device("check")


def test_meta_tensors_keep_shape_and_dtype(tmp_path):
    m = nn.Linear(3, 4, device="meta", dtype=tinyfw.float64)
    tinyfw.save(m.state_dict(), tmp_path / "ck")
    r = tinyfw.load(tmp_path / "ck", map_location="cpu")  # no values to move: still meta
    assert r["weight"].is_meta and r["weight"].shape == (4, 3)
    assert r["weight"].dtype is tinyfw.float64 and r["bias"].shape == (4,)


def test_plain_safetensors_file_with_map_location(tmp_path):
    from safetensors.numpy import save_file

    save_file({"a": np.arange(4, dtype=np.float32)}, str(tmp_path / "w.safetensors"))
    r = tinyfw.load(tmp_path / "w.safetensors", map_location="check")
    assert r["a"].device == tinyfw.device("check") and r["a"].tolist() == [0.0, 1.0, 2.0, 3.0]

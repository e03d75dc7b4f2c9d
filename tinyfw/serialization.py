"""Checkpoints: `tinyfw.save(obj, path)` and `tinyfw.load(path)`, never unpickled.

One file in the safetensors format holds everything:

- every tensor of `obj` as a safetensors tensor named ``t0``, ``t1`` ...;
- in the header's ``__metadata__``: ``tinyfw.structure``, a JSON description of the
  non-tensor structure (dicts with str/int keys, lists, tuples, numbers, strings, bools,
  None, and references to the tensors), and ``tinyfw.crc32``, a checksum over the
  structure and every tensor's bytes, so flipped bits anywhere are detected on load.

So a Tensor, a model's state dict, an optimizer's state dict (int keys, tuples of
betas), a scheduler's state dict and an RNG state (128-bit ints) all round-trip exactly.
Keeping the structure in the header instead of a sidecar file means a checkpoint is one
file, written atomically: to a temporary file in the same directory, flushed and
fsynced, then renamed over the target with ``os.replace`` (a crash leaves either the old
or the new checkpoint, never half of one).  A plain safetensors file written by another
tool loads as a dict of tensors.
"""
from __future__ import annotations

import json
import math
import os
import struct
import tempfile
import zlib
from typing import Any

import numpy as np

from .tensor import Tensor

__all__ = ["save", "load", "CheckpointError"]

_MAGIC = "tinyfw.structure"
_CRC = "tinyfw.crc32"
_FORMAT = "tinyfw.format"
_VERSION = "1"
# a safetensors header is JSON of a few KB per thousand tensors; anything this large is
# a corrupt length field, not a header
_MAX_HEADER = 100 * 1024 * 1024


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, truncated, corrupt, or holds something unsupported."""


# -- encoding the structure ---------------------------------------------------------------
def _encode(obj: Any, tensors: dict[str, np.ndarray], where: str) -> Any:
    if isinstance(obj, Tensor):
        name = f"t{len(tensors)}"
        a = obj.detach()._data
        tensors[name] = a if a.flags.c_contiguous else a.copy(order="C")  # 0-d stays 0-d
        return {"T": name}
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        # JSON has no inf/nan: keep them as tagged strings
        return v if math.isfinite(v) else {"F": repr(v)}
    if isinstance(obj, np.ndarray):
        raise CheckpointError(f"save: {where} is a numpy array; wrap it with "
                              "tinyfw.from_numpy() so it is stored as a tensor")
    if isinstance(obj, dict):
        items = []
        for k, v in obj.items():
            if isinstance(k, bool) or not isinstance(k, (str, int, np.integer)):
                raise CheckpointError(f"save: {where} has a key of type {type(k).__name__}; "
                                      "only str and int keys are supported")
            key = k if isinstance(k, str) else int(k)
            items.append([key, _encode(v, tensors, f"{where}[{k!r}]")])
        return {"D": items}
    if isinstance(obj, (list, tuple)):
        vals = [_encode(v, tensors, f"{where}[{i}]") for i, v in enumerate(obj)]
        return {"L": vals} if isinstance(obj, list) else {"U": vals}
    raise CheckpointError(f"save: {where} is a {type(obj).__name__}, which a checkpoint "
                          "cannot hold (tensors, dicts, lists, tuples, numbers, str, bool, None)")


def _decode(node: Any, tensors: dict[str, np.ndarray], path: str) -> Any:
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if isinstance(node, dict) and len(node) == 1:
        (tag, val), = node.items()
        if tag == "T":
            if val not in tensors:
                raise CheckpointError(f"load: {path}: the structure refers to tensor {val!r}, "
                                      "which the file does not contain (corrupt file)")
            return Tensor._make(tensors[val])
        if tag == "F":
            return float(val)
        if tag == "D":
            return {k: _decode(v, tensors, path) for k, v in val}
        if tag == "L":
            return [_decode(v, tensors, path) for v in val]
        if tag == "U":
            return tuple(_decode(v, tensors, path) for v in val)
    raise CheckpointError(f"load: {path}: unrecognised entry in the structure (corrupt file)")


def _checksum(structure: str, tensors: dict[str, np.ndarray]) -> str:
    crc = zlib.crc32(structure.encode())
    for name in sorted(tensors, key=lambda n: int(n[1:]) if n[1:].isdigit() else -1):
        a = tensors[name]
        crc = zlib.crc32(f"{name}:{a.dtype.str}:{a.shape}".encode(), crc)
        crc = zlib.crc32(a.reshape(-1).view(np.uint8).data, crc)
    return f"{crc:08x}"


# -- public API ---------------------------------------------------------------------------
def save(obj: Any, path: str | os.PathLike) -> None:
    """Write `obj` (a Tensor, or nested dicts/lists/tuples of tensors and plain values,
    such as model/optimizer/scheduler state dicts) to `path` atomically."""
    from safetensors.numpy import save as st_save

    path = os.fspath(path)
    tensors: dict[str, np.ndarray] = {}
    structure = json.dumps(_encode(obj, tensors, "obj"), separators=(",", ":"))
    meta = {_FORMAT: _VERSION, _MAGIC: structure, _CRC: _checksum(structure, tensors)}
    blob = st_save(tensors, metadata=meta)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"save: directory {directory!r} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=".tmp-" + os.path.basename(path) + "-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename itself durable
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def _read_header(data: bytes, path: str) -> dict:
    if len(data) < 8:
        raise CheckpointError(f"load: {path} is truncated ({len(data)} bytes; a checkpoint "
                              "starts with an 8-byte header length)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > _MAX_HEADER or 8 + n > len(data):
        raise CheckpointError(f"load: {path} is truncated or not a safetensors checkpoint "
                              f"(header length field says {n} bytes, the file has "
                              f"{len(data)} bytes in all)")
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"load: {path} has a corrupt header ({e})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"load: {path} has a corrupt header (not a JSON object)")
    end = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            end = max(end, int(info["data_offsets"][1]))
        except (TypeError, KeyError, IndexError, ValueError):
            raise CheckpointError(f"load: {path} has a corrupt header entry for {name!r}") from None
    if 8 + n + end > len(data):
        raise CheckpointError(f"load: {path} is truncated: its tensors need {8 + n + end} bytes "
                              f"but the file has {len(data)}")
    return header


_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64,
           "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "U16": np.uint16,
           "U32": np.uint32, "U64": np.uint64, "BOOL": np.bool_}


def _np_dtype(code: str, name: str, path: str) -> np.dtype:
    if code == "BF16":  # safetensors.numpy cannot read these; ml_dtypes can
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    if code not in _DTYPES:
        raise CheckpointError(f"load: {path}: tensor {name!r} has unsupported dtype {code!r}")
    return np.dtype(_DTYPES[code])


def _read_tensors(data: bytes, header: dict, path: str) -> dict[str, np.ndarray]:
    (n,) = struct.unpack("<Q", data[:8])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            shape = tuple(int(d) for d in info["shape"])
            start, stop = (int(x) for x in info["data_offsets"])
            code = info["dtype"]
        except (TypeError, KeyError, ValueError):
            raise CheckpointError(f"load: {path} has a corrupt header entry for {name!r}") from None
        dt = _np_dtype(code, name, path)
        count = math.prod(shape)
        if min(shape, default=0) < 0 or stop - start != count * dt.itemsize or start < 0:
            raise CheckpointError(f"load: {path}: tensor {name!r} of shape {shape} and dtype "
                                  f"{code} does not fit its byte range [{start}, {stop}) "
                                  "(corrupt header)")
        arr = np.frombuffer(data, dtype=dt, count=count, offset=base + start)
        out[name] = arr.reshape(shape).copy()  # writable, owns its memory
    return out


def load(path: str | os.PathLike) -> Any:
    """Read a checkpoint written by `save` (or any safetensors file, as a dict of tensors).

    Raises FileNotFoundError if `path` does not exist and `CheckpointError` (naming the
    file) if it is truncated, corrupt or fails its checksum.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"load: checkpoint {path!r} does not exist")
    with open(path, "rb") as f:
        data = f.read()
    header = _read_header(data, path)
    tensors = _read_tensors(data, header, path)
    meta = header.get("__metadata__") or {}
    if not isinstance(meta, dict):
        raise CheckpointError(f"load: {path} has a corrupt header (__metadata__ is not a dict)")
    if _MAGIC not in meta:
        if _CRC in meta or _FORMAT in meta:
            raise CheckpointError(f"load: {path} is a tinyfw checkpoint whose structure entry "
                                  "is missing (corrupt file)")
        # a plain safetensors file (e.g. weights exported by another tool)
        return {k: Tensor._make(v) for k, v in tensors.items()}
    # the checksum cannot cover the metadata it lives in, so check that part by its shape
    if set(meta) != {_FORMAT, _MAGIC, _CRC} or meta[_FORMAT] != _VERSION:
        raise CheckpointError(f"load: {path} has unexpected metadata {sorted(meta)} (format "
                              f"{meta.get(_FORMAT)!r}; this tinyfw reads format {_VERSION!r}): "
                              "corrupt file or a newer tinyfw's checkpoint")
    structure = meta[_MAGIC]
    if meta.get(_CRC) != _checksum(structure, tensors):
        raise CheckpointError(f"load: {path} failed its checksum: the file was modified or "
                              "damaged after it was written")
    try:
        tree = json.loads(structure)
    except json.JSONDecodeError as e:
        raise CheckpointError(f"load: {path} has a corrupt structure entry ({e})") from None
    return _decode(tree, tensors, path)

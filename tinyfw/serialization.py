"""Checkpoints: `tinyfw.save(obj, path)` and `tinyfw.load(path)`, never unpickled.

One file in the safetensors format holds everything:

- every tensor of `obj` as a safetensors tensor named ``t0``, ``t1`` ...;
- in the header's ``__metadata__``: ``tinyfw.structure``, a JSON description of the
  non-tensor structure (dicts with str/int keys, lists, tuples, numbers, strings, bools,
  None, and references to the tensors), and ``tinyfw.crc32``, a checksum over the
  structure and every tensor's bytes, so flipped bits anywhere are detected on load.

So a Tensor, a model's state dict, an optimizer's state dict (int keys, tuples of
betas), a scheduler's state dict and an RNG state (128-bit ints) all round-trip exactly.

Devices: the structure records each tensor's device (format 2; format-1 files hold CPU
tensors), and `load` puts it back there unless told otherwise with ``map_location``, as
in PyTorch.  Values travel through the host (`to_host` / `from_host` of the tensor's
backend).  A meta tensor is stored as its shape and dtype only and loads as a meta
tensor.
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
from numbers import Integral, Real
from typing import Any, Callable, Union

from . import dtypes as _dt
from .backend import backend_for, host
from .device import Device, as_device
from .tensor import Tensor

__all__ = ["save", "load", "CheckpointError"]

_MAGIC = "tinyfw.structure"
_CRC = "tinyfw.crc32"
_FORMAT = "tinyfw.format"
_VERSION = "2"  # 2: tensors record their device; 1 (still read): CPU tensors only
_READS = ("1", "2")

#: where load puts tensors: a device (or its name), a {saved: wanted} dict of device names,
#: or a callable (cpu_tensor, saved_device_name) -> tensor or None
MapLocation = Union[None, str, Device, dict, Callable[[Tensor, str], Any]]
# a safetensors header is JSON of a few KB per thousand tensors; anything this large is
# a corrupt length field, not a header
_MAX_HEADER = 100 * 1024 * 1024


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, truncated, corrupt, or holds something unsupported."""


# -- encoding the structure ---------------------------------------------------------------
def _encode(obj: Any, tensors: dict, where: str) -> Any:
    if isinstance(obj, Tensor):
        t = obj.detach()
        dev = t.device
        if dev.type == "meta":  # no values: shape and dtype are all there is to keep
            return {"M": [list(t.shape), t.dtype.name]}
        name = f"t{len(tensors)}"
        tensors[name] = t.contiguous()._host()  # row-major host values; 0-d stays 0-d
        return {"T": [name, str(dev)]}
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, Integral):
        return int(obj)
    if isinstance(obj, Real):
        v = float(obj)
        # JSON has no inf/nan: keep them as tagged strings
        return v if math.isfinite(v) else {"F": repr(v)}
    if host.is_host_array(obj):
        raise CheckpointError(f"save: {where} is a numpy array; wrap it with "
                              "tinyfw.from_numpy() so it is stored as a tensor")
    if isinstance(obj, dict):
        items = []
        for k, v in obj.items():
            if isinstance(k, bool) or not isinstance(k, (str, Integral)):
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


def _place(arr, saved: str, map_location: MapLocation, path: str) -> Tensor:
    """Host array `arr` of a tensor saved on device `saved`, put where map_location says
    (PyTorch's rules: None restores the saved device)."""
    if callable(map_location) and not isinstance(map_location, (str, Device, dict)):
        out = map_location(Tensor._make(arr), saved)
        if out is not None:
            if not isinstance(out, Tensor):
                raise TypeError(f"load: map_location returned a {type(out).__name__}; it must "
                                "return a Tensor (or None for the saved device)")
            return out
        target = saved
    elif isinstance(map_location, dict):
        names = {str(Device(k)): v for k, v in map_location.items()}
        target = names.get(str(Device(saved)), saved)
    else:
        target = saved if map_location is None else map_location
    try:
        dev = as_device(target)
    except RuntimeError as e:
        raise RuntimeError(f"load: {path}: a tensor was saved on '{saved}' and cannot be "
                           f"restored there ({e}); pass map_location (e.g. "
                           "map_location='cpu') to load it elsewhere") from None
    return Tensor._make(backend_for(dev).from_host(arr))


def _decode(node: Any, tensors: dict, path: str, map_location: MapLocation = None) -> Any:
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if isinstance(node, dict) and len(node) == 1:
        (tag, val), = node.items()
        if tag == "T":
            if isinstance(val, str):  # format 1: a CPU tensor
                name, saved = val, "cpu"
            elif isinstance(val, list) and len(val) == 2 and all(isinstance(v, str) for v in val):
                name, saved = val
            else:
                name, saved = None, None
            if name not in tensors:
                raise CheckpointError(f"load: {path}: the structure refers to tensor {name!r}, "
                                      "which the file does not contain (corrupt file)")
            return _place(tensors[name], saved, map_location, path)
        if tag == "M":
            try:
                shape, dtype = tuple(int(n) for n in val[0]), _dt.as_dtype(val[1])
            except (TypeError, ValueError, IndexError, KeyError):
                raise CheckpointError(f"load: {path}: corrupt meta tensor entry {val!r}") from None
            return Tensor._make(backend_for(Device("meta")).empty(shape, dtype.np))
        if tag == "F":
            return float(val)
        if tag == "D":
            return {k: _decode(v, tensors, path, map_location) for k, v in val}
        if tag == "L":
            return [_decode(v, tensors, path, map_location) for v in val]
        if tag == "U":
            return tuple(_decode(v, tensors, path, map_location) for v in val)
    raise CheckpointError(f"load: {path}: unrecognised entry in the structure (corrupt file)")


def _checksum(structure: str, tensors: dict) -> str:
    crc = zlib.crc32(structure.encode())
    for name in sorted(tensors, key=lambda n: int(n[1:]) if n[1:].isdigit() else -1):
        a = tensors[name]
        crc = zlib.crc32(f"{name}:{a.dtype.str}:{a.shape}".encode(), crc)
        crc = zlib.crc32(host.to_bytes(a), crc)
    return f"{crc:08x}"


# -- public API ---------------------------------------------------------------------------
def save(obj: Any, path: str | os.PathLike) -> None:
    """Write `obj` (a Tensor, or nested dicts/lists/tuples of tensors and plain values,
    such as model/optimizer/scheduler state dicts) to `path` atomically; each tensor's
    values and device are recorded (meta tensors: shape and dtype only)."""
    from safetensors.numpy import save as st_save

    path = os.fspath(path)
    tensors: dict = {}
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


_DTYPES = {"F64": _dt.float64, "F32": _dt.float32, "F16": _dt.float16, "BF16": _dt.bfloat16,
           "I64": _dt.int64, "I32": _dt.int32, "I8": _dt.int8, "BOOL": _dt.bool_}


def _dtype(code: str, name: str, path: str) -> _dt.DType:
    if code not in _DTYPES:
        raise CheckpointError(f"load: {path}: tensor {name!r} has dtype {code!r}, which tinyfw "
                              f"has no type for (it reads {', '.join(_DTYPES)})")
    return _DTYPES[code]


def _read_tensors(data: bytes, header: dict, path: str) -> dict:
    """name -> host array of every tensor in the file (each a writable copy)."""
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
        dt = _dtype(code, name, path)
        count = math.prod(shape)
        if min(shape, default=0) < 0 or stop - start != count * dt.itemsize or start < 0:
            raise CheckpointError(f"load: {path}: tensor {name!r} of shape {shape} and dtype "
                                  f"{code} does not fit its byte range [{start}, {stop}) "
                                  "(corrupt header)")
        out[name] = host.from_bytes(data, base + start, dt, shape)
    return out


def load(path: str | os.PathLike, map_location: MapLocation = None) -> Any:
    """Read a checkpoint written by `save` (or any safetensors file, as a dict of CPU
    tensors).

    Tensors go back to the device they were saved from unless `map_location` says
    otherwise (PyTorch's forms): a device or its name (every tensor goes there), a dict
    ``{saved device name: device}`` (others stay), or a callable
    ``f(cpu_tensor, saved_device_name)`` returning the tensor to use (None: the saved
    device).  A device that is not available here is an error suggesting map_location.
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
        return {k: _place(v, "cpu", map_location, path) for k, v in tensors.items()}
    # the checksum cannot cover the metadata it lives in, so check that part by its shape
    if set(meta) != {_FORMAT, _MAGIC, _CRC} or meta[_FORMAT] not in _READS:
        raise CheckpointError(f"load: {path} has unexpected metadata {sorted(meta)} (format "
                              f"{meta.get(_FORMAT)!r}; this tinyfw reads formats "
                              f"{' and '.join(_READS)}): corrupt file or a newer tinyfw's "
                              "checkpoint")
    structure = meta[_MAGIC]
    if meta.get(_CRC) != _checksum(structure, tensors):
        raise CheckpointError(f"load: {path} failed its checksum: the file was modified or "
                              "damaged after it was written")
    try:
        tree = json.loads(structure)
    except json.JSONDecodeError as e:
        raise CheckpointError(f"load: {path} has a corrupt structure entry ({e})") from None
    return _decode(tree, tensors, path, map_location)

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
or the new checkpoint, never half of one, plus the temporary file, which the next save of
that target removes once its writer is gone).  A plain safetensors file written by
another tool loads as a dict of tensors.

Loading trusts nothing in the file: the container is parsed strictly (`_safetensors`),
every node of the structure is checked before use and nesting is bounded (`MAX_DEPTH`),
so a damaged or hostile file raises `CheckpointError` naming the problem.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import socket
import tempfile
import zlib
from numbers import Integral, Real
from typing import Any, Callable, Union

from . import _safetensors as st
from . import dtypes as _dt
from ._safetensors import CheckpointError
from .backend import backend_for, host
from .device import Device, as_device
from .tensor import Tensor

__all__ = ["save", "load", "CheckpointError"]
CheckpointError.__module__ = __name__  # its public home

_MAGIC = "tinyfw.structure"
_CRC = "tinyfw.crc32"
_FORMAT = "tinyfw.format"
_VERSION = "2"  # 2: tensors record their device; 1 (still read): CPU tensors only
_READS = ("1", "2")

#: where load puts tensors: a device (or its name), a {saved: wanted} dict of device names,
#: or a callable (cpu_tensor, saved_device_name) -> tensor or None
MapLocation = Union[None, str, Device, dict, Callable[[Tensor, str], Any]]
# how many dicts, lists and tuples may nest in a checkpoint (state dicts: about 4): save
# refuses deeper objects, load calls deeper structures corrupt, so neither can run out of
# Python's stack
MAX_DEPTH = 100
_NONFINITE = {"inf", "-inf", "nan"}


# -- encoding the structure ---------------------------------------------------------------
def _encode(obj: Any, tensors: dict, where: str, depth: int = 0) -> Any:
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
    if isinstance(obj, (dict, list, tuple)) and depth >= MAX_DEPTH:
        raise CheckpointError(f"save: {where} is nested more than {MAX_DEPTH} levels deep "
                              "(or the object contains itself), which a checkpoint cannot hold")
    if isinstance(obj, dict):
        items = []
        for k, v in obj.items():
            if isinstance(k, bool) or not isinstance(k, (str, Integral)):
                raise CheckpointError(f"save: {where} has a key of type {type(k).__name__}; "
                                      "only str and int keys are supported")
            key = k if isinstance(k, str) else int(k)
            items.append([key, _encode(v, tensors, f"{where}[{k!r}]", depth + 1)])
        return {"D": items}
    if isinstance(obj, (list, tuple)):
        vals = [_encode(v, tensors, f"{where}[{i}]", depth + 1) for i, v in enumerate(obj)]
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
        target = names.get(saved, saved)
    else:
        target = saved if map_location is None else map_location
    try:
        dev = as_device(target)
    except RuntimeError as e:
        # the saved device is missing here (a CheckpointError: what the file holds cannot
        # be loaded as it is), or the one map_location asks for is (the caller's error)
        err = CheckpointError if str(target) == saved else RuntimeError
        raise err(f"load: {path}: a tensor was saved on '{saved}' and cannot be restored "
                  f"on '{target}' ({e}); pass map_location (e.g. map_location='cpu') to "
                  "load it elsewhere") from None
    return Tensor._make(backend_for(dev).from_host(arr))


class _Decoder:
    """Rebuilds the object of a checkpoint's structure, checking every node: each tensor
    is referenced exactly once, tags hold what `_encode` writes, nesting is bounded."""

    def __init__(self, tensors: dict, path: str, map_location: MapLocation):
        self.tensors, self.path, self.map_location = tensors, path, map_location
        self.used: set = set()

    def corrupt(self, why: str) -> CheckpointError:
        return CheckpointError(f"load: {self.path}: corrupt structure entry: {why}")

    def tensor(self, val) -> Tensor:
        if isinstance(val, str):  # format 1: a CPU tensor
            name, saved = val, "cpu"
        elif isinstance(val, list) and len(val) == 2 and all(isinstance(v, str) for v in val):
            name, saved = val
        else:
            raise self.corrupt(f"a tensor reference must be a name or [name, device], got "
                               f"{st.short(val)}")
        if name not in self.tensors:
            raise self.corrupt(f"it refers to tensor {st.short(name)}, which the file does not "
                               "contain")
        if name in self.used:
            raise self.corrupt(f"tensor {st.short(name)} is referred to twice")
        self.used.add(name)
        try:
            saved = str(Device(saved))
        except (ValueError, TypeError, RuntimeError) as e:
            raise self.corrupt(f"tensor {st.short(name)} has device {st.short(saved)} "
                               f"({e})") from None
        return _place(self.tensors[name], saved, self.map_location, self.path)

    def meta(self, val) -> Tensor:
        if not (isinstance(val, list) and len(val) == 2 and st.valid_shape(val[0])
                and isinstance(val[1], str) and val[1] in {d.name for d in _dt.ALL}):
            raise self.corrupt(f"a meta tensor must be [shape, dtype name], got {st.short(val)}")
        if math.prod(val[0]) >= 2 ** 63:
            raise self.corrupt(f"meta tensor of shape {tuple(val[0])} has too many elements")
        dtype = _dt.as_dtype(val[1])
        return Tensor._make(backend_for(Device("meta")).empty(tuple(val[0]), dtype.np))

    def __call__(self, node: Any, depth: int = 0) -> Any:
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if not (isinstance(node, dict) and len(node) == 1):
            raise self.corrupt(f"unrecognised node {st.short(node)}")
        (tag, val), = node.items()
        if tag == "T":
            return self.tensor(val)
        if tag == "M":
            return self.meta(val)
        if tag == "F":
            if not (isinstance(val, str) and val in _NONFINITE):
                raise self.corrupt(f"a non-finite float must be 'inf', '-inf' or 'nan', got "
                                   f"{st.short(val)}")
            return float(val)
        if tag in ("D", "L", "U") and depth >= MAX_DEPTH:
            raise self.corrupt(f"nested more than {MAX_DEPTH} levels deep")
        if tag == "D":
            if not (isinstance(val, list) and all(
                    isinstance(kv, list) and len(kv) == 2
                    and (isinstance(kv[0], str) or st.is_int(kv[0])) for kv in val)):
                raise self.corrupt(f"a dict must be a list of [str or int key, value] pairs, "
                                   f"got {st.short(val)}")
            out = {}
            for k, v in val:
                if k in out:
                    raise self.corrupt(f"a dict has the key {st.short(k)} twice")
                out[k] = self(v, depth + 1)
            return out
        if tag in ("L", "U"):
            if not isinstance(val, list):
                raise self.corrupt(f"a list or tuple must be a JSON list, got {st.short(val)}")
            vals = [self(v, depth + 1) for v in val]
            return vals if tag == "L" else tuple(vals)
        raise self.corrupt(f"unknown tag {tag!r:.100}")


def _checksum(structure: str, tensors: dict) -> str:
    crc = zlib.crc32(structure.encode())
    for name in sorted(tensors, key=lambda n: int(n[1:]) if n[1:].isdigit() else -1):
        a = tensors[name]
        crc = zlib.crc32(f"{name}:{a.dtype.str}:{a.shape}".encode(), crc)
        crc = zlib.crc32(host.to_bytes(a), crc)
    return f"{crc:08x}"


# -- public API ---------------------------------------------------------------------------
# -- temporary files ------------------------------------------------------------------------
def _writer_tag() -> str:
    """Names the machine and pid namespace of this process, so that a temporary file's
    pid can be checked only where it means this process table (not on another host
    sharing the directory, nor in another container)."""
    try:
        ns = os.readlink("/proc/self/ns/pid")
    except OSError:
        ns = ""
    return hashlib.sha1(f"{socket.gethostname()}/{ns}".encode()).hexdigest()[:8]


def _temp_prefix(base: str) -> str:
    # .tmp-<target>.<writer tag>.<pid>.<8 random chars from mkstemp>
    return f".tmp-{base}.{_writer_tag()}.{os.getpid()}."


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, owned by someone else
        return True
    return True


def _remove_stale_temps(directory: str, base: str) -> None:
    """Delete the temporary files that interrupted saves of `base` left in `directory`:
    exactly our naming pattern, written on this machine and pid namespace by a process
    that no longer exists.  A live writer's file (another thread or process saving the
    same target right now) is never touched; a reused pid only keeps a stale file."""
    pattern = re.compile(re.escape(f".tmp-{base}.{_writer_tag()}.") + r"(\d+)\.[a-z0-9_]{8}")
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        m = pattern.fullmatch(name)
        if m is None or _pid_alive(int(m.group(1))):
            continue
        try:
            os.unlink(os.path.join(directory, name))
        except OSError:  # removed by another cleaner meanwhile, or not ours to remove
            pass


# -- public API ---------------------------------------------------------------------------
def save(obj: Any, path: str | os.PathLike) -> None:
    """Write `obj` (a Tensor, or nested dicts/lists/tuples of tensors and plain values,
    such as model/optimizer/scheduler state dicts) to `path` atomically; each tensor's
    values and device are recorded (meta tensors: shape and dtype only).

    The file is written under a temporary name in the same directory and renamed over
    `path`; temporary files that earlier, interrupted saves of the same `path` left
    behind are removed (only those whose writing process is gone)."""
    from safetensors.numpy import save as st_save

    path = os.fspath(path)
    tensors: dict = {}
    structure = json.dumps(_encode(obj, tensors, "obj"), separators=(",", ":"))
    meta = {_FORMAT: _VERSION, _MAGIC: structure, _CRC: _checksum(structure, tensors)}
    blob = st_save(tensors, metadata=meta)
    directory = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"save: directory {directory!r} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(base), dir=directory)
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
    _remove_stale_temps(directory, base)


def load(path: str | os.PathLike, map_location: MapLocation = None) -> Any:
    """Read a checkpoint written by `save` (or any safetensors file, as a dict of CPU
    tensors; integer types tinyfw has no dtype for are widened, see `_safetensors`).

    Tensors go back to the device they were saved from unless `map_location` says
    otherwise (PyTorch's forms): a device or its name (every tensor goes there), a dict
    ``{saved device name: device}`` (others stay), or a callable
    ``f(cpu_tensor, saved_device_name)`` returning the tensor to use (None: the saved
    device).  A device that is not available here is an error suggesting map_location.
    Raises FileNotFoundError if `path` does not exist and `CheckpointError` (naming the
    file and the problem) for anything wrong with its contents: truncated, corrupt,
    failing its checksum, or holding what tinyfw cannot represent.  Nothing is unpickled.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"load: checkpoint {path!r} does not exist")
    with open(path, "rb") as f:
        data = f.read()
    meta, entries, base = st.parse(data, path)
    tensors = {e.name: st.read(data, base, e, path) for e in entries}
    if _MAGIC not in meta:
        if _CRC in meta or _FORMAT in meta:
            raise CheckpointError(f"load: {path} is a tinyfw checkpoint whose structure entry "
                                  "is missing (corrupt file)")
        # a plain safetensors file (e.g. weights exported by another tool)
        return {k: _place(v, "cpu", map_location, path) for k, v in tensors.items()}
    # the checksum cannot cover the metadata it lives in, so check that part by its shape
    if set(meta) != {_FORMAT, _MAGIC, _CRC} or meta[_FORMAT] not in _READS:
        raise CheckpointError(f"load: {path} has unexpected metadata {st.short(sorted(meta))} "
                              f"(format {st.short(meta.get(_FORMAT))}; this tinyfw reads formats "
                              f"{' and '.join(_READS)}): corrupt file or a newer tinyfw's "
                              "checkpoint")
    structure = meta[_MAGIC]
    if meta[_CRC] != _checksum(structure, tensors):
        raise CheckpointError(f"load: {path} failed its checksum: the file was modified or "
                              "damaged after it was written")
    decode = _Decoder(tensors, path, map_location)
    out = decode(st.parse_json(structure, "structure entry", path))
    unused = sorted(set(tensors) - decode.used)
    if unused:
        raise CheckpointError(f"load: {path}: corrupt structure entry: tensors "
                              f"{', '.join(map(repr, unused[:5]))} are in the file but not in "
                              "the structure")
    return out

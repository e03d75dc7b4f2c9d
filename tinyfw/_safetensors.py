"""Reading the safetensors container of a checkpoint, strictly.

A safetensors file is an 8-byte little-endian header length n, n bytes of a JSON object,
then the tensors' bytes.  The object maps each tensor name to
``{"dtype": str, "shape": [int, ...], "data_offsets": [begin, end]}`` (offsets into the
byte buffer) and may hold ``"__metadata__"``, a str -> str map.  Everything here checks
each field's type and range before using it, so a damaged or hostile file raises
`CheckpointError` naming the problem, never another exception; the tensors must tile the
byte buffer exactly (no gaps, no overlap, nothing after the last one), as the
safetensors library itself requires.  Nothing is ever unpickled: tensors are raw bytes.

Element types: tinyfw's own (F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL) load as they are.
The integer types tinyfw has no dtype for load losslessly widened to the narrowest tinyfw
dtype that holds every value of the type: U16 -> int32; U32 -> int64; U64 ->
int64 when every value fits (else an error naming the tensor).  Other types (F8, complex,
...) are refused by name.  BOOL bytes must be 0 or 1.
"""
from __future__ import annotations

import json
import math
import reprlib
import struct
from typing import NamedTuple

from . import dtypes as _dt
from .backend import host

# a safetensors header is JSON of a few KB per thousand tensors; anything this large is
# a corrupt length field, not a header
MAX_HEADER = 100 * 1024 * 1024
# numpy's (and so the CPU backend's) limit on dimensions
MAX_NDIM = 64

NATIVE = {"F64": _dt.float64, "F32": _dt.float32, "F16": _dt.float16, "BF16": _dt.bfloat16,
          "I64": _dt.int64, "I32": _dt.int32, "I16": _dt.int16, "I8": _dt.int8,
          "U8": _dt.uint8, "BOOL": _dt.bool_}
# code -> (stored little-endian integer type, its size, the tinyfw dtype it loads as)
WIDENED = {"U16": ("u2", 2, _dt.int32), "U32": ("u4", 4, _dt.int64),
           "U64": ("u8", 8, _dt.int64)}


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, truncated, corrupt, or holds something unsupported."""


class Entry(NamedTuple):
    """One tensor of the file: where its bytes are and what they hold."""

    name: str
    code: str
    shape: tuple
    start: int
    stop: int


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60


def short(x) -> str:
    """A bounded repr of a value read from a file, for error messages (bounded in length
    and depth: a hostile value may be long or nested deeply)."""
    return _REPR.repr(x)


def is_int(x) -> bool:
    """A JSON integer (JSON true/false parse as bools, which are ints in Python)."""
    return isinstance(x, int) and not isinstance(x, bool)


def valid_shape(shape) -> bool:
    """A list of at most MAX_NDIM non-negative int64 sizes."""
    return (isinstance(shape, list) and len(shape) <= MAX_NDIM
            and all(is_int(d) and 0 <= d < 2 ** 63 for d in shape))


def _no_duplicates(pairs: list) -> dict:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        dup = next(k for k in keys if keys.count(k) > 1)
        raise ValueError(f"key {short(dup)} appears twice")
    return dict(pairs)


def parse_json(text: str, what: str, path: str):
    """JSON with unique keys; any failure (syntax, nesting deeper than Python's recursion
    limit, integers of more than 4300 digits, duplicate keys) is a CheckpointError."""
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except RecursionError:
        raise CheckpointError(f"load: {path} has a corrupt {what} (nested too deeply)") from None
    except ValueError as e:  # JSONDecodeError is a ValueError
        raise CheckpointError(f"load: {path} has a corrupt {what} ({e})") from None


def _itemsize(code: str, name: str, path: str) -> int:
    if code in NATIVE:
        return NATIVE[code].itemsize
    if code in WIDENED:
        return WIDENED[code][1]
    raise CheckpointError(f"load: {path}: tensor {short(name)} has dtype {short(code)}, which "
                          f"tinyfw has no type for (it reads "
                          f"{', '.join(list(NATIVE) + list(WIDENED))})")


def _entry(name: str, info, path: str) -> Entry:
    def bad(why: str) -> CheckpointError:
        return CheckpointError(f"load: {path} has a corrupt header entry for tensor {short(name)}: "
                               f"{why}")

    if not isinstance(info, dict):
        raise bad(f"expected an object, got {type(info).__name__}")
    if set(info) != {"dtype", "shape", "data_offsets"}:
        raise bad(f"expected the keys data_offsets, dtype, shape; got {sorted(info)}")
    code, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if not isinstance(code, str):
        raise bad(f"dtype must be a string, got {short(code)}")
    if not valid_shape(shape):
        raise bad(f"shape must be a list of at most {MAX_NDIM} sizes in [0, 2**63), got "
                  f"{short(shape)}")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(map(is_int, offsets))
            and 0 <= offsets[0] <= offsets[1]):
        raise bad(f"data_offsets must be [begin, end] with 0 <= begin <= end, got "
                  f"{short(offsets)}")
    nbytes = math.prod(shape) * _itemsize(code, name, path)
    if offsets[1] - offsets[0] != nbytes:
        raise bad(f"shape {tuple(shape)} of {code} needs {nbytes} bytes but data_offsets "
                  f"{offsets} span {offsets[1] - offsets[0]}")
    return Entry(name, code, tuple(shape), offsets[0], offsets[1])


def parse(data: bytes, path: str) -> tuple[dict, list[Entry], int]:
    """(metadata, tensor entries in file order, offset of the byte buffer) of a file."""
    if len(data) < 8:
        raise CheckpointError(f"load: {path} is truncated ({len(data)} bytes; a checkpoint "
                              "starts with an 8-byte header length)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > MAX_HEADER or 8 + n > len(data):
        raise CheckpointError(f"load: {path} is truncated or not a safetensors checkpoint "
                              f"(header length field says {n} bytes, the file has "
                              f"{len(data)} bytes in all)")
    try:
        text = data[8:8 + n].decode("utf-8")
    except UnicodeDecodeError as e:
        raise CheckpointError(f"load: {path} has a corrupt header ({e})") from None
    header = parse_json(text, "header", path)
    if not isinstance(header, dict):
        raise CheckpointError(f"load: {path} has a corrupt header (not a JSON object)")
    meta = header.pop("__metadata__", {})
    if not (isinstance(meta, dict) and all(isinstance(v, str) for v in meta.values())):
        raise CheckpointError(f"load: {path} has a corrupt header (__metadata__ must map "
                              "strings to strings)")
    entries = [_entry(name, info, path) for name, info in header.items()]
    end = 0  # the tensors tile the buffer: sorted by offset, each begins where one ends
    for e in sorted(entries, key=lambda e: (e.start, e.stop)):
        if e.start != end:
            raise CheckpointError(f"load: {path} has a corrupt header: tensor {short(e.name)} "
                                  f"begins at byte {e.start} of the data, expected {end} "
                                  f"({'overlapping' if e.start < end else 'a gap before'} "
                                  "it)")
        end = e.stop
    have = len(data) - 8 - n
    if end != have:
        raise CheckpointError(f"load: {path} is {'truncated' if end > have else 'corrupt'}: "
                              f"its tensors need {end} bytes of data but the file has "
                              f"{have} after the header")
    return meta, entries, 8 + n


def read(data: bytes, base: int, e: Entry, path: str):
    """The host array of entry `e` (a writable copy, in its tinyfw dtype)."""
    try:
        if e.code in NATIVE:
            return host.from_bytes(data, base + e.start, NATIVE[e.code], e.shape)
        stored, _, dtype = WIDENED[e.code]
        return host.from_bytes(data, base + e.start, dtype, e.shape, stored=stored)
    except OverflowError as err:
        raise CheckpointError(f"load: {path}: tensor {short(e.name)} of dtype {e.code} holds "
                              f"values tinyfw cannot represent ({err}; tinyfw's widest "
                              "integer dtype is int64)") from None
    except ValueError as err:  # a shape numpy cannot hold, or bool bytes other than 0/1
        raise CheckpointError(f"load: {path}: tensor {short(e.name)} of dtype {e.code} and "
                              f"shape {e.shape} cannot be read: {err}") from None

"""The process that runs a lab's compiled CUDA library (started by `tinyfw.labs.cudabuild`).

A student's kernel can crash (an out-of-range access under the emulator is a real
segfault), loop forever, or leave a GPU context broken; running it here keeps the grader
alive to report it.  Standalone on purpose (numpy and ctypes only, no tinyfw import): it
starts in a fraction of a second.

Protocol on stdin/stdout: messages are an 8-byte little-endian length and a pickle.
Request ``(symbol, args)``: numpy arrays go as pointers to their data, Python ints as C
ints (or unsigned ints), numpy integer scalars as their C type, floats as C doubles, and
``(char* err, int errlen)`` is appended.  Reply
``(rc, err text, arrays)``: the C function's int result, its message, and the arrays after
the call (the outputs are written in place).  The first reply, ``(0, "", [])`` or
``(1, why, [])``, says whether the library loaded.
"""
from __future__ import annotations

import ctypes
import os
import pickle
import struct
import sys

import numpy as np


def _read(stream):
    head = stream.read(8)
    if len(head) < 8:
        return None
    (size,) = struct.unpack("<Q", head)
    return pickle.loads(stream.read(size))


def _write(stream, obj) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(struct.pack("<Q", len(data)) + data)
    stream.flush()


def _c_arg(a, keep: list):
    if isinstance(a, np.ndarray):
        a = np.ascontiguousarray(a)
        keep.append(a)
        return ctypes.c_void_p(a.ctypes.data)
    if isinstance(a, (bool, np.bool_)):
        raise TypeError("pass flags as ints")
    if isinstance(a, np.integer):  # a numpy scalar says its C type
        return np.ctypeslib.as_ctypes_type(a.dtype)(a.item())
    if isinstance(a, int):  # a C int or unsigned int (the same register bits); wider: say so
        if -2**31 <= a < 2**31:
            return ctypes.c_int(a)
        if 0 <= a < 2**32:
            return ctypes.c_uint(a)
        raise TypeError(f"{a} does not fit 32 bits: pass a numpy int64 or uint64")
    if isinstance(a, (float, np.floating)):
        return ctypes.c_double(float(a))
    raise TypeError(f"cannot pass {type(a).__name__} to C")


def main(path: str) -> int:
    proto_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a kernel's printf goes to the log, not into the protocol
    proto_in = sys.stdin.buffer
    try:
        lib = ctypes.CDLL(path)
    except OSError as err:
        _write(proto_out, (1, f"cannot load {path}: {err}", []))
        return 1
    _write(proto_out, (0, "", []))
    while (msg := _read(proto_in)) is not None:
        symbol, args = msg
        keep: list = []
        try:
            fn = getattr(lib, symbol)
            cargs = [_c_arg(a, keep) for a in args]
        except (AttributeError, TypeError) as err:
            _write(proto_out, (1, f"{symbol}: {err}", []))
            continue
        fn.restype = ctypes.c_int
        err = ctypes.create_string_buffer(4096)
        rc = fn(*cargs, err, ctypes.c_int(len(err)))
        sys.stdout.flush()
        _write(proto_out, (rc, err.value.decode("utf-8", "replace"), keep))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

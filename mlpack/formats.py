"""Weight-format safety (spec/verification.md, step 8): no pickle, sound safetensors.

Pickle runs code when loaded, and scanners that look for "bad" pickles are
denylists with a long bypass record. So mlpack refuses anything that *sniffs* as
pickle, whatever its name: protocol 2-5 streams, protocol 0/1 opcode streams, zip
archives holding ``*.pkl`` members (PyTorch's format) and ``.npy`` object arrays.
safetensors headers are validated the way the reference reader does (size cap,
offsets in range, no overlap, no holes) without loading a tensor.

Everything here works on a few windows of bytes (the head and tail of a file) and a
``read_at`` callback, so the same code serves the packer (files on disk) and the
verifier (ranges of the pack).
"""

from __future__ import annotations

import io
import pickletools
import re
import struct
import warnings
from collections.abc import Callable

from .errors import VerificationError

__all__ = ["WINDOW", "SAFETENSORS_MAX_HEADER", "check_content", "detect_format"]

WINDOW = 64 * 1024
SAFETENSORS_MAX_HEADER = 100_000_000
_DTYPE_SIZES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4,
    "I64": 8, "U64": 8, "F64": 8,
    "C64": 8,
}  # fmt: skip
_SUB_BYTE = {"F4": 1, "F6_E2M3": 6, "F6_E3M2": 6}  # bits per element / packed types
_PKL_NAME = re.compile(rb"\.(pkl|pickle)$|(^|/)data\.pkl$")

ReadAt = Callable[[int, int], bytes]
Window = bytes | memoryview


def _unsafe(name: str, why: str) -> VerificationError:
    return VerificationError(f"{name}: {why}", code="E_UNSAFE_FORMAT", member=name,
                             hint="ship weights as safetensors or ONNX (mlpack convert)")


# Opcodes through which a pickle imports or calls something.
_CALLS = frozenset(["GLOBAL", "STACK_GLOBAL", "INST", "OBJ", "NEWOBJ", "NEWOBJ_EX", "REDUCE", "BUILD"])


# pickletools decodes string arguments of arbitrary (hostile) bytes; its escape warnings are noise.
warnings.filterwarnings("ignore", category=DeprecationWarning, module="pickletools")

_OPCODE_BYTES = [False] * 256
for _op in pickletools.opcodes:
    _OPCODE_BYTES[ord(_op.code)] = True


class _Discard(io.StringIO):
    def write(self, s: str) -> int:
        return len(s)


def _scan_opcodes(window: bytes) -> tuple[int, bool, bool, bool] | None:
    """(opcodes, reached STOP, calls something, ran out of window), or None if not opcodes."""
    count = 0
    stopped = calls = False
    try:
        for opcode, _arg, _pos in pickletools.genops(io.BytesIO(window)):
            count += 1
            calls = calls or opcode.name in _CALLS
            if opcode.name == "STOP":
                stopped = True
                break
    except ValueError as err:
        if not _ran_out(err):
            return None
        return count, False, calls, True
    except Exception:  # noqa: BLE001 - any decoding failure means "not a pickle"
        return None
    return count, stopped, calls, False


def _ran_out(err: ValueError) -> bool:
    text = str(err)
    return "exhausted" in text or "but only" in text or "no newline" in text


def _looks_like_pickle(head: Window, tail: Window) -> bool:
    """True when the content is a pickle stream (``head``/``tail``: its first/last bytes).

    Random binary data begins with valid opcodes far too often for a prefix test
    (1 file in 16,000 starts with a PROTO opcode), so the window must parse as
    opcodes with consistent stack effects (pickletools never imports or calls
    anything): either a complete pickle up to STOP, or, for a pickle larger than
    the window, a consistent prefix of it in a stream whose last byte is STOP.
    Most content fails within its first bytes, so a short prefix is tried first.
    """
    if not len(head) or not _OPCODE_BYTES[head[0]]:
        return False
    window = bytes(head[:1024])
    scan = _scan_opcodes(window)
    if scan is not None and scan[3] and len(head) > len(window):
        window = bytes(head)
        scan = _scan_opcodes(window)
    if scan is None:
        return False
    count, stopped, calls, _ = scan
    if stopped:
        # A complete pickle: it must import/call something, or be more than a lone value.
        evidence = calls or count >= 4
    else:
        # A larger pickle's prefix: PROTO opens every protocol-2+ pickle, STOP ends every one.
        proto = len(window) > 1 and window[0] == 0x80 and 2 <= window[1] <= 5
        evidence = (calls or count >= 4 or proto) and bytes(tail[-1:]) == b"."
    if not evidence:
        return False
    try:
        pickletools.dis(io.BytesIO(window), out=_Discard())
    except ValueError as err:
        # A window cut from a larger pickle ends mid-stream; anything else is not a pickle.
        return not stopped and _ran_out(err)
    except Exception:  # noqa: BLE001
        return False
    return True


def _zip_names(window: bytes) -> list[bytes]:
    names = []
    for sig, name_at, len_at in ((b"PK\x03\x04", 30, 26), (b"PK\x01\x02", 46, 28)):
        pos = window.find(sig)
        while pos >= 0 and pos + name_at <= len(window):
            n_len = struct.unpack_from("<H", window, pos + len_at)[0]
            names.append(window[pos + name_at : pos + name_at + n_len])
            pos = window.find(sig, pos + 4)
    return names


def detect_format(name: str, head: Window, size: int) -> str | None:
    """``"safetensors"`` or ``"onnx"`` when the member is weights of a known format."""
    if name.endswith(".onnx"):
        return "onnx"
    if size >= 10 and head[8:9] == b"{":
        n = struct.unpack_from("<Q", head)[0]
        if 2 <= n <= size - 8:
            return "safetensors"
    return None


def check_content(name: str, size: int, head: Window, tail: Window, read_at: ReadAt) -> str | None:
    """Refuse pickle-like content and broken safetensors; return the weights format.

    ``head``/``tail`` are the first and last :data:`WINDOW` bytes of the content
    (they may overlap); ``read_at(offset, n)`` reads more when a header is larger.
    """
    if _looks_like_pickle(head, tail):
        raise _unsafe(name, "content is a Python pickle, which runs code when loaded")
    if head[:4] == b"PK\x03\x04":
        if any(_PKL_NAME.search(n) for n in _zip_names(bytes(head)) + _zip_names(bytes(tail))):
            raise _unsafe(name, "zip archive holding a pickle (PyTorch checkpoint format)")
    if head[:6] == b"\x93NUMPY" and re.search(rb"'descr':\s*'\|O'", bytes(head[:4096])):
        raise _unsafe(name, "numpy object array (stored as pickle)")
    fmt = detect_format(name, head, size)
    if fmt == "safetensors" or name.endswith(".safetensors"):
        check_safetensors(name, size, head, read_at)
        return "safetensors"
    return fmt


def check_safetensors(name: str, size: int, head: Window, read_at: ReadAt) -> int:
    """Validate a safetensors header; returns the number of tensors."""
    from . import jsonstrict

    if size < 8:
        raise _unsafe(name, "safetensors file shorter than its 8-byte header length")
    (n,) = struct.unpack_from("<Q", head)
    if n > SAFETENSORS_MAX_HEADER or n > size - 8:
        raise _unsafe(name, f"safetensors header length {n} is out of range")
    raw = bytes(head[8 : 8 + n]) if 8 + n <= len(head) else read_at(8, n)
    if len(raw) != n:
        raise _unsafe(name, "safetensors header is truncated")
    try:
        header = jsonstrict.loads(raw.rstrip(b" "), what="safetensors header",
                                  max_size=SAFETENSORS_MAX_HEADER, max_depth=4, member=name)
    except VerificationError as err:
        raise _unsafe(name, err.message) from None
    if not isinstance(header, dict):
        raise _unsafe(name, "safetensors header is not an object")
    buffer = size - 8 - n
    spans = []
    for key, info in header.items():
        if key == "__metadata__":
            if not isinstance(info, dict) or not all(isinstance(v, str) for v in info.values()):
                raise _unsafe(name, "safetensors __metadata__ must map strings to strings")
            continue
        if not isinstance(info, dict):
            raise _unsafe(name, f"tensor {key!r}: entry is not an object")
        dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if not isinstance(dtype, str) or (dtype not in _DTYPE_SIZES and dtype not in _SUB_BYTE):
            raise _unsafe(name, f"tensor {key!r}: unknown dtype {dtype!r}")
        if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
            raise _unsafe(name, f"tensor {key!r}: bad shape")
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(type(o) is int for o in offsets)
                or not 0 <= offsets[0] <= offsets[1] <= buffer):
            raise _unsafe(name, f"tensor {key!r}: data offsets out of range")
        count = 1
        for d in shape:
            count *= d
        if dtype in _DTYPE_SIZES:
            expected = count * _DTYPE_SIZES[dtype]
        else:
            expected = (count * _SUB_BYTE[dtype] + 7) // 8
        if offsets[1] - offsets[0] != expected:
            raise _unsafe(name, f"tensor {key!r}: {offsets[1] - offsets[0]} bytes for shape {shape}")
        spans.append((offsets[0], offsets[1], key))
    spans.sort()
    position = 0
    for start, end, key in spans:
        if start != position:
            why = "overlaps another tensor" if start < position else "leaves a hole before it"
            raise _unsafe(name, f"tensor {key!r} {why}")
        position = end
    if position != buffer:
        raise _unsafe(name, "safetensors data has bytes no tensor covers")
    return len(spans)

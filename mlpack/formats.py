"""Weight-format safety (spec/verification.md, "Format checks"): no pickle, sound safetensors.

Loading a pickle runs code, and scanners that look for "dangerous" pickles are
denylists with a long bypass record. So mlpack refuses anything that *sniffs* as a
pickle, whatever its name: a stream that walks as pickle opcodes with consistent
stack effects, a zip archive holding ``*.pkl`` entries (PyTorch's format), an
``.npy`` array of Python objects. safetensors headers are validated as the reference
reader does (size cap, offsets in range, no overlap, no holes), loading no tensor.

Everything works on the file's first bytes (``head``), its last bytes (``tail``) and
a ``read_at(offset, n)`` callback, so the same code serves the packer (files on disk)
and the verifier (ranges of the pack).
"""

from __future__ import annotations

import ast
import io
import pickletools
import struct
import warnings
from collections.abc import Callable

from .errors import VerificationError

__all__ = ["SAFETENSORS_MAX_HEADER", "WINDOW", "check_content", "detect_format"]

WINDOW = 64 * 1024
SAFETENSORS_MAX_HEADER = 100_000_000
_DTYPE_BITS = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8,
    "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8,
    "I16": 16, "U16": 16, "F16": 16, "BF16": 16,
    "I32": 32, "U32": 32, "F32": 32,
    "I64": 64, "U64": 64, "F64": 64, "C64": 64,
    "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
}  # fmt: skip
MAX_ZIP_ENTRIES = 100_000
MAX_OPCODES = 1_000_000
MAX_LINE = 65_536

ReadAt = Callable[[int, int], bytes]
Window = bytes | memoryview

# Opcodes through which a pickle imports or calls something.
_CALLS = frozenset(["GLOBAL", "STACK_GLOBAL", "INST", "OBJ", "NEWOBJ", "NEWOBJ_EX", "REDUCE", "BUILD"])
_CODE2OP = {ord(op.code): op for op in pickletools.opcodes}
_LENGTH_PREFIX = {-2: (1, False), -3: (4, True), -4: (4, False), -5: (8, False)}  # n -> (width, signed)
_LONG_LINE_OK = frozenset(["STRING", "UNICODE"])

# pickletools decodes arguments of arbitrary (hostile) bytes; its escape warnings are noise.
warnings.filterwarnings("ignore", category=DeprecationWarning, module="pickletools")


def _unsafe(name: str, why: str) -> VerificationError:
    return VerificationError(f"{name}: {why}", code="E_UNSAFE_FORMAT", member=name,
                             hint="ship weights as safetensors or ONNX, never as pickle")


class _Reader:
    """Random access to one file's bytes: its first window in memory, the rest on demand."""

    def __init__(self, head: Window, size: int, read_at: ReadAt) -> None:
        self.head, self.size, self.read_at = head, size, read_at

    def get(self, pos: int, n: int) -> bytes:
        n = max(0, min(n, self.size - pos))
        if pos + n <= len(self.head):
            return bytes(self.head[pos : pos + n])
        return self.read_at(pos, n)


def _walk(reader: _Reader, pos: int) -> tuple[str, int, bool, int]:
    """One pickle walk from ``pos``: (``complete``/``long``/``invalid``, opcodes, calls, end).

    Decodes opcodes as pickletools does and simulates their stack, mark and memo
    effects as ``pickletools.dis`` does, skipping the data of length-prefixed
    arguments without reading it. It never imports or calls anything.
    """
    stack: list[object] = []
    marks = 0
    memo: set[object] = set()
    count = 0
    calls = False
    mark = pickletools.markobject
    while True:
        if count >= MAX_OPCODES:
            return "long", count, calls, pos
        if pos >= reader.size:
            return "invalid", count, calls, pos
        op = _CODE2OP.get(reader.get(pos, 1)[0])
        if op is None:
            return "invalid", count, calls, pos
        pos += 1
        count += 1
        arg: object = None
        if op.arg is not None:
            n = op.arg.n
            try:
                if n >= 0:
                    raw = reader.get(pos, n)
                    if len(raw) < n:
                        return "invalid", count, calls, pos
                    arg = op.arg.reader(io.BytesIO(raw))
                    pos += n
                elif n == pickletools.UP_TO_NEWLINE:
                    lines = 2 if op.name in ("GLOBAL", "INST") else 1
                    raw = reader.get(pos, lines * (MAX_LINE + 1))
                    cut = -1
                    for _ in range(lines):
                        cut = raw.find(b"\n", cut + 1)
                        if cut < 0:
                            break
                    if cut < 0:
                        quoted = op.name != "STRING" or raw[:1] in (b"'", b'"')
                        long_line = op.name in _LONG_LINE_OK and quoted and len(raw) > MAX_LINE
                        return ("long" if long_line else "invalid"), count, calls, pos
                    stream = io.BytesIO(raw[: cut + 1])
                    arg = op.arg.reader(stream)
                    pos += stream.tell()
                else:
                    width, signed = _LENGTH_PREFIX[n]
                    raw = reader.get(pos, width)
                    if len(raw) < width:
                        return "invalid", count, calls, pos
                    length = int.from_bytes(raw, "little", signed=signed)
                    pos += width + length
                    if length < 0 or pos > reader.size:
                        return "invalid", count, calls, pos
            except Exception:  # noqa: BLE001 - a malformed argument ends the walk
                return "invalid", count, calls, pos
        calls = calls or op.name in _CALLS
        before, after = op.stack_before, op.stack_after
        pop = len(before)
        if mark in before or (op.name == "POP" and stack and stack[-1] is mark):
            if not marks or mark not in stack:
                return "invalid", count, calls, pos
            marks -= 1
            while stack[-1] is not mark:
                stack.pop()
            stack.pop()
            pop = before.index(mark) if mark in before else 0
        if op.name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"):
            key = len(memo) if op.name == "MEMOIZE" else arg
            if key in memo or not stack or stack[-1] is mark:
                return "invalid", count, calls, pos
            memo.add(key)
        elif op.name in ("GET", "BINGET", "LONG_BINGET") and arg not in memo:
            return "invalid", count, calls, pos
        if len(stack) < pop:
            return "invalid", count, calls, pos
        if pop:
            del stack[-pop:]
        if mark in after:
            marks += 1
        stack.extend(after)
        if op.name == "STOP":
            return ("complete" if not stack else "invalid"), count, calls, pos


def _sniffs_as_pickle(reader: _Reader) -> bool:
    """A long walk, or a complete and substantial one (at most 16 walks in a row)."""
    pos = 0
    for _ in range(16):  # PyTorch's legacy format: a 3-opcode magic-number pickle, then more
        outcome, count, calls, pos = _walk(reader, pos)
        if outcome == "long" or (outcome == "complete" and (calls or count >= 4)):
            return True
        if outcome != "complete" or pos >= reader.size:
            return False
    return False


def _zip_has_pickle(reader: _Reader, tail: Window) -> str | None:
    """Why a zip archive must be refused (pickle entries, unreadable directory), or None."""
    tail_bytes = bytes(tail)
    eocd = tail_bytes.rfind(b"PK\x05\x06")
    if eocd < 0 or eocd + 22 > len(tail_bytes):
        return "zip archive whose central directory cannot be read"
    entries, cd_size, cd_offset = struct.unpack_from("<HII", tail_bytes, eocd + 10)
    if entries == 0xFFFF or cd_offset == 0xFFFFFFFF:  # zip64: find the zip64 end record
        locator = tail_bytes.rfind(b"PK\x06\x07", 0, eocd)
        if locator < 0:
            return "zip archive whose central directory cannot be read"
        (z64,) = struct.unpack_from("<Q", tail_bytes, locator + 8)
        record = reader.get(z64, 56)
        if len(record) < 56 or record[:4] != b"PK\x06\x06":
            return "zip archive whose central directory cannot be read"
        entries, cd_size, cd_offset = struct.unpack_from("<QQQ", record, 32)
    if entries > MAX_ZIP_ENTRIES:
        return f"zip archive with more than {MAX_ZIP_ENTRIES} entries"
    directory = reader.get(cd_offset, cd_size)
    if len(directory) < cd_size:
        return "zip archive whose central directory cannot be read"
    pos = 0
    for _ in range(entries):
        if directory[pos : pos + 4] != b"PK\x01\x02" or pos + 46 > len(directory):
            return "zip archive whose central directory cannot be read"
        n_len, x_len, c_len = struct.unpack_from("<HHH", directory, pos + 28)
        (local,) = struct.unpack_from("<I", directory, pos + 42)
        names = [directory[pos + 46 : pos + 46 + n_len]]
        header = reader.get(local, 30)
        if len(header) == 30 and header[:4] == b"PK\x03\x04":
            (l_len,) = struct.unpack_from("<H", header, 26)
            names.append(reader.get(local + 30, l_len))
        if any(n.lower().endswith((b".pkl", b".pickle")) for n in names):
            return "zip archive holding a pickle (PyTorch checkpoint format)"
        pos += 46 + n_len + x_len + c_len
    return None


def _has_object_field(descr: object) -> bool:
    if isinstance(descr, str):
        return descr.lstrip("|<>=").startswith("O")
    if isinstance(descr, (list, tuple)):
        return any(_has_object_field(item) for item in descr)
    return False


def _npy_problem(reader: _Reader) -> str | None:
    header = reader.get(0, WINDOW)
    end = header.find(b"}")
    try:
        text = header[header.index(b"{") : end + 1].decode("latin-1")
        meta = ast.literal_eval(text)
        descr = meta["descr"]
    except (ValueError, SyntaxError, KeyError, TypeError, MemoryError, RecursionError):
        return "numpy file whose header cannot be parsed"
    if _has_object_field(descr):
        return "numpy array of Python objects (stored as pickle)"
    return None


def detect_format(name: str, head: Window, size: int) -> str | None:
    """``"safetensors"`` or ``"onnx"`` when the file is weights of a known format."""
    if name.endswith(".onnx"):
        return "onnx"
    if name.endswith(".safetensors"):
        return "safetensors"
    if size >= 10 and head[8:9] == b"{":
        (n,) = struct.unpack_from("<Q", head)
        if 2 <= n <= size - 8:
            return "safetensors"
    return None


def check_content(name: str, size: int, head: Window, tail: Window, read_at: ReadAt) -> str | None:
    """Refuse pickle-like content and broken safetensors; return the weights format.

    ``head``/``tail`` are the first and last :data:`WINDOW` bytes of the content
    (they may overlap); ``read_at(offset, n)`` reads anything else.
    """
    if not size:
        return detect_format(name, head, size)
    first = head[0]
    if first in _CODE2OP and _sniffs_as_pickle(_Reader(head, size, read_at)):
        raise _unsafe(name, "content is a Python pickle, which runs code when loaded")
    if first == 0x50 and head[:4] == b"PK\x03\x04":
        why = _zip_has_pickle(_Reader(head, size, read_at), tail)
        if why:
            raise _unsafe(name, why)
    if first == 0x93 and head[:6] == b"\x93NUMPY":
        why = _npy_problem(_Reader(head, size, read_at))
        if why:
            raise _unsafe(name, why)
    fmt = detect_format(name, head, size)
    if fmt == "safetensors":
        check_safetensors(name, size, head, read_at)
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
        if not isinstance(dtype, str) or dtype not in _DTYPE_BITS:
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
        bits = count * _DTYPE_BITS[dtype]
        if bits % 8 or offsets[1] - offsets[0] != bits // 8:
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

"""Reference: a plain hashlib sha256 stream over one file (1 MiB readinto buffer).

This is the "hashlib sha256, 1 MiB buf" row of /work/shared/design/performance.md.
Usage: python benchmarks/sha256_stream.py FILE [BUFFER_MIB]
"""

import hashlib
import sys


def main() -> int:
    path = sys.argv[1]
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    h = hashlib.sha256()
    buf = bytearray(size << 20)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(view):
            h.update(view[:n])
    print(h.hexdigest())
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Hostile: write MIB mebibytes to PATH. Usage: big_file.py PATH MIB. Exits 0 if it wrote them."""
import sys

chunk = b"\0" * (1 << 20)
with open(sys.argv[1], "wb") as out:
    for _ in range(int(sys.argv[2])):
        out.write(chunk)
        out.flush()
print("WROTE", sys.argv[2])

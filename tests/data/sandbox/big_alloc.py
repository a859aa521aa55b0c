"""Hostile: allocate and touch MIB mebibytes. Usage: big_alloc.py MIB. Exits 0 if it got them."""
import sys

block = bytearray(int(sys.argv[1]) << 20)
block[::4096] = b"x" * len(block[::4096])
print("ALLOCATED", len(block))

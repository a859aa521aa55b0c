"""Benign: print LINES lines to stdout and stderr, with a progress bar using carriage returns."""
import sys

lines = int(sys.argv[1])
for i in range(lines):
    print(f"out {i}")
    print(f"err {i}", file=sys.stderr)
sys.stdout.write("bar 1\rbar 2\rbar 3\n")
print("DONE")

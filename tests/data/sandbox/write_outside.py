"""Hostile: create or append to a file at each path given. Exits 0 only if every write worked."""
import sys

for target in sys.argv[1:]:
    with open(target, "a") as out:
        out.write("pwned\n")
    print("WROTE", target)

"""Hostile: read a secret. Usage: read_canary.py PATH. Exits 0 (and prints it) only if read."""
import sys

with open(sys.argv[1], "rb") as secret:
    print("READ", secret.read(200))

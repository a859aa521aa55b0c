"""Hostile: look for credentials in its own environment and in other processes' environments.

Usage: steal_env.py NAME... Prints what it found; exits 0 only if it found one of the names.
"""
import os
import sys

names = sys.argv[1:]
found = [n for n in names if n in os.environ]
print("ENV", sorted(os.environ))
for pid in (p for p in os.listdir("/proc") if p.isdigit()):
    try:
        with open(f"/proc/{pid}/environ", "rb") as env:
            text = env.read()
    except OSError:
        continue
    found += [f"{n}@{pid}" for n in names if n.encode() + b"=" in text]
print("PIDS", sorted(int(p) for p in os.listdir("/proc") if p.isdigit()))
print("FOUND", found)
sys.exit(0 if found else 1)

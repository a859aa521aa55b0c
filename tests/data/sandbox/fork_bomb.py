"""Hostile but bounded: fork up to N children that each hold a process slot for HOLD seconds.

Usage: fork_bomb.py N HOLD. Never forks more than 200 (it must not hurt the test machine).
Prints "forked=F failed=E"; exits 0 only if no fork failed (the limit did not contain it).
"""
import os
import sys
import time

n, hold = min(int(sys.argv[1]), 200), float(sys.argv[2])
children, failed = [], 0
for _ in range(n):
    try:
        pid = os.fork()
    except OSError:
        failed += 1
        continue
    if pid == 0:
        time.sleep(hold)
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
print(f"forked={len(children)} failed={failed}", flush=True)
sys.exit(1 if failed else 0)

"""Hostile: outlive the time limit. Usage: sleeper.py MARKER SECONDS CHILDREN [stay].

Starts CHILDREN daemons that leave the session (setsid, double fork; with ``stay`` they
remain in the process group), ignore SIGTERM and SIGHUP and sleep, then sleeps itself.
Every process carries MARKER in its command line, so the test can look for survivors.
"""
import os
import signal
import sys
import time

marker, seconds, children = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
escape = sys.argv[4:] != ["stay"]
for _ in range(min(children, 16)):
    if os.fork() == 0:
        if escape:
            os.setsid()
        if os.fork() == 0:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
            os.execv(sys.executable, [sys.executable, "-c",
                     f"import time; time.sleep({seconds})  # {marker}"])
        os._exit(0)
print("STARTED", flush=True)
time.sleep(seconds)
print("WOKE")

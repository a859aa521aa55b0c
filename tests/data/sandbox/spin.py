"""Hostile: burn CPU for up to SECONDS of wall time. Usage: spin.py SECONDS."""
import sys
import time

end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    pass
print("SPUN")

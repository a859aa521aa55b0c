"""Run a console script in-process and report how many bytes it reads, in phases.

Usage: python benchmarks/_rchar_probe.py [--watch PATH] SCRIPT [ARGS...]

The whole-process figure (``rchar`` of ``/proc/<pid>/io``, read by the harness) counts every
byte read by the process: interpreter start-up and the .pyc files of every import included.
This probe splits it, without strace:

- ``RCHAR_AFTER_IMPORT n``: bytes read after the entry point of SCRIPT (``[project.scripts]``)
  has been loaded, i.e. after its module and that module's top-level imports;
- ``RCHAR_AFTER_OPEN n``: bytes read from the first time PATH is opened (an ``open`` audit
  event, which both ``open()`` and ``os.open()`` raise) until exit. It is an upper bound on the
  bytes read from PATH (anything else read after that moment, such as a lazy import, counts).

Both are written to stderr by an atexit hook (nothing is reported after os._exit()).
"""

import atexit
import os
import sys


def _rchar() -> int:
    with open("/proc/self/io", "rb") as f:
        for line in f:
            if line.startswith(b"rchar:"):
                return int(line.split()[1])
    raise RuntimeError("no rchar in /proc/self/io")


def main() -> None:
    from importlib.metadata import entry_points

    args = sys.argv[1:]
    watch = None
    if args[:1] == ["--watch"]:
        watch, args = os.path.realpath(args[1]), args[2:]
    name = args[0]
    eps = list(entry_points(group="console_scripts", name=name))
    if not eps:
        sys.exit(f"{name}: no console_scripts entry point in this interpreter's environment")
    fn = eps[0].load()
    at_open: list[int] = []

    if watch is not None:
        def hook(event: str, hook_args: tuple) -> None:  # type: ignore[type-arg]
            if event == "open" and not at_open and isinstance(hook_args[0], (str, bytes)):
                p = os.fsdecode(hook_args[0])
                if p == watch or os.path.realpath(p) == watch:
                    at_open.append(_rchar())
        sys.addaudithook(hook)

    base = _rchar()

    def report() -> None:
        end = _rchar()
        msg = f"\nRCHAR_AFTER_IMPORT {end - base}\n"
        if at_open:
            msg += f"RCHAR_AFTER_OPEN {end - at_open[0]}\n"
        os.write(2, msg.encode())

    atexit.register(report)
    sys.argv = [name, *args[1:]]
    sys.exit(fn())


if __name__ == "__main__":
    main()

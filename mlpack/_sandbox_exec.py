"""Process supervision for :mod:`mlpack.sandbox` (spec/sandbox.md, "Output" and "Limits").

Starts one command in its own session, streams its standard output and error to bounded
log files and to a per-line callback (called on the caller's thread), keeps the last bytes
of each stream, and enforces the wall-clock limit by killing the whole process group.

    result = supervise(["sleep", "9"], cwd=Path("/"), env={}, time_s=1.0)
    assert result.timed_out and result.returncode == -9
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO

__all__ = ["Supervised", "supervise"]

TAIL_BYTES = 8192
"""How much of the end of each stream :class:`Supervised` keeps."""
CHUNK = 65536
"""Read size; also the longest line handed to the callback (longer lines are split)."""
EXITED = "exit"
TRUNCATED = b"\n[mlpack: log truncated: the limit on log size was reached]\n"


@dataclass(frozen=True, kw_only=True, slots=True)
class Supervised:
    """What happened to one supervised process."""

    returncode: int
    """Exit status; negative when a signal killed the process started."""
    duration_s: float
    """Seconds from the start to the end of the process started."""
    timed_out: bool
    """The wall-clock limit was reached and the process group was killed."""
    stdout_tail: bytes
    """The last :data:`TAIL_BYTES` of standard output."""
    stderr_tail: bytes
    """The last :data:`TAIL_BYTES` of standard error."""
    status: bytes
    """What the sandbox wrote to its status pipe (empty when there is none)."""


class _Pump(threading.Thread):
    """Copies one pipe to a bounded log file, a tail buffer and a line queue."""

    def __init__(self, pipe: IO[bytes], name: str, log: Path | None, log_bytes: int,
                 events: queue.Queue[tuple[str, str | None]], *, lines: bool) -> None:
        super().__init__(name=f"mlpack-sandbox-{name}", daemon=True)
        self.pipe, self.stream, self.log_path, self.log_bytes = pipe, name, log, log_bytes
        self.events, self.lines = events, lines
        self.tail = bytearray()
        self.error: OSError | None = None

    def run(self) -> None:
        log: BinaryIO | None = None
        written, pending = 0, b""
        try:
            if self.log_path is not None:
                log = open(self.log_path, "wb")  # noqa: SIM115 - closed in finally
            while chunk := self.pipe.read1(CHUNK):  # type: ignore[attr-defined]
                if log is not None and written <= self.log_bytes:
                    room = self.log_bytes - written
                    log.write(chunk[:room] if len(chunk) > room else chunk)
                    if len(chunk) > room:
                        log.write(TRUNCATED)
                    written += len(chunk)
                    log.flush()
                self.tail += chunk
                del self.tail[:-TAIL_BYTES]
                if self.lines:
                    pending = self._lines(pending + chunk)
            if pending:
                self.events.put((self.stream, pending.decode("utf-8", "replace")))
        except OSError as err:  # the log disk is full: keep the process running, report later
            self.error = err
            while self.pipe.read1(CHUNK):  # type: ignore[attr-defined]
                pass
        finally:
            if log is not None:
                log.close()
            self.events.put((self.stream, None))

    def _lines(self, data: bytes) -> bytes:
        """Queue every complete line (``\\n`` or ``\\r`` ends one: progress bars use ``\\r``)."""
        start = 0
        for i, byte in enumerate(data):
            if byte in (10, 13):
                if i > start:
                    self.events.put((self.stream, data[start:i].decode("utf-8", "replace")))
                start = i + 1
        rest = data[start:]
        if len(rest) >= CHUNK:
            self.events.put((self.stream, rest.decode("utf-8", "replace")))
            return b""
        return rest


def supervise(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    time_s: float,
    preexec: Callable[[], None] | None = None,
    log_dir: Path | None = None,
    log_bytes: int = 64 << 20,
    on_output: Callable[[str], None] | None = None,
    status_pipe: bool = False,
    status_flag: str = "",
) -> Supervised:
    """Run ``argv`` to completion or until ``time_s`` seconds have passed.

    Args:
        argv: The command; it is started in a new session (its own process group).
        cwd: Working directory of the process started.
        env: Its complete environment (nothing is inherited).
        time_s: Wall-clock limit; then SIGKILL goes to the whole process group.
        preexec: Called in the child before exec (resource limits).
        log_dir: Where ``stdout.log`` and ``stderr.log`` are written, if given.
        log_bytes: Maximum size of each log file; the rest is dropped (tails are kept).
        on_output: Called on this thread with each line of either stream.
        status_pipe: Pass the write end of a pipe as ``argv[status_flag_index + 1]``'s fd.
        status_flag: The option that takes the status pipe's fd (``--json-status-fd``).

    Returns:
        The exit status, duration, whether the limit was reached, the tails, the status.

    Raises:
        OSError: The command could not be started, or a log file could not be written.
    """
    status_r = status_w = -1
    cmd = list(argv)
    if status_pipe:
        status_r, status_w = os.pipe()
        cmd[cmd.index(status_flag) + 1] = str(status_w)
    events: queue.Queue[tuple[str, str | None]] = queue.Queue()
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, start_new_session=True,
            preexec_fn=preexec,  # noqa: PLW1509 - it only calls setrlimit: no lock to inherit
            pass_fds=(status_w,) if status_pipe else (),
        )
    except BaseException:
        if status_r >= 0:
            os.close(status_r)
        raise
    finally:
        if status_w >= 0:
            os.close(status_w)
    assert proc.stdout is not None and proc.stderr is not None
    pumps = [
        _Pump(proc.stdout, "stdout", log_dir / "stdout.log" if log_dir else None, log_bytes,
              events, lines=on_output is not None),
        _Pump(proc.stderr, "stderr", log_dir / "stderr.log" if log_dir else None, log_bytes,
              events, lines=on_output is not None),
    ]
    for pump in pumps:
        pump.start()
    threading.Thread(target=_watch_exit, args=(proc.pid, events), daemon=True).start()
    try:
        timed_out = _wait(proc, events, on_output, start + time_s)
    except BaseException:
        _kill_group(proc)
        proc.wait()
        raise
    finally:
        status = _drain(status_r)
    duration = time.monotonic() - start
    for pump in pumps:  # a process that left the group may hold a pipe (unsandboxed runs only)
        pump.join(timeout=1.0)
    _flush(events, on_output)
    for pump in pumps:
        if pump.error is not None:
            raise pump.error
    return Supervised(returncode=proc.returncode, duration_s=duration, timed_out=timed_out,
                      stdout_tail=bytes(pumps[0].tail), stderr_tail=bytes(pumps[1].tail),
                      status=status)


def _watch_exit(pid: int, events: queue.Queue[tuple[str, str | None]]) -> None:
    """Report the child's exit without reaping it (``WNOWAIT``): its pid stays reserved."""
    try:
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    except ChildProcessError:
        pass
    events.put((EXITED, None))


def _wait(proc: subprocess.Popen[bytes], events: queue.Queue[tuple[str, str | None]],
          on_output: Callable[[str], None] | None, deadline: float) -> bool:
    """Deliver lines until the process has exited and been reaped; kill it at the deadline."""
    timed_out = False
    while True:
        left = deadline - time.monotonic()
        if left <= 0 and not timed_out:
            timed_out = True
            _kill_group(proc)
        try:
            stream, line = events.get(timeout=1.0 if timed_out else min(left, 1.0))
        except queue.Empty:
            continue
        if stream == EXITED:
            # the zombie still holds its pid, so the group id cannot have been reused yet
            _kill_group(proc)
            proc.wait()
            return timed_out
        if line is not None and on_output is not None:
            on_output(line)


def _flush(events: queue.Queue[tuple[str, str | None]],
           on_output: Callable[[str], None] | None) -> None:
    while on_output is not None:
        try:
            _, line = events.get_nowait()
        except queue.Empty:
            return
        if line is not None:
            on_output(line)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    if proc.returncode is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _drain(fd: int) -> bytes:
    """Read what the sandbox wrote to its status pipe (its writers have exited)."""
    if fd < 0:
        return b""
    data = bytearray()
    try:
        os.set_blocking(fd, False)
        while True:
            try:
                chunk = os.read(fd, CHUNK)
            except BlockingIOError:
                break
            if not chunk:
                break
            data += chunk
    finally:
        os.close(fd)
    return bytes(data)

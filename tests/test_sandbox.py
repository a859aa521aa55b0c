"""spec/sandbox.md: hostile scripts (tests/data/sandbox/) fail inside the sandbox, the host is
unchanged, and a benign control succeeds under the same sandbox so that every test can fail."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlpack import sandbox
from mlpack.errors import EXIT_USAGE, UsageError
from mlpack.sandbox import Limits, Outcome

DATA = Path(__file__).resolve().parent / "data" / "sandbox"
PY = sys.executable
AS_ROOT = os.geteuid() == 0
KIND, DETAIL = sandbox.available()
needs_bwrap = pytest.mark.skipif(KIND is None, reason=f"no sandbox here: {DETAIL}")


class Box:
    """A scratch directory, a read-only project beside it, and the tests' snapshot helpers."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.scratch = root / "scratch"
        self.scratch.mkdir()
        self.own = root / "own"  # the test's own files (fake home, logs): not in the snapshot
        self.own.mkdir()
        self.project = root / "project"
        (self.project / "src").mkdir(parents=True)
        (self.project / "README.txt").write_text("project readme\n")
        (self.project / "src" / "train.py").write_text("print('train')\n")
        (self.project / "open").mkdir()
        (self.project / "open" / "notes.txt").write_text("notes\n")
        for path in (self.project, self.project / "src"):
            path.chmod(0o755)  # pytest's directories are 0700; the sandbox user needs o+rX
        # writable by anyone on the host: only the read-only mount protects it
        (self.project / "open").chmod(0o777)
        (self.project / "open" / "notes.txt").chmod(0o666)
        self.read_only = [self.project, DATA]

    def run(self, script: str, *args: str, unsafe: bool = False, **kw: object) -> Outcome:
        return sandbox.run([PY, str(DATA / script), *args], scratch=self.scratch,
                           cwd=self.scratch, read_only=self.read_only,
                           unsafe_no_sandbox=unsafe, **kw)  # type: ignore[arg-type]

    def snapshot(self) -> dict[str, tuple[object, ...]]:
        """Everything under the test's directory but scratch and own, DATA, /root's names."""
        seen: dict[str, tuple[object, ...]] = {}
        for top in (self.root, DATA):
            for dirpath, dirs, files in os.walk(top):
                if Path(dirpath) == self.root:
                    dirs.remove("scratch")
                    dirs.remove("own")
                for name in dirs + files:
                    path = Path(dirpath, name)
                    st = path.lstat()
                    digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() \
                        and not path.is_symlink() else None
                    seen[str(path)] = (st.st_mode, st.st_uid, st.st_size, st.st_mtime_ns, digest)
        seen["/root"] = tuple(sorted(os.listdir("/root")))
        return seen


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Box]:
    made = Box(tmp_path)
    before = made.snapshot()
    yield made
    assert made.snapshot() == before, "the host changed outside the scratch directory"


def _one_line(err: UsageError) -> None:
    assert "\n" not in err.message and err.hint and "\n" not in err.hint


def _survivors(marker: str) -> list[int]:
    """Host processes whose command line holds the marker (what ``pgrep -f`` does)."""
    found = []
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline and int(pid) != os.getpid():
            found.append(int(pid))
    return found


def _wait_gone(marker: str, within: float = 5.0) -> list[int]:
    end = time.monotonic() + within
    while (alive := _survivors(marker)) and time.monotonic() < end:
        time.sleep(0.05)
    return alive


# --- the sandbox exists and a benign script works in it -------------------------------------

@needs_bwrap
def test_available_names_bubblewrap_and_its_version() -> None:
    kind, detail = sandbox.available()
    assert kind == "bubblewrap"
    assert detail.startswith("/") and "bwrap" in detail and any(c.isdigit() for c in detail)


@needs_bwrap
def test_benign_control_runs_and_sees_only_what_it_is_given(box: Box) -> None:
    script = (
        "import os, sys, json\n"
        "open('made.txt', 'w').write('ok')\n"
        f"readme = open({str(box.project / 'README.txt')!r}).read()\n"
        "print(json.dumps({'uid': os.getuid(), 'root': sorted(os.listdir('/')),\n"
        "  'home_dir': sorted(os.listdir('/root')) if os.path.isdir('/root') else None,\n"
        "  'tmp': sorted(os.listdir('/tmp')), 'readme': readme, 'cwd': os.getcwd(),\n"
        "  'home': os.environ['HOME'], 'home_ok': os.access(os.environ['HOME'], os.W_OK)}))\n"
    )
    (box.scratch / "probe.py").write_text(script)
    lines: list[str] = []
    out = sandbox.run([PY, "probe.py"], scratch=box.scratch, cwd=box.scratch,
                      read_only=box.read_only, on_output=lines.append)
    assert out.returncode == 0, out.stderr_tail
    assert out.sandbox == "bubblewrap" and not out.timed_out
    import json

    seen = json.loads(lines[-1])
    assert seen["uid"] == 65534
    assert (box.scratch / "made.txt").read_text() == "ok"
    assert seen["readme"] == "project readme\n" and seen["cwd"] == str(box.scratch)
    assert seen["home"] == str(box.scratch / "home") and seen["home_ok"]
    assert not {"home", "var", "run", "srv", "mnt", "media", "opt", "boot"} & set(seen["root"])
    # only the way down to scratch, and to the interpreter when it lives under /tmp (a checkout there)
    ways = [box.scratch, Path(sys.prefix), Path(sys.base_prefix), Path(PY).resolve()]
    down = sorted({p.parts[2] for p in ways if p.is_relative_to("/tmp") and len(p.parts) > 2})
    assert seen["tmp"] == down
    assert seen["home_dir"] in (None, [], [".pyenv"])  # the interpreter's prefix, nothing else


# --- network ------------------------------------------------------------------------------

class _Servers:
    """A TCP server on the host's 127.0.0.1 and an abstract unix socket; records what arrives."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.tcp = socket.create_server(("127.0.0.1", 0))
        self.port = self.tcp.getsockname()[1]
        self.name = f"mlpack-test-{uuid.uuid4().hex}"
        self.unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.unix.bind("\0" + self.name)
        self.unix.listen()
        for server in (self.tcp, self.unix):
            threading.Thread(target=self._serve, args=(server,), daemon=True).start()

    def _serve(self, server: socket.socket) -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                self.received.append(conn.recv(100))

    def close(self) -> None:
        self.tcp.close()
        self.unix.close()


@needs_bwrap
def test_no_network_not_even_the_hosts_loopback(box: Box) -> None:
    servers = _Servers()
    try:
        out = box.run("open_socket.py", str(servers.port), servers.name)
        assert out.returncode == 1 and "REACHED" not in out.stdout_tail
        assert "Network is unreachable" in out.stderr_tail or "refused" in out.stderr_tail
        assert servers.received == []
        # control: the same script, unsandboxed, does reach both servers
        control = box.run("open_socket.py", str(servers.port), servers.name, unsafe=True)
        assert control.returncode == 0 and "REACHED" in control.stdout_tail
        deadline = time.monotonic() + 5
        while len(servers.received) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sorted(servers.received) == [b"pwned-tcp", b"pwned-unix"]
    finally:
        servers.close()


# --- file system --------------------------------------------------------------------------

@needs_bwrap
def test_writes_outside_scratch_fail_and_the_host_is_unchanged(box: Box) -> None:
    token = uuid.uuid4().hex
    targets = {
        box.project / "README.txt": True, box.project / f"new-{token}": True,
        box.project / "open" / "notes.txt": True, box.project / "open" / f"new-{token}": True,
        DATA / f"new-{token}": True, Path(sys.prefix) / f"new-{token}": True,
        Path(f"/usr/lib/mlpack-{token}"): True, Path(f"/etc/mlpack-{token}"): True,
        Path("/etc/passwd"): True,
        # outside scratch under /tmp: the sandbox's /tmp is its own (a write may land there)
        box.root / f"outside-{token}": AS_ROOT,
    }
    passwd = Path("/etc/passwd").read_bytes()
    for target, must_fail in targets.items():
        out = box.run("write_outside.py", str(target))
        if must_fail:
            assert out.returncode == 1 and "Errno" in out.stderr_tail, (target, out)
        assert not target.exists() or target in (
            box.project / "README.txt", box.project / "open" / "notes.txt", Path("/etc/passwd"))
    assert Path("/etc/passwd").read_bytes() == passwd
    # control: inside scratch the same script writes, and the file appears on the host
    inside = box.scratch / "sub" / "inside.txt"
    inside.parent.mkdir()
    out = box.run("write_outside.py", str(inside))
    assert out.returncode == 0 and inside.read_text() == "pwned\n"
    # a read-only path inside scratch stays read-only (mounts are made parents first)
    (box.scratch / "env").mkdir(mode=0o777)
    box.read_only.append(box.scratch / "env")
    out = box.run("write_outside.py", str(box.scratch / "env" / "x"))
    assert out.returncode == 1 and "Read-only file system" in out.stderr_tail
    assert not (box.scratch / "env" / "x").exists()


@needs_bwrap
def test_secrets_are_unreadable(box: Box, monkeypatch: pytest.MonkeyPatch) -> None:
    canary = f"mlpack-canary-{uuid.uuid4().hex}"
    home = box.own / "home"
    (home / ".aws").mkdir(parents=True)
    (home / ".aws" / "credentials").write_text(canary)
    monkeypatch.setenv("HOME", str(home))
    in_root = Path(f"/root/.mlpack-canary-{uuid.uuid4().hex}")
    in_root.write_text(canary)
    # readable by anyone on the host: only the mount view hides it
    in_var = Path(f"/var/tmp/mlpack-canary-{uuid.uuid4().hex}")
    in_var.write_text(canary)
    in_var.chmod(0o644)
    try:
        for secret in (home / ".aws" / "credentials", in_root, in_var, Path("/etc/shadow")):
            out = box.run("read_canary.py", str(secret), log_dir=box.own / "logs")
            assert out.returncode == 1, (secret, out)
            assert ("No such file" in out.stderr_tail) or ("Permission denied" in out.stderr_tail)
            logs = b"".join(p.read_bytes() for p in (box.own / "logs").iterdir())
            assert canary not in out.stdout_tail + out.stderr_tail and canary.encode() not in logs
            assert "READ" not in out.stdout_tail
        # controls: a read-only file is readable inside; the canary is readable unsandboxed
        out = box.run("read_canary.py", str(box.project / "README.txt"))
        assert out.returncode == 0 and "project readme" in out.stdout_tail
        out = box.run("read_canary.py", str(home / ".aws" / "credentials"), unsafe=True)
        assert out.returncode == 0 and canary in out.stdout_tail
    finally:
        in_root.unlink()
        in_var.unlink()


@needs_bwrap
def test_environment_is_scrubbed(box: Box, monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = {"AWS_SECRET_ACCESS_KEY": "aws-canary", "GITHUB_TOKEN": "gh-canary",
               "SSH_AUTH_SOCK": "/tmp/ssh-canary", "HF_TOKEN": "hf-canary"}
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    lines: list[str] = []
    out = box.run("steal_env.py", *secrets, "MLPACK_SEED", env={"MLPACK_SEED": "7"},
                  on_output=lines.append)
    # the caller's variable passes (the control), no secret does, not even via /proc/*/environ
    found = eval(next(x for x in lines if x.startswith("FOUND "))[6:])
    assert out.returncode == 0 and {f.split("@")[0] for f in found} == {"MLPACK_SEED"}, out
    env_names = eval(next(x for x in lines if x.startswith("ENV "))[4:])
    assert set(env_names) == {"PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "PWD", "MLPACK_SEED"}
    pids = eval(next(x for x in lines if x.startswith("PIDS "))[5:])
    assert os.getpid() not in pids and max(pids) < 50  # a pid namespace of its own
    out = box.run("steal_env.py", *secrets)
    assert out.returncode == 1 and "FOUND []" in out.stdout_tail


# --- limits -------------------------------------------------------------------------------

@needs_bwrap
def test_time_limit_kills_the_whole_tree(box: Box) -> None:
    marker = f"mlpack-sleeper-{uuid.uuid4().hex}"
    out = box.run("sleeper.py", marker, "60", "4", limits=Limits(time_s=2.0))
    assert out.timed_out and out.returncode == -signal.SIGKILL
    assert "STARTED" in out.stdout_tail and "WOKE" not in out.stdout_tail
    assert out.duration_s < 10
    assert _wait_gone(marker) == [], "processes survived the time limit"
    # control: within the limit the same script finishes
    out = box.run("sleeper.py", marker, "0.1", "0", limits=Limits(time_s=30.0))
    assert out.returncode == 0 and not out.timed_out and "WOKE" in out.stdout_tail


@needs_bwrap
def test_an_exception_in_the_caller_kills_the_tree(box: Box) -> None:
    class Stop(Exception):
        pass

    def stop(line: str) -> None:
        if line == "STARTED":
            raise Stop  # as Ctrl-C (KeyboardInterrupt) would, while the command runs

    marker = f"mlpack-sleeper-{uuid.uuid4().hex}"
    start = time.monotonic()
    with pytest.raises(Stop):
        box.run("sleeper.py", marker, "60", "3", on_output=stop)
    assert time.monotonic() - start < 10
    assert _wait_gone(marker) == []


@needs_bwrap
def test_memory_limit(box: Box) -> None:
    limits = Limits(memory_bytes=256 << 20)
    out = box.run("big_alloc.py", "512", limits=limits)
    assert out.returncode == 1 and "MemoryError" in out.stderr_tail
    out = box.run("big_alloc.py", "32", limits=limits)
    assert out.returncode == 0 and "ALLOCATED" in out.stdout_tail


@needs_bwrap
def test_file_size_limit(box: Box) -> None:
    limits = Limits(file_size_bytes=8 << 20)
    big = box.scratch / "big.bin"
    out = box.run("big_file.py", str(big), "16", limits=limits)
    assert out.returncode == 1 and "File too large" in out.stderr_tail
    assert big.stat().st_size <= 8 << 20
    out = box.run("big_file.py", str(big), "4", limits=limits)
    assert out.returncode == 0 and big.stat().st_size == 4 << 20


@needs_bwrap
def test_fork_bomb_is_contained(box: Box) -> None:
    limits = Limits(processes=32, time_s=60)
    out = box.run("fork_bomb.py", "150", "1", limits=limits)
    assert out.returncode == 1, out
    forked, failed = (int(x.split("=")[1]) for x in out.stdout_tail.split())
    assert forked < 32 and failed >= 150 - 32
    assert out.duration_s < 15
    out = box.run("fork_bomb.py", "8", "0.2", limits=limits)
    assert out.returncode == 0 and "forked=8 failed=0" in out.stdout_tail


@needs_bwrap
def test_cpu_limit(box: Box) -> None:
    out = box.run("spin.py", "20", limits=Limits(cpu_s=1, time_s=30))
    assert out.returncode in (-signal.SIGXCPU, -signal.SIGKILL) and not out.timed_out
    assert out.duration_s < 10
    out = box.run("spin.py", "0.1", limits=Limits(cpu_s=1, time_s=30))
    assert out.returncode == 0 and "SPUN" in out.stdout_tail


# --- output -------------------------------------------------------------------------------

@needs_bwrap
def test_output_is_streamed_logged_and_bounded(box: Box) -> None:
    logs = box.own / "logs"
    lines: list[str] = []
    out = box.run("chatter.py", "3000", log_dir=logs, on_output=lines.append)
    assert out.returncode == 0
    stdout = (logs / "stdout.log").read_text()
    assert stdout.startswith("out 0\n") and "out 2999\n" in stdout and stdout.endswith("DONE\n")
    assert (logs / "stderr.log").read_text().count("\n") == 3000
    assert len(out.stdout_tail.encode()) <= 8192 and out.stdout_tail.endswith("DONE\n")
    assert "out 0\n" not in out.stdout_tail
    assert {"out 0", "err 2999", "bar 1", "bar 2", "bar 3", "DONE"} <= set(lines)
    assert len(lines) == 6004
    out = box.run("chatter.py", "3000", log_dir=logs, limits=Limits(log_bytes=1000))
    text = (logs / "stdout.log").read_bytes()
    assert out.returncode == 0 and len(text) < 1100 and text.endswith(b"log truncated: "
                                                                      b"the limit on log size "
                                                                      b"was reached]\n")


# --- refusal, the unsafe path, arguments --------------------------------------------------

def test_refuses_when_bubblewrap_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(sandbox.ENV_BWRAP, str(tmp_path / "no-such-bwrap"))
    kind, why = sandbox.available()
    assert kind is None and "MLPACK_BWRAP" in why
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with pytest.raises(UsageError) as info:
        sandbox.run(["true"], scratch=scratch, cwd=scratch, log_dir=tmp_path / "logs")
    assert info.value.code == "E_SANDBOX" and info.value.exit_code == EXIT_USAGE == 2
    _one_line(info.value)
    assert "bubblewrap" in (info.value.hint or "") and "--unsafe-no-sandbox" in (info.value.hint or "")
    assert list(scratch.iterdir()) == [] and not (tmp_path / "logs").exists()


def test_refuses_when_bubblewrap_cannot_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv(sandbox.ENV_BWRAP, str(fake))
    kind, why = sandbox.available()
    assert kind is None and "cannot create a sandbox" in why and "namespace" in why
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with pytest.raises(UsageError) as info:
        sandbox.run(["true"], scratch=scratch, cwd=scratch)
    assert info.value.code == "E_SANDBOX" and list(scratch.iterdir()) == []
    _one_line(info.value)


@needs_bwrap
def test_refuses_when_the_sandbox_fails_to_start_after_the_probe(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = DETAIL.split()[0]
    fake = tmp_path / "bwrap"  # a bubblewrap that passes the probe, then cannot mount
    fake.write_text('#!/bin/sh\ncase "$*" in --version|--help|*" -- true") exec '
                    f'{real} "$@";; esac\n'
                    "echo \"bwrap: Can't mount proc on /newroot/proc: Operation not permitted\" >&2"
                    "\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv(sandbox.ENV_BWRAP, str(fake))
    assert sandbox.available()[0] == "bubblewrap"
    b = Box(tmp_path)
    with pytest.raises(UsageError) as info:
        b.run("chatter.py", "1", log_dir=b.own / "logs")
    assert info.value.code == "E_SANDBOX" and "Can't mount proc" in info.value.message
    _one_line(info.value)
    assert not (b.own / "logs").exists()


def test_unsafe_mode_runs_directly_with_env_limits_and_time_out(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(sandbox.ENV_BWRAP, str(tmp_path / "no-such-bwrap"))
    monkeypatch.setenv("GITHUB_TOKEN", "gh-canary")
    b = Box(tmp_path)
    out = b.run("steal_env.py", "GITHUB_TOKEN", unsafe=True, env={"MLPACK_SEED": "1"})
    assert out.sandbox == "none (--unsafe-no-sandbox)"
    env_line = next(x for x in out.stdout_tail.splitlines() if x.startswith("ENV "))
    assert "GITHUB_TOKEN" not in env_line and "MLPACK_SEED" in env_line
    big = b.scratch / "big.bin"
    out = b.run("big_file.py", str(big), "4", unsafe=True, limits=Limits(file_size_bytes=1 << 20))
    assert out.returncode == 1 and "File too large" in out.stderr_tail
    marker = f"mlpack-sleeper-{uuid.uuid4().hex}"
    out = b.run("sleeper.py", marker, "60", "3", "stay", unsafe=True, limits=Limits(time_s=1.5))
    assert out.timed_out and out.returncode == -signal.SIGKILL and out.duration_s < 10
    assert _wait_gone(marker) == []


@pytest.mark.parametrize("case", ["cwd-outside", "no-scratch", "no-read-only", "root-read-only",
                                  "home-read-only", "tmp-scratch", "etc-scratch", "no-command",
                                  "empty-command", "bad-limit", "bad-env"])
def test_bad_arguments_are_refused_before_anything_runs(tmp_path: Path, case: str) -> None:
    scratch, other = tmp_path / "scratch", tmp_path / "other"
    scratch.mkdir()
    other.mkdir()
    argv, kw = [PY, "-c", "pass"], {"scratch": scratch, "cwd": scratch, "read_only": [other]}
    expected = {"no-scratch": "E_INPUT", "no-read-only": "E_INPUT", "no-command": "E_INPUT"}
    if case == "cwd-outside":
        kw["cwd"] = tmp_path
    elif case == "no-scratch":
        kw["scratch"] = kw["cwd"] = tmp_path / "missing"
    elif case == "no-read-only":
        kw["read_only"] = [tmp_path / "missing"]
    elif case == "root-read-only":
        kw["read_only"] = [Path("/")]
    elif case == "home-read-only":
        kw["read_only"] = [Path.home()]
    elif case in ("tmp-scratch", "etc-scratch"):
        kw["scratch"] = kw["cwd"] = Path("/tmp" if case == "tmp-scratch" else "/etc/ssl")
    elif case == "bad-limit":
        kw["limits"] = Limits(processes=0)
    elif case == "bad-env":
        kw["env"] = {"A=B": "1"}
    elif case == "no-command":
        argv = ["no-such-command-mlpack"]
    else:
        argv = []
    with pytest.raises(UsageError) as info:
        sandbox.run(argv, **kw)  # type: ignore[arg-type]
    assert info.value.code == expected.get(case, "E_USAGE") and info.value.exit_code == 2
    assert "\n" not in info.value.message
    assert list(scratch.iterdir()) == []


@needs_bwrap
@pytest.mark.skipif(not AS_ROOT, reason="only root callers drop to uid 65534 on the host")
def test_read_only_path_the_sandbox_user_cannot_read_is_refused(tmp_path: Path) -> None:
    scratch, private = tmp_path / "scratch", tmp_path / "private"
    scratch.mkdir()
    private.mkdir(mode=0o700)
    with pytest.raises(UsageError) as info:
        sandbox.run([PY, "-c", "pass"], scratch=scratch, cwd=scratch, read_only=[private])
    assert info.value.code == "E_INPUT" and "chmod o+rX" in (info.value.hint or "")
    assert list(scratch.iterdir()) == []


# --- cost ---------------------------------------------------------------------------------

@needs_bwrap
def test_start_overhead_is_small(tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()

    def timed(unsafe: bool) -> float:
        start = time.perf_counter()
        out = sandbox.run(["true"], scratch=scratch, cwd=scratch, unsafe_no_sandbox=unsafe)
        assert out.returncode == 0
        return time.perf_counter() - start

    sandbox.available()  # the probe is cached per process; measure the steady state
    boxed = statistics.median(timed(False) for _ in range(15))
    direct = statistics.median(timed(True) for _ in range(15))
    bare = statistics.median(_bare_true() for _ in range(15))
    print(f"\nsandbox start overhead: run(true) {boxed * 1e3:.1f} ms, "
          f"unsafe run(true) {direct * 1e3:.1f} ms, subprocess true {bare * 1e3:.1f} ms")
    assert boxed - bare < 0.25


def _bare_true() -> float:
    start = time.perf_counter()
    subprocess.run(["true"], check=True)
    return time.perf_counter() - start

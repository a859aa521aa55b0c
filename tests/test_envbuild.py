"""mlpack.envbuild: environments rebuilt from a pack's lock (uv and pip), offline from the
wheelhouse, hash-checked, cached; --env current; conda-pack archives unpacked safely.

A real training venv (six from the configured index, tinypkg 1.0+cpu built here) is captured
once per module in mode ``wheelhouse``; its training venv and find-links directory are then
deleted, and every rebuild runs with a dead proxy, so any network access would fail.
"""

from __future__ import annotations

import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import time
import tomllib
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import unquote

import pytest

from mlpack import envbuild
from mlpack._envplan import plan, render_toml
from mlpack.environment import (
    Difference,
    Lock,
    LockedFile,
    LockedPackage,
    capture_environment,
    installed,
    parse_lock,
    render_lock,
)
from mlpack.errors import EXIT_FAILED, EXIT_IO, IOFailure, MlpackError, VerificationError
from tests.test_environment import (
    build_wheel,
    conda_env,  # noqa: F401  (a fixture)
    make_venv,
    pip_into,
    site_packages,
    unpack,
)

pytestmark = pytest.mark.skipif(os.name != "posix", reason="venv layout, flock, shell scripts")
REPO = Path(__file__).resolve().parents[1]
DEAD = "http://127.0.0.1:9"  # the discard port: every connection is refused
SIX_URL = ("https://files.pythonhosted.org/packages/b7/ce/149a00dd41f10bc29e5921b496af8b574d8413"
           "afcd5e30dfa0ed46c2cc5e/six-1.17.0-py2.py3-none-any.whl")
SIX_SHA = "4721f391ed90541fddacab5acf947aa0d3dc7d27b2e1e8eda2be8970586c3274"
INSTALLERS = pytest.mark.parametrize("installer", ["uv", "pip"])


def fails(e: MlpackError, code: str) -> None:
    assert e.code == code, (e.code, e.message)
    assert e.message and "\n" not in e.message and e.hint, (e.message, e.hint)


def left_in(cache: Path) -> list[str]:
    """What a failed prepare left in the cache (lock files excepted)."""
    envs = cache / "envs"
    return sorted(p.name for p in envs.iterdir() if not p.name.endswith(".lock")) \
        if envs.is_dir() else []


def versions(python: Path) -> dict[str, str]:
    return installed(python)


# ----------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def pack_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """environment/ of an unpacked pack: pylock.toml and wheelhouse/ (six, tinypkg)."""
    root = tmp_path_factory.mktemp("pack")
    links = root / "links"
    build_wheel(links, "tinypkg", "1.0+cpu")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLPACK_CACHE_DIR", str(root / "capture-cache"))
        mp.setenv("PIP_FIND_LINKS", " ".join([*os.environ.get("PIP_FIND_LINKS", "").split(),
                                              str(links)]))
        python = make_venv(root / "train")
        try:
            pip_into(python, "six==1.17.0", "tinypkg==1.0+cpu")
        except subprocess.CalledProcessError as e:
            pytest.skip(f"six 1.17.0 is not available from the configured index: "
                        f"{e.stderr[-200:]}")
        captured = capture_environment(python, mode="wheelhouse", workdir=root / "w")
    env = unpack(captured, root / "unpacked")
    for gone in (root / "w", links, root / "train", root / "capture-cache"):
        shutil.rmtree(gone)
    return env


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A dead proxy for every protocol, and an empty uv cache per test."""
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(var, DEAD)
        monkeypatch.setenv(var.lower(), DEAD)
    monkeypatch.setenv("NO_PROXY", "")
    monkeypatch.setenv("no_proxy", "")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("UV_HTTP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "5")
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
    for var in ("MLPACK_INSTALLER", "UV_OFFLINE", "UV_INDEX_URL", "UV_FIND_LINKS"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    path = tmp_path / "mlpack-cache"
    monkeypatch.setenv("MLPACK_CACHE_DIR", str(path))
    return path


def copy_env(pack_env: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "copy" / "environment"
    shutil.copytree(pack_env, dst)
    return dst


def same_size_forgery(wheel: Path) -> None:
    """Rewrite a wheel with other code but the same size (a valid zip, another sha256)."""
    src = zipfile.ZipFile(io.BytesIO(wheel.read_bytes()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for info in src.infolist():
            data = src.read(info)
            z.writestr(info, data.replace(b"VERSION", b"PWNED!!") if info.filename.endswith(
                "__init__.py") else data)
    assert len(out.getvalue()) == wheel.stat().st_size
    wheel.write_bytes(out.getvalue())


def url_lock(*packages: tuple[str, str, str, str]) -> bytes:
    """A lock of (name, version, wheel URL, sha256) entries, without a wheelhouse."""
    return render_lock(Lock(
        requires_python=f"=={sys.version_info[0]}.{sys.version_info[1]}.*",
        packages=tuple(LockedPackage(name=n, version=v, wheels=(LockedFile(
            name=unquote(url.rsplit("/", 1)[-1]), url=url, hashes={"sha256": sha}),))
            for n, v, url, sha in packages)))


# ----------------------------------------------------------------------------- prepare

@INSTALLERS
def test_prepare_installs_exactly_the_lock_offline_then_reuses_it(
        pack_env: Path, cache: Path, installer: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLPACK_INSTALLER", installer)
    lock = (pack_env / "pylock.toml").read_bytes()
    said: list[str] = []
    env = envbuild.prepare(lock, wheelhouse=pack_env / "wheelhouse", on_progress=said.append,
                           extra_paths=[REPO / "mlpack"])
    assert not env.cached and env.installer == installer and env.skipped == ()
    assert env.prefix.parent == cache / "envs" and env.python == env.prefix / "bin" / "python"
    assert said == [(f"installing 2 packages with {installer} (Python "
                    f"{platform.python_version()}, offline)")]
    # exactly the locked distributions: no pip, no setuptools, nothing else
    assert versions(env.python) == {"six": "1.17.0", "tinypkg": "1.0+cpu"}
    # the verifier's mlpack package (only it) is importable: `import mlpack; mlpack.run`
    out = subprocess.run([env.python, "-c", ("import six, tinypkg, mlpack, sys; mlpack.run; "
                          "print(six.__version__, tinypkg.VERSION, mlpack.__file__, sys.prefix);"
                          "import importlib.util as u; print(u.find_spec('tests'))")],
                         capture_output=True, text=True, check=True, cwd="/")
    assert out.stdout.split() == ["1.17.0", "1.0+cpu", str(env.prefix / ".extra" / "mlpack" /
                                                           "__init__.py"), str(env.prefix),
                                  "None"]
    assert json.loads((env.prefix / envbuild.MARKER).read_text())["installer"] == installer

    started = time.perf_counter()
    again = envbuild.prepare(lock, wheelhouse=pack_env / "wheelhouse",
                             extra_paths=[REPO / "mlpack"])
    assert time.perf_counter() - started < 1.0 and again.duration_s < 1.0
    assert again.cached and again.prefix == env.prefix and again.installer == installer
    # another wheelhouse location with the same lock is the same environment
    moved = copy_env(pack_env, cache.parent)
    assert envbuild.prepare(lock, wheelhouse=moved / "wheelhouse",
                            extra_paths=[REPO / "mlpack"]).cached


def test_environments_are_keyed_by_lock_interpreter_and_paths(pack_env: Path, cache: Path
                                                                ) -> None:
    lock = (pack_env / "pylock.toml").read_bytes()
    house = pack_env / "wheelhouse"
    a = envbuild.prepare(lock, wheelhouse=house)
    b = envbuild.prepare(lock, wheelhouse=house, extra_paths=[REPO])
    c = envbuild.prepare(lock + b"\n# another lock\n", wheelhouse=house)
    assert len({a.prefix, b.prefix, c.prefix}) == 3 and not (a.cached or b.cached or c.cached)
    assert not (site_packages(a.python) / envbuild.PTH).exists()
    d = envbuild.prepare(lock, wheelhouse=house, refresh=True)
    assert d.prefix == a.prefix and not d.cached


def test_an_incomplete_environment_is_rebuilt(pack_env: Path, cache: Path) -> None:
    lock = (pack_env / "pylock.toml").read_bytes()
    env = envbuild.prepare(lock, wheelhouse=pack_env / "wheelhouse")
    (env.prefix / envbuild.MARKER).unlink()  # as if the build had been killed
    (env.prefix / "half-written").write_text("x")
    again = envbuild.prepare(lock, wheelhouse=pack_env / "wheelhouse")
    assert not again.cached and again.prefix == env.prefix
    assert not (env.prefix / "half-written").exists()
    assert versions(again.python) == {"six": "1.17.0", "tinypkg": "1.0+cpu"}


def test_concurrent_prepares_build_once(pack_env: Path, cache: Path) -> None:
    lock = (pack_env / "pylock.toml").read_bytes()
    said: list[str] = []
    with ThreadPoolExecutor(3) as pool:
        envs = list(pool.map(lambda _: envbuild.prepare(
            lock, wheelhouse=pack_env / "wheelhouse", on_progress=said.append), range(3)))
    assert sorted(e.cached for e in envs) == [False, True, True]
    assert len({e.prefix for e in envs}) == 1
    assert sum(s.startswith("installing") for s in said) == 1
    assert left_in(cache) == [envs[0].prefix.name]


@INSTALLERS
def test_a_forged_wheel_in_the_wheelhouse_is_refused(
        pack_env: Path, cache: Path, tmp_path: Path, installer: str) -> None:
    env = copy_env(pack_env, tmp_path)
    same_size_forgery(env / "wheelhouse" / "tinypkg-1.0+cpu-py3-none-any.whl")
    with pytest.raises(VerificationError) as e:
        envbuild.prepare((env / "pylock.toml").read_bytes(), wheelhouse=env / "wheelhouse",
                         installer=installer)
    fails(e.value, "E_DIGEST")
    assert e.value.exit_code == EXIT_FAILED
    assert "tinypkg-1.0+cpu-py3-none-any.whl differs from its locked sha256" in e.value.message
    assert left_in(cache) == []


@INSTALLERS
def test_the_installers_check_downloaded_files(pack_env: Path, cache: Path, tmp_path: Path,
                                               installer: str) -> None:
    """Without a wheelhouse the files come from the lock's URLs: uv and pip check the sha256."""
    wheel = tmp_path / "served" / "tinypkg-1.0+cpu-py3-none-any.whl"
    wheel.parent.mkdir()
    shutil.copy(pack_env / "wheelhouse" / wheel.name, wheel)
    sha = {p.name: p.wheels[0].hashes["sha256"]
           for p in parse_lock((pack_env / "pylock.toml").read_bytes()).packages}["tinypkg"]
    lock = url_lock(("tinypkg", "1.0+cpu", wheel.as_uri(), sha))
    assert envbuild.prepare(lock, installer=installer).installer == installer
    same_size_forgery(wheel)
    with pytest.raises(VerificationError) as e:
        envbuild.prepare(lock, installer=installer, refresh=True)
    fails(e.value, "E_DIGEST")
    assert "tinypkg" in e.value.message and left_in(cache) == []


def test_a_missing_wheel_is_e_env(pack_env: Path, cache: Path, tmp_path: Path) -> None:
    env = copy_env(pack_env, tmp_path)
    (env / "wheelhouse" / "six-1.17.0-py2.py3-none-any.whl").unlink()
    with pytest.raises(IOFailure) as e:
        envbuild.prepare((env / "pylock.toml").read_bytes(), wheelhouse=env / "wheelhouse")
    fails(e.value, "E_ENV")
    assert e.value.exit_code == EXIT_IO
    assert e.value.message.startswith("six 1.17.0: six-1.17.0-py2.py3-none-any.whl is missing")
    # a lock made in mode "lock" on another machine: its file:// wheels are not here
    gone = tmp_path / "author" / "tinypkg-1.0+cpu-py3-none-any.whl"
    for installer in envbuild.INSTALLERS:
        with pytest.raises(IOFailure) as e:
            envbuild.prepare(url_lock(("tinypkg", "1.0+cpu", gone.as_uri(), "0" * 64)),
                             installer=installer)
        fails(e.value, "E_ENV")
        assert e.value.message == ("tinypkg 1.0+cpu: the lock names a file of the author's "
                                   f"machine that is not here ({gone.as_uri()})")
    assert left_in(cache) == []


@INSTALLERS
@pytest.mark.parametrize("offline", [True, False])
def test_without_wheelhouse_and_network_it_is_e_env(cache: Path, installer: str,
                                                    offline: bool) -> None:
    lock = url_lock(("six", "1.17.0", SIX_URL, SIX_SHA))
    with pytest.raises(IOFailure) as e:
        envbuild.prepare(lock, offline=offline, installer=installer)
    fails(e.value, "E_ENV")
    assert e.value.exit_code == EXIT_IO
    if offline:
        assert e.value.message == f"offline, and the lock needs downloads: six 1.17.0 ({SIX_URL})"
    else:
        assert e.value.message.startswith(f"{installer} could not install the environment: ")
    assert left_in(cache) == []


def test_local_installs_are_skipped_and_named(pack_env: Path, cache: Path, tmp_path: Path
                                              ) -> None:
    """The author's editable and directory installs cannot be rebuilt; mlpack is provided."""
    lock = parse_lock((pack_env / "pylock.toml").read_bytes())
    from mlpack.environment import LockedDirectory, LockedVcs
    local = (
        LockedPackage(name="digits-train", installed_version="0.1.0",
                      directory=LockedDirectory(path="/home/ada/digits-train", editable=True)),
        LockedPackage(name="mlpack", installed_version="0.1.0",
                      directory=LockedDirectory(path="/home/ada/mlpack", editable=True)),
        LockedPackage(name="tinylib", installed_version="1.2.3",
                      vcs=LockedVcs(type="git", url="https://git.example.org/tinylib.git",
                                    commit_id="4f1c0ffee0d2b7a8e5f2a6c3d9e1b0a7c6d5e4f3")))
    data = render_lock(Lock(requires_python=lock.requires_python,
                            environments=lock.environments,
                            packages=tuple(sorted(lock.packages + local, key=lambda p: p.name))))
    house = copy_env(pack_env, tmp_path) / "wheelhouse"
    (house.parent / "pylock.toml").write_bytes(data)
    env = envbuild.prepare(data, wheelhouse=house, extra_paths=[REPO])  # a directory, whole
    assert env.skipped == ("digits-train", "mlpack", "tinylib")
    assert {k: v for k, v in versions(env.python).items() if k != "mlpack"} == {
        "six": "1.17.0", "tinypkg": "1.0+cpu"}
    notes = "\n".join(env.notes)
    assert "digits-train 0.1.0 (a local editable install of /home/ada/digits-train" in notes
    assert "mlpack 0.1.0: not installed from the lock (directory); the verifier's own" in notes
    assert "tinylib 1.2.3 (from git https://git.example.org/tinylib.git at 4f1c0ffee" in notes
    assert "offline" in notes
    again = envbuild.prepare(data, wheelhouse=house, extra_paths=[REPO])
    assert again.cached and again.skipped == env.skipped and again.notes == env.notes
    # without extra_paths the lock's mlpack entry is skipped like any local install
    plain = envbuild.prepare(data, wheelhouse=house)
    assert "mlpack 0.1.0 (a local editable install of /home/ada/mlpack" in "\n".join(plain.notes)


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org",
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env=env).stdout.strip()


@INSTALLERS
def test_a_vcs_entry_is_installed_at_its_commit(cache: Path, tmp_path: Path, installer: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    backend = tmp_path / "backend"  # flit_core, for the build of the checkout
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                           "--only-binary", ":all:", "-d", str(backend), "flit_core>=3.4"],
                          capture_output=True, text=True, check=False,
                          env={k: v for k, v in os.environ.items() if "proxy" not in k.lower()})
    if proc.returncode != 0:
        pytest.skip(f"flit_core is not available from the configured index: {proc.stderr[-200:]}")
    monkeypatch.setenv("UV_FIND_LINKS", str(backend))
    monkeypatch.setenv("UV_OFFLINE", "1")  # a git+file:// checkout still works
    monkeypatch.setenv("PIP_FIND_LINKS", str(backend))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    repo = tmp_path / "vcslib"
    (repo / "vcslib").mkdir(parents=True)
    (repo / "vcslib" / "__init__.py").write_text('"""A library."""\n__version__ = "2.0"\n')
    (repo / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["flit_core>=3.4"]\nbuild-backend = "flit_core.buildapi"\n'
        '[project]\nname = "vcslib"\ndynamic = ["version", "description"]\n')
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "v2")
    commit = git(repo, "rev-parse", "HEAD")
    (repo / "vcslib" / "__init__.py").write_text('"""A library."""\n__version__ = "3.0"\n')
    git(repo, "commit", "-qam", "v3")  # the lock pins the first commit, not the branch head
    from mlpack.environment import LockedVcs
    lock = render_lock(Lock(packages=(LockedPackage(
        name="vcslib", installed_version="2.0",
        vcs=LockedVcs(type="git", url=repo.as_uri(), commit_id=commit)),)))
    env = envbuild.prepare(lock, installer=installer, offline=False)
    assert env.skipped == () and versions(env.python) == {"vcslib": "2.0"}, env.notes


def test_no_matching_interpreter_is_e_env(pack_env: Path, cache: Path) -> None:
    lock = (pack_env / "pylock.toml").read_bytes()
    old = lock.replace(b'requires-python = "==3.', b'requires-python = "==2.6.*" #')
    with pytest.raises(IOFailure) as e:
        envbuild.prepare(old, wheelhouse=pack_env / "wheelhouse")
    fails(e.value, "E_ENV")
    assert e.value.message.startswith("no Python interpreter satisfies the lock: it needs "
                                      "Python ==2.6.*; sys_platform == ")
    assert f"found {platform.python_version()} (" in e.value.message
    other = lock.replace(b"sys_platform == 'linux'", b"sys_platform == 'plan9'").replace(
        b"sys_platform == 'darwin'", b"sys_platform == 'plan9'")
    with pytest.raises(IOFailure) as e:
        envbuild.prepare(other, wheelhouse=pack_env / "wheelhouse", python=sys.executable)
    fails(e.value, "E_ENV")
    assert "sys_platform == 'plan9'" in e.value.message
    with pytest.raises(MlpackError) as e2:
        envbuild.prepare(lock, wheelhouse=pack_env / "wheelhouse", python="/no/such/python")
    fails(e2.value, "E_INPUT")
    assert left_in(cache) == []


def test_the_interpreter_is_found_by_version(pack_env: Path, cache: Path) -> None:
    """A lock for another Python minor version is built with that Python, when one exists."""
    here = sys.version_info[:2]
    lock = (pack_env / "pylock.toml").read_bytes()
    for minor in (here[1] + 1, here[1] - 1):
        want = f"{here[0]}.{minor}"
        other = lock.replace(f'"=={here[0]}.{here[1]}.*"'.encode(), f'"=={want}.*"'.encode())
        try:
            env = envbuild.prepare(other, wheelhouse=pack_env / "wheelhouse")
        except IOFailure:
            continue
        out = subprocess.run([env.python, "-c", ("import platform, six; "
                              "print(platform.python_version())")], capture_output=True,
                             text=True, check=True)
        assert out.stdout.startswith(want + ".")
        return
    pytest.skip(f"no Python {here[0]}.{here[1] + 1} or {here[0]}.{here[1] - 1} on this machine")


def test_bad_lock_or_installer_choice(pack_env: Path, cache: Path, tmp_path: Path) -> None:
    lock = (pack_env / "pylock.toml").read_bytes()
    with pytest.raises(MlpackError) as e:
        envbuild.prepare(lock, wheelhouse=pack_env / "wheelhouse", installer="conda")
    fails(e.value, "E_USAGE")
    with pytest.raises(VerificationError) as e3:
        envbuild.prepare(b'lock-version = "2.0"\ncreated-by = "x"\npackages = []\n')
    fails(e3.value, "E_MANIFEST")
    assert "lock-version" in e3.value.message
    for evil in ("../../../etc/passwd", "/etc/passwd"):
        bad = lock.replace(b'path = "wheelhouse/six', f'path = "{evil}#'.encode())
        with pytest.raises(VerificationError) as e4:
            envbuild.prepare(bad, wheelhouse=pack_env / "wheelhouse")
        fails(e4.value, "E_MANIFEST")
        assert "is not a relative path inside the pack" in e4.value.message
    assert left_in(cache) == []


def test_the_install_lock_keeps_what_it_does_not_know(tmp_path: Path) -> None:
    """Keys mlpack does not model (markers, upload times, tool tables) reach the installer."""
    doc = {"lock-version": "1.0", "created-by": "other \"tool\"\x7f", "requires-python": ">=3.8",
           "packages": [{"name": "a-b", "version": "1", "marker": "python_version >= '3.8'",
                         "wheels": [{"name": "a_b-1-py3-none-any.whl",
                                     "path": "wheelhouse/a_b-1-py3-none-any.whl",
                                     "upload-time": tomllib.loads(
                                         "t = 2025-01-02T03:04:05Z")["t"],
                                     "hashes": {"sha256": "0" * 64}}],
                         "tool": {"x": {"n": 1.5, "flag": True}}}]}
    data = render_toml(doc)
    assert tomllib.loads(data.decode()) == doc
    house = tmp_path / "wheelhouse"
    house.mkdir()
    with pytest.raises(IOFailure) as e:  # the wheel is not there
        plan(data, house, vcs_ok=False)
    fails(e.value, "E_ENV")
    (house / "a_b-1-py3-none-any.whl").write_bytes(b"")
    with pytest.raises(VerificationError):  # there, but not the locked file
        plan(data, house, vcs_ok=False)
    wheel = build_wheel(tmp_path / "w", "a_b", "1")
    shutil.copy(wheel, house / wheel.name)
    import hashlib
    doc["packages"][0]["wheels"][0]["hashes"]["sha256"] = hashlib.sha256(
        wheel.read_bytes()).hexdigest()
    p = plan(render_toml(doc), house, vcs_ok=False)
    (entry,) = p.lock["packages"]
    assert entry["marker"] == "python_version >= '3.8'" and entry["tool"] == {
        "x": {"n": 1.5, "flag": True}}
    assert entry["wheels"][0]["path"] == str(house / wheel.name)
    sha = doc["packages"][0]["wheels"][0]["hashes"]["sha256"]
    uri = (house / wheel.name).as_uri()
    assert p.requirements == (f"a-b @ {uri} ; python_version >= '3.8' --hash=sha256:{sha}",)


# ----------------------------------------------------------------------------- current

def test_check_current_lists_what_the_interpreter_lacks(pack_env: Path, cache: Path) -> None:
    lock = (pack_env / "pylock.toml").read_bytes()
    env = envbuild.prepare(lock, wheelhouse=pack_env / "wheelhouse")
    assert envbuild.check_current(lock, str(env.python)) == []
    changed = lock.replace(b'version = "1.17.0"', b'version = "1.16.0"')
    extra = render_lock(Lock(requires_python="==3.0.*", packages=(
        *parse_lock(changed).packages, LockedPackage(name="absent", version="1.0", wheels=(
            LockedFile(url="https://example.org/absent-1.0-py3-none-any.whl",
                       hashes={"sha256": "0" * 64}),)))))
    assert envbuild.check_current(changed, str(env.python)) == [
        Difference(name="six", change="changed", locked="1.16.0", installed="1.17.0")]
    diffs = envbuild.check_current(extra, str(env.python))
    assert [(d.name, d.change) for d in diffs] == [("python", "changed"), ("absent", "removed"),
                                                   ("six", "changed")]
    assert diffs[0].locked == "==3.0.*" and diffs[0].installed.startswith(
        platform.python_version())
    # the pins file of a capture without the index check is read too
    pins = b"# pins\nsix==1.17.0\ntinypkg==2.0\n"
    assert envbuild.check_current(pins, str(env.python)) == [
        Difference(name="tinypkg", change="changed", locked="2.0", installed="1.0+cpu")]
    # this interpreter (the default) has no tinypkg
    assert Difference(name="tinypkg", change="removed", locked="1.0+cpu") in \
        envbuild.check_current(lock)


# ----------------------------------------------------------------------------- conda-pack

@pytest.fixture
def conda_archive(conda_env: Path, tmp_path: Path) -> Path:  # noqa: F811
    """The conda-pack archive of the hand-built conda prefix of test_environment.py, its
    interpreter copied in (a conda python is a file of the prefix, not a link out of it)."""
    pytest.importorskip("conda_pack")
    for link in (conda_env.parent).iterdir():
        if link.is_symlink() and os.path.isabs(os.readlink(link)):
            target = link.resolve()
            link.unlink()
            shutil.copy2(target, link)
    c = capture_environment(conda_env, mode="conda-pack", workdir=tmp_path / "capture")
    archive = next(f.path for f in c.files if f.name == "environment/conda-env.tar.gz")
    assert archive is not None
    return archive


def test_conda_archive_is_unpacked_relocated_and_cached(conda_archive: Path, cache: Path
                                                        ) -> None:
    said: list[str] = []
    env = envbuild.prepare_conda(conda_archive, on_progress=said.append, extra_paths=[REPO])
    assert not env.cached and env.installer == "conda-pack" and said
    assert env.prefix.parent == cache / "envs" and env.prefix.name.startswith("conda-")
    assert (env.prefix / "share/hello/data.txt").read_text() == f"data lives in {env.prefix}\n"
    out = subprocess.run([env.python, "-c", "import sys, mlpack; print(sys.prefix)"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(env.prefix)
    started = time.perf_counter()
    again = envbuild.prepare_conda(conda_archive, extra_paths=[REPO])
    assert again.cached and again.prefix == env.prefix and time.perf_counter() - started < 1


def hostile_tar(path: Path, member: tarfile.TarInfo, data: bytes = b"x") -> Path:
    with tarfile.open(path, "w:gz") as tar:
        ok = tarfile.TarInfo("bin/python")
        ok.size = 1
        tar.addfile(ok, io.BytesIO(b"x"))
        tar.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return path


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink-out", "hardlink-out"])
def test_a_hostile_conda_archive_is_refused(kind: str, cache: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    member = tarfile.TarInfo({"dotdot": "../../../victim.txt", "absolute": str(victim),
                              "symlink-out": "lib/escape", "hardlink-out": "lib/hard"}[kind])
    if kind == "symlink-out":
        member.type, member.linkname = tarfile.SYMTYPE, str(tmp_path)
    elif kind == "hardlink-out":
        member.type, member.linkname = tarfile.LNKTYPE, "../../../victim.txt"
    else:
        member.size = 1
    archive = hostile_tar(tmp_path / "env.tar.gz", member)
    with pytest.raises(VerificationError) as e:
        envbuild.prepare_conda(archive)
    fails(e.value, "E_PATH")
    assert not victim.exists() and left_in(cache) == []


def test_a_broken_conda_archive_is_e_env(cache: Path, tmp_path: Path) -> None:
    bad = tmp_path / "env.tar.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00not really gzip")
    with pytest.raises(IOFailure) as e:
        envbuild.prepare_conda(bad)
    fails(e.value, "E_ENV")
    empty = tmp_path / "empty.tar.gz"
    with tarfile.open(empty, "w:gz") as tar:
        info = tarfile.TarInfo("share/readme")
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(IOFailure) as e:
        envbuild.prepare_conda(empty)
    fails(e.value, "E_ENV")
    assert "holds no Python interpreter" in e.value.message
    with pytest.raises(MlpackError) as e2:
        envbuild.prepare_conda(tmp_path / "absent.tar.gz")
    fails(e2.value, "E_INPUT")
    assert left_in(cache) == []


def test_an_old_or_missing_uv_falls_back_to_pip(pack_env: Path, cache: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    old = tmp_path / "uv"  # a uv that says it is 0.6.14, the last without pylock.toml
    old.write_text("#!/bin/sh\necho 'uv 0.6.14'\n")
    old.chmod(0o755)
    monkeypatch.setenv("MLPACK_UV", str(old))
    lock = (pack_env / "pylock.toml").read_bytes()
    env = envbuild.prepare(lock, wheelhouse=pack_env / "wheelhouse")
    assert env.installer == "pip" and env.notes == (
        (f"uv 0.6.14 at {old} is older than 0.6.15 (the first to read pylock.toml): the "
        "environment was built with pip (slower; pip install 'uv>=0.6.15')"),)
    with pytest.raises(IOFailure) as e:
        envbuild.prepare(lock, wheelhouse=pack_env / "wheelhouse", installer="uv", refresh=True)
    fails(e.value, "E_ENV")
    assert left_in(cache) == []


def test_an_interrupted_build_leaves_nothing_behind(pack_env: Path, cache: Path,
                                                    tmp_path: Path) -> None:
    """Ctrl-C while uv installs: the installer is stopped and the half-built env removed."""
    from mlpack._envinstall import uv_binary
    real = uv_binary()
    if real is None:
        pytest.skip("uv is not installed")
    started = tmp_path / "started"
    slow = tmp_path / "uv"  # the real uv, which takes its time over `uv pip install`
    slow.write_text(f'#!/bin/sh\nif [ "$1" = pip ]; then echo > "{started}"; exec sleep 60; fi\n'
                    f'exec "{real}" "$@"\n')
    slow.chmod(0o755)
    code = ("import sys; from pathlib import Path; from mlpack import envbuild; "
            "envbuild.prepare(Path(sys.argv[1]).read_bytes(), wheelhouse=Path(sys.argv[2]))")
    proc = subprocess.Popen([sys.executable, "-c", code, str(pack_env / "pylock.toml"),
                             str(pack_env / "wheelhouse")], stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "MLPACK_UV": str(slow)}, cwd=REPO)
    deadline = time.monotonic() + 30
    while not started.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert started.exists(), proc.stderr.read() if proc.stderr else ""
    assert [n for n in left_in(cache) if not n.startswith(".tmp-")]  # being built
    proc.send_signal(__import__("signal").SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode != 0 and "KeyboardInterrupt" in err
    assert left_in(cache) == []
    env = envbuild.prepare((pack_env / "pylock.toml").read_bytes(),
                           wheelhouse=pack_env / "wheelhouse")
    assert not env.cached and versions(env.python) == {"six": "1.17.0", "tinypkg": "1.0+cpu"}


@INSTALLERS
def test_a_pins_file_is_installed_by_version(pack_env: Path, cache: Path, installer: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """environment/requirements.txt (a capture without the index check): the versions come
    from the configured index (here a find-links directory), unchecked, and say so."""
    monkeypatch.setenv("UV_FIND_LINKS", str(pack_env / "wheelhouse"))
    monkeypatch.setenv("PIP_FIND_LINKS", str(pack_env / "wheelhouse"))
    pins = (b"# Exact pins of the environment\nsix==1.17.0\ntinypkg==1.0+cpu\n"
            b"digits-train @ file:///home/ada/digits-train  # editable install of version 0.1\n")
    env = envbuild.prepare(pins, offline=True, installer=installer)
    assert versions(env.python) == {"six": "1.17.0", "tinypkg": "1.0+cpu"}
    assert env.skipped == ("digits-train",) and env.notes[0].startswith(
        "the lock is a pins file without hashes")
    assert envbuild.prepare(pins, offline=True, installer=installer).cached
    assert envbuild.check_current(pins, env.python) == [
        Difference(name="digits-train", change="removed")]


def test_a_wheelhouse_rebuild_needs_no_network_at_all(pack_env: Path, cache: Path) -> None:
    """In a network namespace with no interface but loopback (unshare -rn), when available."""
    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "-rn", "true"], capture_output=True,
                                         check=False).returncode != 0:
        pytest.skip("no unprivileged network namespaces here")
    code = ("import sys; from pathlib import Path; from mlpack import envbuild; "
            "from mlpack.errors import MlpackError\n"
            "try:\n"
            "    e = envbuild.prepare(Path(sys.argv[1]).read_bytes(), wheelhouse=Path(sys.argv[2]),"
            " offline=sys.argv[3] == '1')\n"
            "    print('ok', e.python)\n"
            "except MlpackError as e:\n"
            "    print(e.code, e.message)\n")
    clean = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    for offline in ("1", "0"):  # even with uv and pip allowed to try the network
        out = subprocess.run([unshare, "-rn", sys.executable, "-c", code,
                              str(pack_env / "pylock.toml"), str(pack_env / "wheelhouse"),
                              offline], capture_output=True, text=True, check=True, env=clean,
                             cwd=REPO).stdout.split()
        assert out[0] == "ok", out
        assert versions(Path(out[1])) == {"six": "1.17.0", "tinypkg": "1.0+cpu"}
        shutil.rmtree(cache / "envs")
    by_url = cache.parent / "by-url" / "pylock.toml"  # no wheelhouse: the lock's https URL
    by_url.parent.mkdir()
    by_url.write_bytes(url_lock(("six", "1.17.0", SIX_URL, SIX_SHA)))
    out = subprocess.run([unshare, "-rn", sys.executable, "-c", code, str(by_url),
                          str(by_url.parent / "wheelhouse"), "0"], capture_output=True,
                         text=True, check=True, env=clean, cwd=REPO).stdout
    assert out.startswith("E_ENV uv could not install the environment: "), out
    assert left_in(cache) == []

"""mlpack.environment: introspection, PEP 751 locks, wheelhouse rebuilds, conda-pack, errors."""

from __future__ import annotations

import base64
import hashlib
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
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import jsonschema
import pytest

from mlpack import environment as env
from mlpack.capture import Captured
from mlpack.environment import (
    EnvironmentSection,
    Lock,
    LockedFile,
    LockedPackage,
    capture_environment,
    compare,
    installed,
    introspect,
    parse_lock,
    parse_requirements,
    render_lock,
)
from mlpack.errors import IOFailure, MlpackError, UsageError, VerificationError
from mlpack.names import check_names

REPO = Path(__file__).resolve().parents[1]
FIX = Path(__file__).parent / "data" / "environment"
SCHEMA = json.loads((REPO / "spec" / "schema" / "environment.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
OWN_PIP = [sys.executable, "-m", "pip"]
posix_only = pytest.mark.skipif(os.name != "posix", reason="venv layout and shell scripts")


def one_line(e: MlpackError) -> None:
    assert e.message and "\n" not in e.message and e.hint, (e.message, e.hint)


# ----------------------------------------------------------------------------- helpers

def make_venv(path: Path) -> Path:
    """A real venv without pip (0.1 s); returns its interpreter."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    return path / "bin" / "python"


def site_packages(python: Path) -> Path:
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    out = subprocess.run([str(python), "-I", "-c", code], check=True, capture_output=True,
                         text=True)
    return Path(out.stdout.strip())


def pip_into(python: Path, *args: str) -> None:
    """Install with this interpreter's pip (``--python``), honoring the user's pip config."""
    subprocess.run([*OWN_PIP, "--python", str(python), "install", "--quiet", *args], check=True,
                   capture_output=True)


def build_wheel(directory: Path, name: str, version: str) -> Path:
    """A minimal pure-Python wheel (with a RECORD pip accepts)."""
    files = {f"{name}/__init__.py": f"VERSION = {version!r}\n",
             f"{name}-{version}.dist-info/METADATA":
                 f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
             f"{name}-{version}.dist-info/WHEEL":
                 "Wheel-Version: 1.0\nGenerator: mlpack-tests\nRoot-Is-Purelib: true\n"
                 "Tag: py3-none-any\n"}
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    files[f"{name}-{version}.dist-info/RECORD"] = "\n".join(
        [*record, f"{name}-{version}.dist-info/RECORD,,"]) + "\n"
    directory.mkdir(parents=True, exist_ok=True)
    wheel = directory / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for path, text in files.items():
            z.writestr(path, text)
    return wheel


def fake_dist(site: Path, name: str, version: str, direct_url: object = None,
              installer: str = "pip", tag: str | None = None) -> None:
    """An installed distribution's metadata, as an installer writes it (PEP 376/610)."""
    info = site / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "INSTALLER").write_text(installer + "\n")
    if tag is not None:
        (info / "WHEEL").write_text(f"Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: {tag}\n")
    if direct_url is not None:
        text = direct_url if isinstance(direct_url, str) else json.dumps(direct_url)
        (info / "direct_url.json").write_text(text)


def unpack(captured: Captured, root: Path) -> Path:
    """Lay the captured pack members out as an unpacked pack would; returns root/environment."""
    for f in captured.files:
        target = root / f.name
        target.parent.mkdir(parents=True, exist_ok=True)
        if f.data is not None:
            target.write_bytes(f.data)
        else:
            assert f.path is not None
            shutil.copyfile(f.path, target)
    return root / "environment"


def lock_of(captured: Captured) -> bytes:
    data = next(f.data for f in captured.files if f.name == env.LOCK_MEMBER)
    assert data is not None
    return data


def check_section(section: dict[str, object]) -> None:
    errors = sorted(VALIDATOR.iter_errors(section), key=str)
    assert not errors, errors[0].message
    assert EnvironmentSection.from_dict(section).to_dict() == section


def check_pep751(data: bytes) -> None:
    """The lock validates with packaging's own PEP 751 reader (packaging >= 25.0)."""
    pylock = pytest.importorskip("packaging.pylock")
    pylock.Pylock.from_dict(tomllib.loads(data.decode())).validate()


@pytest.fixture
def offline_pip(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """pip configured with no index and one empty find-links directory (fast, no network)."""
    links = tmp_path / "links"
    links.mkdir()
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))
    return links


@pytest.fixture(scope="session")
def new_pip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pip >= 26.1 wheel (reads pylock.toml), run as ``python pip.whl/pip``."""
    d = tmp_path_factory.mktemp("pip")
    proc = subprocess.run([*OWN_PIP, "download", "--quiet", "--no-deps", "--only-binary", ":all:",
                           "-d", str(d), "pip>=26.1"], check=False, capture_output=True,
                          text=True)
    wheels = sorted(d.glob("pip-*.whl"))
    if proc.returncode != 0 or not wheels:
        pytest.skip(f"no pip >= 26.1 wheel available: {proc.stderr.strip()[-200:]}")
    return wheels[-1] / "pip"


# ----------------------------------------------------------------------------- introspection

def test_introspect_this_interpreter() -> None:
    introspect()  # warm the file-system cache
    start = time.perf_counter()
    interp = introspect()
    assert time.perf_counter() - start < 2.0
    assert interp.version == platform.python_version()
    assert interp.implementation == platform.python_implementation()
    assert interp.machine == platform.machine() and interp.sys_platform == sys.platform
    assert interp.tag.startswith(f"cp{sys.version_info[0]}{sys.version_info[1]}-")
    libc = platform.libc_ver()
    assert interp.libc == (f"{libc[0]} {libc[1]}" if libc[0] else None)
    dists = {d.key: d for d in interp.distributions}
    assert dists["pytest"].version == metadata.version("pytest")
    assert "py3-none-any" in dists["pytest"].tags
    mlpack = dists["mlpack"]  # the project is installed editable in its venv
    if mlpack.direct_url is not None:
        assert mlpack.direct_url["dir_info"] == {"editable": True}
    assert installed() == {d.key: d.version for d in interp.distributions}


def test_tag_is_the_most_specific_platform() -> None:
    packaging_tags = pytest.importorskip("packaging.tags")
    tag = introspect().tag
    assert tag in {str(t) for t in packaging_tags.sys_tags()}
    if sys.platform == "linux" and platform.libc_ver()[0] == "glibc":
        assert "manylinux_" in tag


@posix_only
def test_introspect_another_venv_sees_its_own_packages(tmp_path: Path) -> None:
    python = make_venv(tmp_path / "v")
    fake_dist(site_packages(python), "only-here", "0.1")
    assert installed(python) == {"only-here": "0.1"}
    interp = introspect(python)
    assert Path(interp.prefix) == tmp_path / "v" and not interp.has_pip
    # neither packaging nor pip is importable there: the sysconfig fallback gives the same tag
    assert interp.tag == introspect().tag


def test_missing_interpreter_is_e_input(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as e:
        introspect(tmp_path / "nope" / "python")
    assert e.value.code == "E_INPUT" and "does not exist" in e.value.message
    one_line(e.value)


@posix_only
def test_non_executable_and_non_python_are_e_input(tmp_path: Path) -> None:
    plain = tmp_path / "python"
    plain.write_text("print('hi')\n")
    with pytest.raises(UsageError) as e:
        capture_environment(plain, workdir=tmp_path)
    assert e.value.code == "E_INPUT" and "not an executable" in e.value.message
    one_line(e.value)
    plain.write_text("#!/bin/sh\necho 'python: cannot start' >&2\nexit 3\n")
    plain.chmod(0o755)
    with pytest.raises(UsageError) as e:
        capture_environment(plain, workdir=tmp_path)
    assert e.value.code == "E_INPUT" and "not a working Python" in e.value.message
    assert "python: cannot start" in e.value.message
    one_line(e.value)


# ----------------------------------------------------------------------------- modes and usage

def test_unknown_mode_is_e_recipe(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as e:
        capture_environment(mode="docker", workdir=tmp_path)
    assert e.value.code == "E_RECIPE" and "'docker'" in e.value.message
    one_line(e.value)


def test_wheelhouse_needs_the_index(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as e:
        capture_environment(mode="wheelhouse", workdir=tmp_path, index_check=False)
    assert e.value.code == "E_USAGE"
    one_line(e.value)


def test_mode_none_records_interpreter_only(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "do-not-record")
    c = capture_environment(mode="none", workdir=tmp_path)
    assert c.files == () and "not captured" in c.notes[0]
    assert c.section["mode"] == "none" and "lock" not in c.section
    assert c.section["python"]["version"] == platform.python_version()
    assert c.section["variables"]["OMP_NUM_THREADS"] == "3"
    assert "do-not-record" not in json.dumps(c.section)
    check_section(c.section)


def test_conda_pack_outside_conda_is_e_input(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as e:
        capture_environment(mode="conda-pack", workdir=tmp_path)
    assert e.value.code == "E_INPUT" and "not a conda environment" in e.value.message
    one_line(e.value)


def test_pins_without_index_check(tmp_path: Path) -> None:
    """The project's own venv, no index queries: exact pins, the editable mlpack recorded."""
    c = capture_environment(workdir=tmp_path, index_check=False)
    check_section(c.section)
    assert c.section["lock"] == env.REQUIREMENTS_MEMBER
    data = c.files[0].data
    assert data is not None and c.files[0].name == env.REQUIREMENTS_MEMBER
    assert compare(parse_requirements(data), installed()) == []
    assert c.section["packages"] == len(installed())
    mlpack = next(d for d in introspect().distributions if d.key == "mlpack")
    if mlpack.direct_url is not None:
        local = {r["name"]: r for r in c.section["local"]}
        assert local["mlpack"] == {"name": "mlpack", "version": metadata.version("mlpack"),
                                   "kind": "editable", "path": str(REPO)}
        assert any("mlpack" in n and "editable" in n for n in c.notes)
    if "torch" in installed():  # this machine: 2.13.0+cpu from /opt/wheels
        assert f"torch=={installed()['torch']}\n".encode() in data


# ----------------------------------------------------------------------------- direct URLs

@posix_only
def test_direct_url_installs_are_locked_honestly(tmp_path: Path) -> None:
    """PEP 610 vcs_info, dir_info (editable or not), archive_info and a legacy develop install."""
    python = make_venv(tmp_path / "v")
    site = site_packages(python)
    wheel = build_wheel(tmp_path / "dist", "tinyarch", "2.0")
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    fake_dist(site, "tinyvcs", "1.2.3", {
        "url": "https://alice:s3cr3t@git.example.org/team/tinyvcs.git",
        "vcs_info": {"vcs": "git", "commit_id": "a" * 40, "requested_revision": "v1.2.3"}})
    fake_dist(site, "tinydir", "0.1", {"url": (tmp_path / "src dir").as_uri(), "dir_info": {}})
    fake_dist(site, "tinyedit", "0.2.dev0", {"url": "file:///work/tinyedit",
                                             "dir_info": {"editable": True}})
    fake_dist(site, "tinyarch", "2.0", {"url": wheel.as_uri(), "archive_info": {}})
    dev = tmp_path / "devsrc"
    (dev / "tinydev.egg-info").mkdir(parents=True)
    (dev / "tinydev.egg-info" / "PKG-INFO").write_text("Metadata-Version: 1.1\nName: tinydev\n"
                                                       "Version: 0.9\n")
    (site / "tinydev.pth").write_text(str(dev) + "\n")

    c = capture_environment(python, workdir=tmp_path / "w")
    data = lock_of(c)
    check_pep751(data)
    check_section(c.section)
    assert b"s3cr3t" not in data and "s3cr3t" not in json.dumps(c.section) + "".join(c.notes)
    lock = parse_lock(data)
    by = {p.name: p for p in lock.packages}
    assert set(by) == {"tinyvcs", "tinydir", "tinyedit", "tinyarch", "tinydev"}
    assert all(p.version is None for p in lock.packages)  # PEP 751: not for source trees
    assert by["tinyvcs"].vcs is not None and by["tinyvcs"].vcs.commit_id == "a" * 40
    assert by["tinyvcs"].vcs.url == "https://git.example.org/team/tinyvcs.git"
    assert by["tinydir"].directory is not None
    assert by["tinydir"].directory.path == str(tmp_path / "src dir")
    assert by["tinydir"].directory.editable is None
    assert by["tinyedit"].directory is not None and by["tinyedit"].directory.editable
    assert by["tinyarch"].archive is not None and by["tinyarch"].archive.hashes == {"sha256": sha}
    assert by["tinydev"].directory is not None and by["tinydev"].directory.path == str(dev)
    assert compare(lock, installed(python)) == []
    kinds = {r["name"]: r["kind"] for r in c.section["local"]}
    assert kinds == {"tinyarch": "archive", "tinydev": "editable", "tinydir": "directory",
                     "tinyedit": "editable", "tinyvcs": "vcs"}
    assert len(c.notes) == 5 and all("a rebuild needs it" in n for n in c.notes)
    assert c.section["packages"] == 5 and [f.name for f in c.files] == [env.LOCK_MEMBER]


@posix_only
def test_archive_without_hash_or_bad_direct_url_is_e_capture(tmp_path: Path) -> None:
    python = make_venv(tmp_path / "v")
    site = site_packages(python)
    fake_dist(site, "gone", "1.0", {"url": "https://example.org/gone-1.0.tar.gz",
                                    "archive_info": {}})
    with pytest.raises(IOFailure) as e:
        capture_environment(python, workdir=tmp_path / "w")
    assert e.value.code == "E_CAPTURE" and "gone 1.0" in e.value.message
    assert "no recorded sha256" in e.value.message
    one_line(e.value)
    shutil.rmtree(site / "gone-1.0.dist-info")
    for i, bad in enumerate(("{not json", {"url": "https://h/x.git", "vcs_info": {"vcs": "git"}},
                             {"dir_info": {}}, {"url": "file:///x", "other_info": {}})):
        fake_dist(site, f"broken{i}", "1.0", bad)
        with pytest.raises(IOFailure) as e:
            capture_environment(python, workdir=tmp_path / "w")
        assert e.value.code == "E_CAPTURE" and f"broken{i} 1.0" in e.value.message
        assert "malformed" in e.value.message
        one_line(e.value)
        shutil.rmtree(site / f"broken{i}-1.0.dist-info")


# ----------------------------------------------------------------------------- pip failures

@posix_only
def test_package_without_a_wheel_is_e_capture(tmp_path: Path, offline_pip: Path) -> None:
    python = make_venv(tmp_path / "v")
    fake_dist(site_packages(python), "mlpack-no-such-dist", "9.9.9")
    with pytest.raises(IOFailure) as e:
        capture_environment(python, workdir=tmp_path / "w")
    assert e.value.code == "E_CAPTURE"
    assert "mlpack-no-such-dist==9.9.9" in e.value.message and "no wheel" in e.value.message
    assert "mode = \"none\"" in (e.value.hint or "")
    one_line(e.value)


@posix_only
def test_pip_failure_is_e_capture_with_pips_error(tmp_path: Path, offline_pip: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    python = make_venv(tmp_path / "v")
    fake_dist(site_packages(python), "anything", "1.0")
    monkeypatch.setenv("PIP_CONSTRAINT", str(tmp_path / "missing-constraints.txt"))
    with pytest.raises(IOFailure) as e:
        capture_environment(python, workdir=tmp_path / "w")
    assert e.value.code == "E_CAPTURE" and e.value.message.startswith("pip failed: ERROR:")
    assert "missing-constraints.txt" in e.value.message
    one_line(e.value)


@posix_only
def test_a_locally_built_install_is_flagged(tmp_path: Path, offline_pip: Path) -> None:
    """Installed from a local build (a platform tag) while the index has a pure wheel."""
    wheel = build_wheel(offline_pip, "tinypkg", "1.0+cpu")
    python = make_venv(tmp_path / "v")
    fake_dist(site_packages(python), "tinypkg", "1.0+cpu", tag="cp311-cp311-linux_x86_64")
    c = capture_environment(python, workdir=tmp_path / "w")
    (pkg,) = parse_lock(lock_of(c)).packages
    assert pkg.version == "1.0+cpu" and pkg.wheels[0].filename == wheel.name
    assert any(n == f"tinypkg 1.0+cpu: the installed build (cp311-cp311-linux_x86_64) is not "
               f"the locked wheel {wheel.name}" for n in c.notes), c.notes


# ----------------------------------------------------------------------------- end to end

@pytest.fixture
def trained_venv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A venv like a training one: six from the configured index, tinypkg 1.0+cpu (a local
    version label) from a find-links directory added to the user's pip configuration."""
    links = tmp_path / "links"
    build_wheel(links, "tinypkg", "1.0+cpu")
    monkeypatch.setenv("PIP_FIND_LINKS", " ".join(
        [*os.environ.get("PIP_FIND_LINKS", "").split(), str(links)]))
    python = make_venv(tmp_path / "train")
    try:
        pip_into(python, "six==1.17.0", "tinypkg==1.0+cpu")
    except subprocess.CalledProcessError as e:
        pytest.skip(f"six 1.17.0 is not available from the configured index: {e.stderr[-200:]}")
    yield python


@posix_only
def test_lock_mode_pins_exact_wheels(trained_venv: Path, tmp_path: Path) -> None:
    c = capture_environment(trained_venv, workdir=tmp_path / "w")
    data = lock_of(c)
    check_pep751(data)
    check_section(c.section)
    doc = tomllib.loads(data.decode())
    assert doc["lock-version"] == "1.0" and doc["created-by"] == "mlpack"
    lock = parse_lock(data)
    assert render_lock(lock) == data
    by = {p.name: p for p in lock.packages}
    assert by["tinypkg"].version == "1.0+cpu"  # the local label stays
    (wheel,) = by["tinypkg"].wheels
    built = tmp_path / "links" / "tinypkg-1.0+cpu-py3-none-any.whl"
    assert wheel.url is not None and wheel.url.startswith("file://")
    assert wheel.filename == built.name
    assert wheel.hashes == {"sha256": hashlib.sha256(built.read_bytes()).hexdigest()}
    assert by["six"].version == "1.17.0" and by["six"].wheels[0].filename.endswith(".whl")
    assert compare(lock, installed(trained_venv)) == []
    assert any("locked to files on this machine" in n and "tinypkg" in n for n in c.notes)
    assert c.section["packages"] == 2 and "local" not in c.section


def test_second_capture_reuses_what_pip_found(trained_venv: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    first = lock_of(capture_environment(trained_venv, workdir=tmp_path / "w1"))
    # pip can no longer find anything: a second capture must not need it
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "empty"))
    assert lock_of(capture_environment(trained_venv, workdir=tmp_path / "w2")) == first
    monkeypatch.setenv("MLPACK_NO_CACHE", "1")  # and without the cache, pip is asked again
    with pytest.raises(IOFailure) as e:
        capture_environment(trained_venv, workdir=tmp_path / "w3")
    assert e.value.code == "E_CAPTURE"


@posix_only
def test_wheelhouse_rebuilds_a_fresh_venv_offline(trained_venv: Path, tmp_path: Path,
                                                  new_pip: Path) -> None:
    """The lock and wheels, moved elsewhere, install into a fresh venv with no index at all."""
    c = capture_environment(trained_venv, mode="wheelhouse", workdir=tmp_path / "w")
    check_section(c.section)
    assert c.section["wheelhouse"] == env.WHEELHOUSE
    names = sorted(f.name for f in c.files)
    check_names(names)  # portable pack member names (a local label's "+" included)
    assert names == [env.LOCK_MEMBER, f"{env.WHEELHOUSE}/six-1.17.0-py2.py3-none-any.whl",
                     f"{env.WHEELHOUSE}/tinypkg-1.0+cpu-py3-none-any.whl"]
    lock = parse_lock(lock_of(c))
    check_pep751(lock_of(c))
    for p in lock.packages:
        (w,) = p.wheels
        assert w.path == f"wheelhouse/{w.filename}" and w.size and w.url
    unpacked = unpack(c, tmp_path / "elsewhere")
    shutil.rmtree(tmp_path / "w")
    shutil.rmtree(tmp_path / "links")  # the original find-links wheel is gone too
    for f in (unpacked / "wheelhouse").iterdir():
        assert hashlib.sha256(f.read_bytes()).hexdigest() == next(
            p.wheels[0].hashes["sha256"] for p in lock.packages if p.wheels[0].filename == f.name)
    fresh = make_venv(tmp_path / "fresh")
    no_net = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    no_net.update(PIP_CONFIG_FILE=os.devnull, PIP_NO_INDEX="1", HTTP_PROXY="http://127.0.0.1:9",
                  HTTPS_PROXY="http://127.0.0.1:9", NO_PROXY="", PIP_DISABLE_PIP_VERSION_CHECK="1")
    proc = subprocess.run([str(fresh), str(new_pip), "install", "--no-index", "-r",
                           str(unpacked / "pylock.toml")], check=False, env=no_net,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert installed(fresh) == {"six": "1.17.0", "tinypkg": "1.0+cpu"}
    assert compare(lock, installed(fresh)) == []


# ----------------------------------------------------------------------------- conda-pack

@pytest.fixture
def conda_env(tmp_path: Path) -> Path:
    """A hand-built conda prefix (tests/data/environment/conda/README.md); returns its python."""
    prefix = tmp_path / "condaenv"
    python = make_venv(prefix)
    pkgs = tmp_path / "pkgs"
    shutil.copytree(FIX / "conda" / "pkgs", pkgs)
    meta = prefix / "conda-meta"
    meta.mkdir()
    record = (FIX / "conda" / "hello-1.0-0.json").read_text().replace("@PKGS@", str(pkgs))
    (meta / "hello-1.0-0.json").write_text(record)
    shutil.copy(FIX / "conda" / "history", meta / "history")
    for rel in json.loads(record)["files"]:
        src, dst = pkgs / "hello-1.0-0" / rel, prefix / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text(src.read_text().replace("/opt/anaconda1anaconda2anaconda3", str(prefix)))
        dst.chmod(src.stat().st_mode)
    version = platform.python_version()
    (meta / f"python-{version}-0.json").write_text(json.dumps({
        "name": "python", "version": version, "build": "h0_cpython", "build_number": 0,
        "channel": "https://conda.anaconda.org/t/tk-SECRET/private/linux-64",
        "url": f"https://conda.anaconda.org/t/tk-SECRET/private/linux-64/python-{version}-h0.conda",
        "md5": "fedcba9876543210fedcba9876543210",
        "files": ["bin/python"], "link": {"source": str(tmp_path / "no-cache"), "type": 1}}))
    site = site_packages(python)
    fake_dist(site, "condalib", "3.0", installer="conda")  # installed by conda: not pip-locked
    fake_dist(site, "piplib", "1.0", {"url": "file:///src/piplib", "dir_info": {}})
    return python


@posix_only
def test_conda_pack_archive_and_packages(conda_env: Path, tmp_path: Path) -> None:
    pytest.importorskip("conda_pack")
    c = capture_environment(conda_env, mode="conda-pack", workdir=tmp_path / "w")
    check_section(c.section)
    conda = c.section["conda"]
    assert conda["archive"] == env.CONDA_ARCHIVE and conda["explicit"] == env.CONDA_EXPLICIT
    assert {(p["name"], p["version"], p["build"]) for p in conda["packages"]} == {
        ("hello", "1.0", "0"), ("python", platform.python_version(), "h0_cpython")}
    assert all(p["channel"].startswith("https://conda.anaconda.org/") for p in conda["packages"])
    # pip-installed distributions are locked; conda-installed ones are in the conda list
    assert [p.name for p in parse_lock(lock_of(c)).packages] == ["piplib"]
    assert any(n.startswith("conda-pack: 1 conda packages have no package-cache entry")
               and n.endswith(": python") for n in c.notes)
    explicit = next(f.data for f in c.files if f.name == env.CONDA_EXPLICIT)
    assert explicit is not None and b"@EXPLICIT\n" in explicit
    assert b"hello-1.0-0.tar.bz2#0123456789abcdef0123456789abcdef" in explicit
    assert b"/t/<TOKEN>/private/linux-64/python-" in explicit  # anaconda.org tokens masked
    assert b"tk-SECRET" not in explicit and "tk-SECRET" not in json.dumps(c.section)
    archive = next(f.path for f in c.files if f.name == env.CONDA_ARCHIVE)
    assert archive is not None
    target = tmp_path / "moved"
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
        assert {"bin/hello", "share/hello/data.txt", "conda-meta/hello-1.0-0.json",
                "bin/conda-unpack"} <= names
        tar.extractall(target, filter="tar")
    subprocess.run([str(target / "bin" / "python"), str(target / "bin" / "conda-unpack")],
                   check=True, capture_output=True)
    assert (target / "share/hello/data.txt").read_text() == f"data lives in {target}\n"


# ----------------------------------------------------------------------------- lock records

def test_reads_the_lock_pip_writes() -> None:
    data = (FIX / "pylock.pip.toml").read_bytes()  # pip 26.3 `pip lock six packaging`
    lock = parse_lock(data)
    assert lock.created_by == "pip" and [p.name for p in lock.packages] == ["packaging", "six"]
    six = lock.packages[1]
    assert six.kind == "wheels" and six.wheels[0].filename == "six-1.17.0-py2.py3-none-any.whl"
    assert parse_lock(render_lock(lock)) == lock
    check_pep751(render_lock(lock))


@pytest.mark.parametrize("text", [
    'quote " backslash \\ tab \t newline \n', "del \x7f nul \x00", "unicode é ☃ 𝄞", ""])
def test_render_round_trips_any_string(text: str) -> None:
    lock = Lock(packages=(LockedPackage(name="x", version="1", wheels=(LockedFile(
        name="x-1-py3-none-any.whl", url="https://h/x-1-py3-none-any.whl?" + text,
        hashes={"sha256": "0" * 64}),)), LockedPackage(name="y", installed_version=text,
        directory=env.LockedDirectory(path=text or "/", editable=True))))
    assert parse_lock(render_lock(lock)) == lock


HEAD = b'lock-version = "1.0"\ncreated-by = "x"\n'
SIX = HEAD + b'[[packages]]\nname = "six"\n'


@pytest.mark.parametrize(("text", "where"), [
    (b"lock-version = ", "not valid TOML"),
    (b'lock-version = "2.0"\ncreated-by = "x"\npackages = []\n', "lock-version"),
    (b'lock-version = "1.0"\npackages = []\n', "created-by is required"),
    (HEAD, "packages must be"),
    (HEAD + b'[[packages]]\nname = "Six_X"\n', "normalized"),
    (SIX, "packages[0] must"),
    (SIX + b'wheels = [{ name = "six-1-py3-none-any.whl" , hashes = { sha256 = "0" } }]\n',
     "packages[0].wheels[0] needs a url or a path"),
    (SIX + b'wheels = [{ url = "https://h/six-1-py3-none-any.whl", hashes = {} }]\n',
     "packages[0].wheels[0].hashes needs at least one hash"),
    (SIX + b'directory = { path = "/s", editable = "yes" }\n', "packages[0].directory.editable"),
    (SIX + b'vcs = { type = "git", url = "https://h/r" }\n', "packages[0].vcs.commit-id is"),
])
def test_bad_locks_are_e_manifest(text: bytes, where: str) -> None:
    with pytest.raises(VerificationError) as e:
        parse_lock(text)
    assert e.value.code == "E_MANIFEST" and where in e.value.message
    assert e.value.member == env.LOCK_MEMBER


def test_compare_reports_added_removed_changed() -> None:
    lock = Lock(packages=(
        LockedPackage(name="numpy", version="2.4.6", wheels=(LockedFile(
            name="numpy-2.4.6-cp311-cp311-manylinux_2_28_x86_64.whl", url="https://h/n.whl",
            hashes={"sha256": "1" * 64}),)),
        LockedPackage(name="torch", version="2.13.0+cpu", wheels=(LockedFile(
            name="torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl", url="file:///t.whl",
            hashes={"sha256": "2" * 64}),)),
        LockedPackage(name="proj", installed_version="0.1",
                      directory=env.LockedDirectory(path="/p", editable=True))))
    got = compare(lock, {"Torch": "2.13.0", "proj": "0.1", "Six": "1.17.0"})
    assert [(d.name, d.change, d.locked, d.installed) for d in got] == [
        ("numpy", "removed", "2.4.6", None), ("six", "added", None, "1.17.0"),
        ("torch", "changed", "2.13.0+cpu", "2.13.0")]


def test_section_records_name_the_bad_key() -> None:
    good = {"mode": "lock", "python": {"version": "3.11.7", "implementation": "CPython",
                                       "tag": "cp311-cp311-manylinux_2_36_x86_64"},
            "platform": {"sys_platform": "linux", "machine": "x86_64"}, "packages": 1}
    assert EnvironmentSection.from_dict(good).to_dict() == good
    for bad, where in (({**good, "packages": True}, "packages"),
                       ({**good, "python": {"version": "3"}}, "python.implementation"),
                       ({**good, "local": [{"name": "x"}]}, "local[0].version")):
        with pytest.raises(VerificationError) as e:
            EnvironmentSection.from_dict(bad)
        assert e.value.code == "E_MANIFEST" and where in e.value.message


# ----------------------------------------------------------------------------- the project venv

@pytest.mark.slow
def test_lock_the_project_venv(tmp_path: Path) -> None:
    """~110 distributions through the user's pip config (PyPI, a file:// index, find-links)."""
    start = time.perf_counter()
    c = capture_environment(workdir=tmp_path)
    elapsed = time.perf_counter() - start
    data = lock_of(c)
    check_pep751(data)
    check_section(c.section)
    lock = parse_lock(data)
    assert compare(lock, installed()) == []
    by = {p.name: p for p in lock.packages}
    if "torch" in by:
        torch = by["torch"]
        assert torch.version == metadata.version("torch")
        wheel = Path("/opt/wheels") / torch.wheels[0].filename
        if "+" in (torch.version or "") and wheel.is_file():
            assert torch.wheels[0].hashes["sha256"] == hashlib.sha256(
                wheel.read_bytes()).hexdigest()
    print(f"\nlocked {len(lock.packages)} distributions in {elapsed:.1f} s")


# ----------------------------------------------------------------------------- spec and schema

PYTHON = {"version": "3.11.7", "implementation": "CPython", "tag": "cp311-cp311-linux_x86_64"}
BASE = {"mode": "lock", "python": PYTHON,
        "platform": {"sys_platform": "linux", "machine": "x86_64"}}


@pytest.mark.parametrize("bad", [
    BASE,  # no lock
    {**BASE, "mode": "none", "lock": env.LOCK_MEMBER},
    {**BASE, "mode": "wheelhouse", "lock": env.REQUIREMENTS_MEMBER, "packages": 3,
     "wheelhouse": env.WHEELHOUSE},
    {**BASE, "lock": env.LOCK_MEMBER, "packages": 1, "wheelhouse": env.WHEELHOUSE},
    {**BASE, "lock": env.LOCK_MEMBER, "packages": 1,
     "local": [{"name": "x", "version": "1", "kind": "vcs", "url": "https://h/x.git"}]},
    {**BASE, "lock": env.LOCK_MEMBER, "packages": 1, "variables": {"HOME": 1}},
    {**BASE, "python": {**PYTHON, "tag": "cp311"}, "lock": env.LOCK_MEMBER,
     "packages": 1},
    {**BASE, "mode": "conda-pack", "lock": env.LOCK_MEMBER, "packages": 0},
])
def test_schema_rejects(bad: dict[str, object]) -> None:
    assert list(VALIDATOR.iter_errors(bad))


def test_spec_lock_example_is_what_mlpack_writes() -> None:
    text = (REPO / "spec" / "environment.md").read_text()
    example = text.split("```toml\n", 1)[1].split("```", 1)[0].encode()
    lock = parse_lock(example)
    assert render_lock(lock) == example
    check_pep751(example)
    assert [p.kind for p in lock.packages] == ["directory", "wheels", "vcs", "wheels"]

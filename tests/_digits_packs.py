"""Real packs built from examples/digits, varied one axis at a time (shared by the diff, card,
lineage and Croissant tests; each pack is built once per test session, on first use).

The recipe locks a small interpreter of its own (``[environment] python`` points at a venv
holding one package, ``mlpackprobe``, installed from wheels built here): the environment capture
is real (pip resolves the exact wheel and its sha256 from a local find-links directory, offline)
and cheap, and the "one package version changed" pack only re-points that path at a second venv
holding the next version. Everything else is the example as it ships: prepare_data.py,
train.py (mlpack.run), mlpack build.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mlpack import keys

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "digits"
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.org", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
PROBE = "mlpackprobe"


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env={**os.environ, **GIT_ENV}).stdout.strip()


def python(cwd: Path, *args: str) -> None:
    done = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def sha256_file(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def write_wheel(directory: Path, name: str, version: str) -> Path:
    """A real pure-Python wheel (PEP 427): a module, METADATA, WHEEL and RECORD."""
    info = f"{name}-{version}.dist-info"
    files = {f"{name}/__init__.py": f'__version__ = "{version}"\n'.encode(),
             f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
             f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: mlpack-tests\nRoot-Is-Purelib: true\n"
                              b"Tag: py3-none-any\n"}
    record = "".join(f"{p},sha256={base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b'=').decode()},"
                     f"{len(d)}\n" for p, d in files.items()) + f"{info}/RECORD,,\n"
    files[f"{info}/RECORD"] = record.encode()
    out = directory / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(out, "w") as z:
        for path, data in files.items():
            z.writestr(zipfile.ZipInfo(path, (2020, 1, 1, 0, 0, 0)), data)
    return out


@contextmanager
def environ(**values: str) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@dataclass
class DigitsPacks:
    """The packs (built lazily) and the trees they were built from."""

    root: Path
    signing: keys.SigningKey
    public: keys.PublicKey
    public_path: Path
    built: dict[str, Path] = field(default_factory=dict)
    trees: dict[str, Path] = field(default_factory=dict)

    @property
    def trust(self) -> tuple[keys.PublicKey, ...]:
        return (self.public,)

    # -- plumbing ------------------------------------------------------------------------

    def _env(self) -> Iterator[None]:
        return environ(MLPACK_CACHE_DIR=str(self.root / "cache"), PIP_NO_INDEX="1",
                       PIP_FIND_LINKS=str(self.root / "wheels"))

    def _point_env(self, venv: str) -> None:
        link = self.root / "env"
        if link.is_symlink():
            link.unlink()
        link.symlink_to(self.root / venv, target_is_directory=True)

    def _build(self, name: str, tree: Path, **kwargs: object) -> Path:
        from mlpack.build import build_project

        out = self.root / "packs" / f"{name}.mlpack"
        with self._env():
            build_project(tree, out, key=self.signing, **kwargs)  # type: ignore[arg-type]
        self.built[name] = out
        self.trees[name] = tree
        return out

    def _copy(self, name: str, source: str = "base") -> Path:
        self.pack("base")
        tree = self.root / "trees" / name
        shutil.copytree(self.trees[source], tree, symlinks=True)
        return tree

    def _setup(self) -> Path:
        (self.root / "wheels").mkdir()
        for version in ("1.0.0", "1.1.0"):
            write_wheel(self.root / "wheels", PROBE, version)
        for venv, version in (("venv-a", "1.0.0"), ("venv-b", "1.1.0")):
            subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(self.root / venv)], check=True)
            with self._env():
                done = subprocess.run([sys.executable, "-m", "pip", "--python", str(self.root / venv / "bin/python"),
                                       "install", "--quiet", f"{PROBE}=={version}"], capture_output=True, text=True,
                                      check=False)
            assert done.returncode == 0, done.stderr
        self._point_env("venv-a")
        tree = self.root / "trees" / "base"
        shutil.copytree(EXAMPLE, tree, ignore=shutil.ignore_patterns("data", ".mlpack", "*.safetensors",
                                                                     "__pycache__", "*.mlpack"))
        recipe = tree / "mlpack.toml"
        recipe.write_text(recipe.read_text().replace(
            'mode = "lock"', f'mode = "lock"\npython = "{self.root / "env" / "bin" / "python"}"'))
        git(tree, "init", "-q", "-b", "main")
        git(tree, "add", "-A")
        git(tree, "commit", "-qm", "digits")
        python(tree, "prepare_data.py")
        python(tree, "train.py")
        return tree

    # -- the packs -------------------------------------------------------------------------

    def pack(self, name: str) -> Path:
        """``base``, ``base-again``, ``data``, ``env``, ``hyper``, ``retrained``, ``code``,
        ``multi`` (a three-file test set), ``child1`` and ``child2`` (a lineage)."""
        if name in self.built:
            return self.built[name]
        if name == "base":
            return self._build("base", self._setup())
        if name == "base-again":
            self.pack("base")
            return self._build(name, self.trees["base"])
        if name == "data":  # one row of the test split changed
            tree = self._copy(name)
            import pyarrow as pa
            import pyarrow.parquet as pq

            path = tree / "data" / "test" / "digits.parquet"
            table = pq.read_table(path)
            labels = table.column("label").to_pylist()
            labels[0] = (labels[0] + 1) % 10
            table = table.set_column(table.schema.get_field_index("label"), "label", pa.array(labels, pa.int8()))
            pq.write_table(table, path, compression="zstd", write_statistics=False)
            return self._build(name, tree)
        if name == "env":  # the same project locked against the venv holding the next version
            self.pack("base")
            self._point_env("venv-b")
            try:
                return self._build(name, self.trees["base"])
            finally:
                self._point_env("venv-a")
        if name == "hyper":
            tree = self._copy(name)
            python(tree, "train.py", "--C", "0.5")
            return self._build(name, tree)
        if name == "retrained":  # the same command again
            tree = self._copy(name)
            python(tree, "train.py")
            return self._build(name, tree)
        if name == "code":  # a documentation edit after training, built with --allow-stale
            tree = self._copy(name)
            readme = tree / "README.md"
            readme.write_text(readme.read_text() + "\nTuned on a Tuesday.\n")
            return self._build(name, tree, allow_stale=True)
        if name == "multi":  # the test split as two Parquet files and a note
            tree = self._copy(name)
            import pyarrow.parquet as pq

            test = tree / "data" / "test"
            table = pq.read_table(test / "digits.parquet")
            (test / "digits.parquet").unlink()
            (test / "part").mkdir()
            pq.write_table(table.slice(0, 200), test / "part" / "a.parquet", write_statistics=False)
            pq.write_table(table.slice(200), test / "part" / "b.parquet", write_statistics=False)
            (test / "NOTES.txt").write_text("the digits test split, in two parts\n")
            return self._build(name, tree)
        if name in ("child1", "child2"):  # trained from the previous pack (recipe [model] parent)
            parent, c = ("base", "0.5") if name == "child1" else ("child1", "0.25")
            self.pack(parent)
            tree = self._copy(name, parent)
            recipe = tree / "mlpack.toml"
            text = recipe.read_text()
            lines = [ln for ln in text.splitlines() if not ln.startswith("parent = ")]
            text = "\n".join(lines) + "\n"
            recipe.write_text(text.replace("[model]\n", f'[model]\nparent = "{sha256_file(self.pack(parent))}"\n', 1))
            python(tree, "train.py", "--C", c)
            return self._build(name, tree)
        raise KeyError(name)


_SESSION: dict[str, DigitsPacks] = {}


def digits_packs(factory: pytest.TempPathFactory) -> DigitsPacks:
    """The session's packs (one build per pack per pytest session)."""
    pytest.importorskip("sklearn")
    if importlib.util.find_spec("pip") is None:
        pytest.skip("pip is needed to install the probe package into the packs' test environments")
    base = str(factory.getbasetemp())
    if base not in _SESSION:
        root = factory.mktemp("digits-packs")
        (root / "packs").mkdir()
        private, public, _ = keys.generate(root / "author")
        _SESSION[base] = DigitsPacks(root=root, signing=keys.load_signing_key(private),
                                     public=keys.load_public_key(public), public_path=public)
    return _SESSION[base]

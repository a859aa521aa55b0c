"""``mlpack init``: draft a commented ``mlpack.toml`` from what a project holds (spec/recipe.md).

It looks for git (the author), a LICENSE file or pyproject's license, the README's first
paragraph, weights files, data directories and their splits, train/evaluate scripts and a
virtual environment; everything it could not find stays a commented example.

    path = write_init("my-project")
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._atomic import atomic_write_bytes
from .errors import IOFailure, UsageError, VerificationError
from .names import check_name
from .recipe import RECIPE_NAME, WEIGHTS_TODO
from .spdx import license_problem

__all__ = ["init_recipe", "write_init"]

_SKIP_DIRS = frozenset((".git", ".hg", ".svn", ".venv", ".mlpack", "node_modules", "site-packages",
                        "__pycache__", ".tox", ".nox", ".mypy_cache", ".pytest_cache",
                        ".ruff_cache", ".ipynb_checkpoints"))
_DATA_DIRS = ("data", "dataset", "datasets")
_SPLITS = ("train", "training", "val", "valid", "validation", "dev", "test", "testing", "eval",
           "holdout")
_LICENSE_FILES = ("LICENSE", "LICENSE.txt", "LICENSE.md", "LICENCE", "LICENCE.txt", "COPYING",
                  "COPYING.txt", "COPYING.md")
_README_FILES = ("README.md", "README.rst", "README.txt", "README")


def _toml_str(s: str) -> str:
    out = []
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml_list(items: Sequence[str]) -> str:
    return "[" + ", ".join(_toml_str(i) for i in items) + "]"


def _is_venv(path: Path) -> bool:
    return (path / "pyvenv.cfg").is_file()


def _find_weights(root: Path) -> list[str]:
    found: list[str] = []
    stack = [root]
    while stack:
        directory = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for e in entries:
            try:
                if e.is_dir(follow_symlinks=False):
                    if e.name not in _SKIP_DIRS and not _is_venv(Path(e.path)):
                        stack.append(Path(e.path))
                elif e.name.endswith((".safetensors", ".onnx")) and e.is_file(follow_symlinks=False):
                    rel = Path(e.path).relative_to(root).as_posix()
                    check_name(rel)
                    found.append(rel)
            except (OSError, VerificationError):
                continue
    return sorted(found)


def _git_author(root: Path) -> str | None:
    def get(key: str) -> str:
        try:
            r = subprocess.run(["git", "config", "--get", key], cwd=root, capture_output=True,
                               text=True, timeout=10, check=False)
        except (OSError, subprocess.SubprocessError):
            return ""
        return r.stdout.strip() if r.returncode == 0 else ""

    name, email = get("user.name"), get("user.email")
    if name and email:
        return f"{name} <{email}>"
    return name or (f"<{email}>" if email else None)


def _license_from_text(text: str) -> str | None:
    head = " ".join(text.split()[:400])
    low = head.lower()
    if "permission is hereby granted, free of charge" in low or low.startswith("mit license"):
        return "MIT"
    if "apache license" in low and "version 2.0" in low:
        return "Apache-2.0"
    if "gnu general public license" in low and "version 3" in low and "lesser" not in low:
        return "GPL-3.0-or-later"
    if "redistribution and use in source and binary forms" in low:
        return "BSD-3-Clause" if "neither the name" in low or "may be used to endorse" in low \
            else "BSD-2-Clause"
    return None


def _read_head(path: Path, limit: int = 16384) -> str:
    try:
        with path.open("rb") as f:
            return f.read(limit).decode("utf-8", "replace")
    except OSError:
        return ""


def _pyproject(root: Path) -> dict[str, Any]:
    try:
        project = tomllib.loads(_read_head(root / "pyproject.toml", 1 << 20)).get("project", {})
    except tomllib.TOMLDecodeError:
        return {}
    return project if isinstance(project, dict) else {}


def _readme_paragraph(root: Path) -> str | None:
    for name in _README_FILES:
        text = _read_head(root / name)
        if not text:
            continue
        para: list[str] = []
        for line in text.splitlines():
            s = line.strip()
            if not s:
                if para:
                    break
                continue
            if s.startswith(("#", "[![", "![", "<", "..", ":")) or set(s) <= set("=-~^*#`"):
                if para:
                    break
                continue
            para.append(s)
        joined = " ".join(para)
        return joined if 0 < len(joined) <= 200 else None
    return None


def _detect_datasets(root: Path) -> list[tuple[str, str]]:
    """(name, project-relative uri) for data/, dataset(s)/ and their split subdirectories."""
    found: list[tuple[str, str]] = []
    for top in _DATA_DIRS:
        d = root / top
        if not d.is_dir():
            continue
        try:
            subs = sorted(e.name for e in os.scandir(d) if e.is_dir() and e.name.lower() in _SPLITS)
        except OSError:
            subs = []
        for sub in subs or [""]:
            uri = f"{top}/{sub}" if sub else top
            name = re.sub(r"[^A-Za-z0-9._-]+", "-", sub or top).strip("-._") or top
            if any(n == name for n, _ in found):
                name = f"{top}-{name}"
            found.append((name[:128], uri))
    return found


def _sanitize(name: str) -> str:
    clean = re.sub(r"[^\w.-]+", "-", name).strip("-._")[:200]
    return clean or "model"


def _pick(names: Sequence[str], prefer: Sequence[str]) -> str | None:
    for p in prefer:
        if p in names:
            return p
    return names[0] if names else None


def init_recipe(root: Path | str) -> str:
    """The text of a commented mlpack.toml drafted from what ``root`` holds.

    It parses with :func:`load_recipe`, except when no weights file was found: then
    ``model.weights`` holds :data:`WEIGHTS_TODO`, which ``load_recipe`` refuses until the
    user lists the weights.
    """
    root = Path(root).resolve()
    if not root.is_dir():
        raise UsageError(f"{root} is not a directory", code="E_INPUT", hint="check the path")
    project = _pyproject(root)
    q = _toml_str
    lines = ["# mlpack.toml: what `mlpack build` captures into a pack (spec/recipe.md).",
             "# Drafted by `mlpack init` from what it found here: check every value.",
             "# Commented lines are examples; remove the # to use one.", "", "[model]",
             f"name = {q(_sanitize(root.name))}   # 1-200 characters"]
    version = project.get("version")
    lines.append(f"version = {q(version)}" if isinstance(version, str) and version
                 else '# version = "0.1.0"   # free-form; Semantic Versioning recommended')
    license = project.get("license")
    license = license.get("text") if isinstance(license, dict) else license
    if not (isinstance(license, str) and license and license_problem(license) is None):
        license = next((lic for n in _LICENSE_FILES if (root / n).is_file()
                        for lic in [_license_from_text(_read_head(root / n, 8192))] if lic), None)
    lines.append(f"license = {q(license)}   # SPDX expression" if license
                 else '# license = "Apache-2.0"   # SPDX expression, or LicenseRef-NAME')
    author = _git_author(root)
    lines.append(f"authors = {_toml_list([author])}" if author
                 else '# authors = ["Ada Lovelace <ada@example.org>"]')
    description = project.get("description")
    if not (isinstance(description, str) and 0 < len(description) <= 200):
        description = _readme_paragraph(root)
    lines.append(f"description = {q(description)}" if description
                 else '# description = "What the model does, in one line"')
    weights = _find_weights(root)
    lines.append("# The trained weights files (project-relative; at least one; .safetensors or .onnx).")
    if weights:
        lines.append(f"weights = {_toml_list(weights)}")
    else:
        script = _read_head(root / "train.py", 1 << 16)
        named = sorted(set(re.findall(r"[\"']([^\"'\s]+\.(?:safetensors|onnx))[\"']", script)))
        lines.append(f"# No weights file was found; train.py names {_toml_list(named)}." if named else
                     "# No .safetensors or .onnx file was found: list yours, e.g. [\"model.safetensors\"].")
        lines.append(f"weights = {_toml_list([WEIGHTS_TODO])}")
    lines += ["# parent: the digest (sha256:<64 hex>) of the pack whose weights training started from",
              ""]

    datasets = _detect_datasets(root)
    venv = next((n for n in (".venv", "venv", "env") if _is_venv(root / n)), None)
    exclude = [f"{top}/**" for top in _DATA_DIRS if (root / top).is_dir()]
    exclude += [f"{venv}/**"] if venv else []
    lines += ["[code]",
              "# Which project files are packed as code: globs over project-relative paths.",
              '# include = ["**/*.py", "mlpack.toml", "requirements*.txt"]   # default: every file']
    lines.append(f"exclude = {_toml_list(exclude)}   # data is captured by [[datasets]]" if exclude
                 else '# exclude = ["notebooks/**"]   # applied after include')
    lines += ["allow-secrets = []   # paths that look like secrets (.env, keys) but must be packed",
              "", "[environment]",
              'mode = "lock"   # "lock" (pylock.toml) | "wheelhouse" | "conda-pack" | "none"']
    py = next((f"{venv}/{b}" for b in ("bin/python", "Scripts/python.exe")
               if venv and (root / venv / b).exists()), None)
    lines.append(f"python = {q(py)}   # the interpreter whose packages are locked" if py
                 else '# python = ".venv/bin/python"   # default: the one the training run used')
    lines.append("")

    lines.append("# Datasets: each name is [A-Za-z0-9][A-Za-z0-9._-]*, each uri a path or s3://bucket/prefix,")
    lines.append('# each mode "referenced" (manifest only, default) or "included" (files packed too).')
    for name, uri in datasets:
        lines += ["[[datasets]]", f"name = {q(name)}", f"uri = {q(uri)}", 'mode = "referenced"', ""]
    if not datasets:
        lines += ["# [[datasets]]", '# name = "digits-test"', '# uri = "data/test"',
                  '# mode = "referenced"',
                  '# (an s3://bucket/prefix uri may add endpoint = "http://127.0.0.1:9000")', ""]

    names = [n for n, _ in datasets]
    test = _pick(names, ("test", "testing", "eval", "holdout", "validation", "valid", "val", "dev"))
    w = "{weights}" if len(weights) <= 1 else shlex.quote(f"{{weights:{weights[0]}}}")
    lines += ["# Commands run from the project root, without a shell. Placeholders: {python} (the",
              "# environment's interpreter), {weights}, {weights:PATH}, {data:NAME}, {output} (an",
              "# empty directory for the command's results). Adjust the arguments to your scripts."]
    train = next((s for s in ("train.py",) if (root / s).is_file()), None)
    if train:
        lines += ["[entrypoints.train]", f'command = "{{python}} {train} --out {{output}}"']
    else:
        lines += ["# [entrypoints.train]", '# command = "{python} train.py --out {output}"']
    evaluate = next((s for s in ("evaluate.py", "eval.py") if (root / s).is_file()), None)
    data_arg = f" --data {{data:{test}}}" if test else ""
    cmd = f"{{python}} {evaluate or 'evaluate.py'} --weights {w}{data_arg} --out {{output}}"
    c = "" if evaluate else "# "
    lines += [f"{c}[entrypoints.evaluate]", f"{c}command = {q(cmd)}",
              f'{c}metrics = "metrics.json"   # written to {{output}}: {{"metric name": number}}', ""]

    lines += ["# Expected metrics (claimed until a verifier reproduces them).", "# [[metrics]]",
              '# name = "accuracy"']
    if test:
        lines.append(f"# dataset = {q(test)}")
    lines += ['# split = "test"', '# direction = "higher"   # or "lower": which way is better',
              "# value = 0.97           # default: the value the recorded training run logged",
              "# tolerance = { absolute = 0.005, relative = 0.01 }   # at least one", ""]
    return "\n".join(lines)


def write_init(root: Path | str, force: bool = False) -> Path:
    """Write :func:`init_recipe`'s text to ``root/mlpack.toml`` atomically.

    Raises:
        UsageError: ``E_EXISTS`` when the file exists and ``force`` is false; ``E_INPUT``
            when ``root`` is not a directory.
    """
    root = Path(root)
    target = root / RECIPE_NAME
    if target.exists() and not force:
        raise UsageError(f"{target} already exists", code="E_EXISTS",
                         hint="edit it, or pass --force to replace it")
    text = init_recipe(root)
    try:
        atomic_write_bytes(target, text.encode("utf-8"), replace=force)
    except OSError as err:
        raise IOFailure.from_os_error(err, f"cannot write {target}") from None
    return target

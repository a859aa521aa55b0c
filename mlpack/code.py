"""The ``code`` section of mlpack.json (spec/code.md): the project's files and its git state.

:func:`capture_code` selects the project's files (git's tracked plus untracked-not-ignored files,
or every file when there is no git), filters them by the recipe's ``[code]`` globs, refuses
obvious secrets, and records commit, branch, remote, dirty flag and the uncommitted diff.
:func:`fingerprint` is the section's ``digest`` alone, for the training API to record at the
start of a run.

    captured = capture_code(Path("."), exclude=["data/**"], skip=["model.safetensors"])
    captured.section["git"]["dirty"]            # True when tracked files changed or untracked exist
    [s.name for s in captured.files][:2]        # ['code/mlpack.toml', 'code/train.py']
    fingerprint(Path(".")) == captured.section["digest"]   # with the same selection
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
import subprocess
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._globs import GlobSet, translate_glob
from ._parallel import map_ranges
from ._secrets import SCAN_HEAD, key_material, looks_secret, secret_error
from .capture import Captured
from .errors import IOFailure, MlpackError, UsageError, VerificationError
from .names import check_names
from .pack import Source

__all__ = ["DIFF_MEMBER", "CodeSection", "GitInfo", "GlobSet", "capture_code", "fingerprint",
           "looks_secret", "strip_credentials", "translate_glob"]

DIFF_MEMBER = "code-uncommitted.diff"
PREFIX = "code/"
GIT_TIMEOUT = 60.0
CHUNK = 1 << 20
THREAD_MIN_FILES = 64  # fewer files are hashed on the calling thread
_OPEN_FLAGS = (os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
               | getattr(os, "O_CLOEXEC", 0))
_JUNK_DIRS = frozenset((".git", ".mlpack", "__pycache__", ".ipynb_checkpoints"))
_SHA = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_EXCLUDE_HINT = "exclude it in [code] exclude of mlpack.toml"


# ------------------------------------------------------------------------------------ git

def _git(root: str, *args: str, ok: tuple[int, ...] = (0,), env: Mapping[str, str] | None = None
         ) -> subprocess.CompletedProcess[bytes]:
    """Run git in ``root`` with a neutral output configuration; E_CAPTURE when it fails."""
    cmd = ["git", "--no-pager", "-c", "core.quotepath=off", "-c", "color.ui=false", *args]
    full = {**os.environ, "LC_ALL": "C", "GIT_OPTIONAL_LOCKS": "0", "GIT_PAGER": "cat",
            "PAGER": "cat", "GIT_TERMINAL_PROMPT": "0", **(env or {})}
    try:
        done = subprocess.run(cmd, cwd=root, env=full, stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=GIT_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise IOFailure(f"git {args[0]} did not finish in {GIT_TIMEOUT:.0f} s in {root}",
                        code="E_CAPTURE", hint="retry; on a very large repository, "
                        "narrow [code] include") from None
    if done.returncode not in ok:
        raise _git_failed(root, args[0], done)
    return done


def _git_failed(root: str, what: str, done: subprocess.CompletedProcess[bytes]) -> IOFailure:
    lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
    last = lines[-1] if lines else f"exit status {done.returncode}"
    return IOFailure(f"git {what} failed in {root}: {last}", code="E_CAPTURE",
                     hint="run `git status` there to see what is wrong")


def _z(out: bytes) -> list[str]:
    return [p for p in out.decode("utf-8", "surrogateescape").split("\0") if p]


def _probe(root: str) -> tuple[str | None, str | None]:
    """``(prefix of root in its repository, None)``, or ``(None, why there is no git)``."""
    try:
        done = _git(root, "rev-parse", "--show-prefix", ok=(0, 128))
    except FileNotFoundError:
        return None, "git is not installed"
    if done.returncode == 128:
        err = done.stderr.decode("utf-8", "replace")
        if "not a git repository" in err:
            return None, "the project is not in a git work tree"
        raise _git_failed(root, "rev-parse", done)
    return done.stdout.decode("utf-8", "surrogateescape").strip().rstrip("/"), None


def strip_credentials(url: str) -> str:
    """``url`` without credentials: the user info of URLs (ssh keeps the user name), and the
    query and fragment of http(s) URLs. scp-like ``user@host:path`` and paths stay as they are.
    """
    m = re.fullmatch(r"([A-Za-z][A-Za-z0-9+.-]*)://([^/?#]*)(.*)", url, re.DOTALL)
    if not m:
        return url
    scheme, authority, rest = m.groups()
    if "@" in authority:
        userinfo, host = authority.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        ssh = scheme.lower() in ("ssh", "git+ssh", "ssh+git")
        authority = f"{user}@{host}" if ssh and user else host
    if scheme.lower() in ("http", "https"):
        rest = re.split(r"[?#]", rest, maxsplit=1)[0]
    return f"{scheme}://{authority}{rest}"


def _config(root: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for entry in _git(root, "config", "-z", "--list").stdout.decode("utf-8", "replace").split("\0"):
        key, _, value = entry.partition("\n")
        if key:
            out[key] = value
    return out


# ------------------------------------------------------------------------------------ selection

@dataclass(slots=True)
class _Selection:
    root: str
    prefix: str | None  # the root's place in its repository; None without git
    names: list[str]  # sorted
    untracked: set[str]
    submodules: dict[str, str]  # path -> commit, gitlinks in scope (not captured)
    scope: _Scope
    notes: list[str]


def _skip_set(root: str, skip: Collection[str]) -> set[str]:
    real = os.path.realpath(root)
    out = set()
    for entry in skip:
        joined = os.path.normpath(os.path.join(real, os.fspath(entry)))
        head, tail = os.path.split(joined)  # the last component may be a link: keep it
        rel = os.path.relpath(os.path.join(os.path.realpath(head), tail), real)
        if rel != "." and not rel.startswith(".." + os.sep) and rel != "..":
            out.add(rel.replace(os.sep, "/"))
    return out


class _Scope:
    """Which root-relative paths the recipe selects; whole directories can be pruned."""

    __slots__ = ("_dirs", "_exc", "_inc", "_skip")

    def __init__(self, include: Sequence[str], exclude: Sequence[str], skip: set[str]) -> None:
        self._inc, self._exc = GlobSet(include, "include"), GlobSet(exclude, "exclude")
        self._skip = skip
        self._dirs: dict[str, bool] = {"": False}

    def pruned(self, directory: str) -> bool:
        """True when no file below ``directory`` can be selected."""
        hit = self._dirs.get(directory)
        if hit is None:
            head, _, base = directory.rpartition("/")
            hit = (self.pruned(head) or base == ".mlpack" or directory in self._skip
                   or self._exc.matches_dir(directory))
            self._dirs[directory] = hit
        return hit

    def __call__(self, path: str) -> bool:
        if path in self._skip or path.endswith(".mlpack") or self.pruned(path.rpartition("/")[0]):
            return False
        return (not self._inc or self._inc.matches(path)) and not self._exc.matches(path)


def _junk(path: str, venvs: Collection[str]) -> bool:
    parts = path.split("/")
    if path.endswith(".pyc") or any(p in _JUNK_DIRS for p in parts[:-1]) or parts[-1] == ".git":
        return True
    return any("/".join(parts[:i]) in venvs for i in range(1, len(parts)))


def _walk(root: str, scope: _Scope) -> list[str]:
    pruned = scope.pruned
    names: list[str] = []
    stack = [""]
    while stack:
        rel = stack.pop()
        try:
            with os.scandir(os.path.join(root, rel) if rel else root) as it:
                entries = list(it)
        except OSError as err:
            raise UsageError(f"cannot list {os.path.join(root, rel)}: {err.strerror}",
                             code="E_INPUT", hint=f"make it readable, or {_EXCLUDE_HINT}") from None
        if rel and any(e.name == "pyvenv.cfg" for e in entries):
            continue  # a virtual environment
        for e in entries:
            name = rel + e.name
            if e.is_dir(follow_symlinks=False):
                if e.name not in _JUNK_DIRS and not pruned(name):
                    stack.append(name + "/")
            elif e.name != ".git" and not e.name.endswith(".pyc"):
                names.append(name)  # files, links and special files: refused later if selected
    return names


def _select(root_path: str | os.PathLike[str], include: Sequence[str], exclude: Sequence[str],
            skip: Collection[str]) -> _Selection:
    root = os.path.abspath(root_path)
    if not os.path.isdir(root):
        what = "does not exist" if not os.path.exists(root) else "is not a directory"
        raise UsageError(f"the project root {root} {what}", code="E_INPUT",
                         hint="run mlpack in the project directory")
    scope = _Scope(include, exclude, _skip_set(root, skip))
    prefix, why = _probe(root)
    notes: list[str] = []
    untracked: set[str] = set()
    submodules: dict[str, str] = {}
    if prefix is None:
        notes.append(f"no git: {why}; captured every file under the project root (except .git/, "
                     ".mlpack/, __pycache__/, *.pyc, virtual environments, .ipynb_checkpoints/) "
                     "and recorded no commit, branch or diff")
        names = [n for n in _walk(root, scope) if scope(n)]
    else:
        deleted = set(_z(_git(root, "ls-files", "-z", "--deleted").stdout))
        names_set: set[str] = set()
        for rec in _z(_git(root, "ls-files", "-z", "--stage").stdout):
            info, _, path = rec.partition("\t")
            mode, sha = info.split(" ")[:2]
            if path in deleted or path in names_set or not scope(path):
                continue
            if mode == "160000":
                submodules[path] = sha
            elif mode == "120000":
                raise VerificationError(
                    f"{path!r} is tracked by git as a symbolic link; packs hold regular files only",
                    code="E_MEMBER_TYPE", member=PREFIX + path, hint=_EXCLUDE_HINT)
            else:
                names_set.add(path)
        others = _z(_git(root, "ls-files", "-z", "--others", "--exclude-standard").stdout)
        venvs = {p[:-11] for p in others if p.endswith("/pyvenv.cfg")}
        for path in others:
            if path.endswith("/"):
                if scope(path.rstrip("/")):
                    notes.append(f"{path} is a git repository inside the project; its files are "
                                 f"not captured (make it a submodule, or {_EXCLUDE_HINT})")
            elif not _junk(path, venvs) and scope(path):
                untracked.add(path)
        names = sorted(names_set | untracked)
        if submodules:
            notes.append(f"git submodules are recorded by commit, their files are not captured: "
                         f"{', '.join(sorted(submodules))}")
    names.sort()
    if not names:
        notes.append("no code file was selected: check [code] include and exclude in mlpack.toml")
    return _Selection(root, prefix, names, untracked, submodules, scope, notes)


# ------------------------------------------------------------------------------------ hashing

def _open_error(err: OSError, name: str, path: str) -> MlpackError:
    if err.errno == errno.ELOOP:
        return VerificationError(f"{name!r} is a symbolic link; packs hold regular files only",
                                 code="E_MEMBER_TYPE", member=PREFIX + name,
                                 hint=f"replace the link by a copy of the file, or {_EXCLUDE_HINT}")
    if err.errno == errno.ENOENT:
        return UsageError(f"cannot read {path}: it disappeared while the project was read",
                          code="E_INPUT", hint="build when nothing is writing to the project")
    return UsageError(f"cannot read {path}: {err.strerror}", code="E_INPUT",
                      hint=f"make it readable, or {_EXCLUDE_HINT}")


def _hash_range(context: tuple[str, Sequence[str], bool], indices: range) -> list[tuple[Any, ...]]:
    """``(sha256 digest, fstat, secret reason)`` of files ``indices``, each opened once."""
    root, names, scan = context
    out: list[tuple[Any, ...]] = []
    for i in indices:
        name = names[i]
        path = os.path.join(root, name)
        try:
            fd = os.open(path, _OPEN_FLAGS)
        except OSError as err:
            raise _open_error(err, name, path) from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise VerificationError(f"{name!r} is not a regular file (directory, device, FIFO "
                                        "or socket)", code="E_MEMBER_TYPE", member=PREFIX + name,
                                        hint=_EXCLUDE_HINT)
            h, head, total = hashlib.sha256(), b"", 0
            while total < st.st_size:
                chunk = os.read(fd, min(CHUNK, st.st_size - total))
                if not chunk:
                    break
                if not total:
                    head = chunk[:SCAN_HEAD]
                h.update(chunk)
                total += len(chunk)
        except OSError as err:
            raise IOFailure.from_os_error(err, f"cannot read {path}") from None
        finally:
            os.close(fd)
        if total != st.st_size:
            raise IOFailure(f"{path} changed while it was read",
                            hint="build when nothing is writing to the project")
        out.append((h.digest(), st, looks_secret(name, head, total) if scan else None))
    return out


def _hash(root: str, names: Sequence[str], scan: bool) -> list[tuple[Any, ...]]:
    if len(names) < THREAD_MIN_FILES:
        return _hash_range((root, names, scan), range(len(names)))
    step = max(16, len(names) // 64)
    ranges = [range(i, min(i + step, len(names))) for i in range(0, len(names), step)]
    return map_ranges(_hash_range, (root, names, scan), ranges, processes=False)


def _digest(names: Sequence[str], digests: Sequence[bytes]) -> str:
    h = hashlib.sha256()
    for name, d in zip(names, digests, strict=True):
        h.update(name.encode("utf-8", "surrogateescape"))
        h.update(b"\0")
        h.update(d)
    return "sha256:" + h.hexdigest()


def fingerprint(root: str | os.PathLike[str], include: Sequence[str] = (),
                exclude: Sequence[str] = (), *, skip: Collection[str] = ()) -> str:
    """The ``digest`` that :func:`capture_code` would record for the same selection.

    No secret check and no git facts: one listing and one read of each selected file.
    Raises the same errors as :func:`capture_code` for links, unreadable files and bad globs.
    """
    sel = _select(root, include, exclude, skip)
    return _digest(sel.names, [r[0] for r in _hash(sel.root, sel.names, False)])


# ------------------------------------------------------------------------------------ capture

def _git_facts(sel: _Selection, allowed: Collection[str], used: list[str]
               ) -> tuple[dict[str, Any], bytes | None]:
    root = sel.root
    head = _git(root, "rev-parse", "-q", "--verify", "HEAD^{commit}", ok=(0, 1))
    commit = head.stdout.decode().strip() if head.returncode == 0 else None
    ref = _git(root, "symbolic-ref", "-q", "--short", "HEAD", ok=(0, 1))
    branch = ref.stdout.decode("utf-8", "replace").strip() if ref.returncode == 0 else None
    cfg = _config(root)
    remote_name = cfg.get(f"branch.{branch}.remote") if branch else None
    url = cfg.get(f"remote.{remote_name}.url") if remote_name and remote_name != "." else None
    url = url if url is not None else cfg.get("remote.origin.url")
    describe = None
    diff = None
    if commit is None:
        dirty = bool(sel.names)
        sel.notes.append("the repository has no commit yet: no commit or diff recorded; the "
                         "captured files are the only record of the code")
    else:
        d = _git(root, "describe", "--tags", "--always", "--dirty", ok=(0, 128))
        describe = (d.stdout.decode("utf-8", "replace").strip() or None) if d.returncode == 0 \
            else None
        base = ("diff", "HEAD", "--no-ext-diff", "--no-renames", "--relative",
                "--ignore-submodules=all")
        changed = [p for p in _z(_git(root, *base, "--name-only", "-z").stdout) if sel.scope(p)]
        dirty = bool(changed) or bool(sel.untracked)
        present = set(sel.names)
        for path in changed:  # a deleted file's old content is in the diff
            reason = looks_secret(path, b"", 0) if path not in present else None
            if reason and path not in allowed:
                raise secret_error(path, reason, ", and its deletion would put its content "
                                    "in the uncommitted diff")
            if reason:
                used.append(path)
        if changed:
            parts = []
            for i in range(0, len(changed), 1000):
                parts.append(_git(root, "-c", "diff.noprefix=false", "-c",
                                  "diff.suppressBlankEmpty=false", *base, "--binary",
                                  "--full-index", "--no-textconv", "--no-color", "--src-prefix=a/",
                                  "--dst-prefix=b/", "--", *changed[i:i + 1000],
                                  env={"GIT_LITERAL_PATHSPECS": "1"}).stdout)
            diff = b"".join(parts) or None
            _check_diff(diff or b"", changed, allowed, used)
    facts: dict[str, Any] = {"commit": commit, "branch": branch,
                             "remote": strip_credentials(url) if url else None,
                             "describe": describe, "dirty": dirty,
                             "untracked": sorted(sel.untracked)}
    if diff:
        facts["diff"] = DIFF_MEMBER
    if sel.submodules:
        facts["submodules"] = [{"path": p, "commit": c} for p, c in sorted(sel.submodules.items())]
    return facts, diff


def _check_diff(diff: bytes, changed: Sequence[str], allowed: Collection[str], used: list[str]
                ) -> None:
    """Rules 9 and 10 over each file's part of the diff (removed lines count too)."""
    for part in re.split(rb"(?m)^(?=diff --git )", diff):
        reason = key_material(part)
        if reason is None:
            continue
        header = part.split(b"\n", 1)[0]
        name = next((p for p in changed if b" a/" + p.encode("utf-8", "surrogateescape")
                     + b" " in header + b" "), "")
        if not name:
            raise secret_error(DIFF_MEMBER, reason, "", DIFF_MEMBER)
        if name not in allowed:
            raise secret_error(name, reason, " in the uncommitted diff")
        used.append(name)


def capture_code(
    root: Path,
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    allow_secrets: Sequence[str] = (),
    skip: Collection[str] = (),
) -> Captured:
    """The ``code`` section and the ``code/`` members (plus the uncommitted diff) of a project.

    Args:
        root: the project root; with git, it may be any directory of a work tree.
        include: recipe globs selecting files (default: every file).
        exclude: recipe globs removing files after ``include``.
        allow_secrets: root-relative paths packed even though they look like secrets.
        skip: root-relative (or absolute) files and directories captured elsewhere in the pack
            (weights, included datasets) or the output pack itself.

    Raises:
        UsageError: ``E_SECRET``, ``E_INPUT`` (unreadable file or root), ``E_RECIPE`` (glob).
        VerificationError: ``E_MEMBER_TYPE`` (link or special file), name errors
            (``E_NAME``, ``E_PATH``, ``E_LIMIT``, ``E_NAME_COLLISION``).
        IOFailure: ``E_CAPTURE`` when git fails.
    """
    sel = _select(root, include, exclude, skip)
    names = sel.names
    try:
        check_names(PREFIX + n for n in names)
    except VerificationError as err:
        raise VerificationError(err.message, code=err.code, member=err.member,
                                hint=f"rename the file, or {_EXCLUDE_HINT}") from None
    rows = _hash(sel.root, names, True)
    allowed = {a.removeprefix("./") for a in allow_secrets}
    allowed_used = []
    for name, (_, _, reason) in zip(names, rows, strict=True):
        if reason is None:
            continue
        if name not in allowed:
            raise secret_error(name, reason)
        allowed_used.append(name)
    unused = sorted(allowed - set(names))
    if unused:
        sel.notes.append(f"[code] allow-secrets names files that are not captured: "
                         f"{', '.join(unused)}")
    files = tuple(Source(PREFIX + n, path=os.path.join(sel.root, n), stat=r[1])
                  for n, r in zip(names, rows, strict=True))
    section: dict[str, Any] = {
        "files": len(files), "size": sum(r[1].st_size for r in rows), "root": sel.prefix or "",
        "digest": _digest(names, [r[0] for r in rows])}
    if sel.prefix is not None:
        section["git"], diff = _git_facts(sel, allowed, allowed_used)
        if diff:
            files += (Source(DIFF_MEMBER, data=diff),)
    if include:
        section["include"] = list(include)
    if exclude:
        section["exclude"] = list(exclude)
    if allowed_used:
        section["allowed_secrets"] = sorted(set(allowed_used))
    return Captured(section=section, files=files, notes=tuple(sel.notes))


# ------------------------------------------------------------------------------------ records

def _err(path: str, why: str) -> VerificationError:
    return VerificationError(f"mlpack.json: code.{path} {why}", code="E_MANIFEST",
                             member="mlpack.json")


def _get(d: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str,
         *, required: bool = True, nullable: bool = False) -> Any:
    if key not in d:
        if required:
            raise _err(where + key, "is required")
        return None
    v = d[key]
    if v is None and nullable:
        return None
    if not isinstance(v, kind) or (isinstance(v, bool) and kind is int):
        raise _err(where + key, f"must be {'null or ' if nullable else ''}of type "
                   f"{getattr(kind, '__name__', 'string')}")
    return v


def _strings(d: Mapping[str, Any], key: str, where: str) -> tuple[str, ...] | None:
    v = _get(d, key, list, where, required=False)
    if v is not None and not all(isinstance(x, str) for x in v):
        raise _err(where + key, "must be an array of strings")
    return None if v is None else tuple(v)


@dataclass(frozen=True, kw_only=True, slots=True)
class GitInfo:
    """The ``code.git`` object: the repository state the files were captured from."""

    commit: str | None
    branch: str | None
    remote: str | None
    describe: str | None
    dirty: bool
    untracked: tuple[str, ...] = ()
    diff: str | None = None
    submodules: tuple[tuple[str, str], ...] = ()
    """``(path, commit)`` of each submodule in scope."""

    @classmethod
    def from_dict(cls, d: object, where: str = "git.") -> GitInfo:
        if not isinstance(d, dict):
            raise _err(where.rstrip("."), "must be an object")
        commit = _get(d, "commit", str, where, nullable=True)
        if commit is not None and not _SHA.fullmatch(commit):
            raise _err(where + "commit", "must be a 40 or 64 digit lowercase hex object name")
        diff = _get(d, "diff", str, where, required=False)
        if diff is not None and diff != DIFF_MEMBER:
            raise _err(where + "diff", f"must be {DIFF_MEMBER!r}")
        subs = _get(d, "submodules", list, where, required=False) or []
        pairs = []
        for i, s in enumerate(subs):
            if not isinstance(s, dict) or not isinstance(s.get("path"), str) or \
                    not isinstance(s.get("commit"), str):
                raise _err(f"{where}submodules[{i}]", "must be an object with path and commit")
            pairs.append((s["path"], s["commit"]))
        return cls(commit=commit, branch=_get(d, "branch", str, where, nullable=True),
                   remote=_get(d, "remote", str, where, nullable=True),
                   describe=_get(d, "describe", str, where, nullable=True),
                   dirty=_get(d, "dirty", bool, where),
                   untracked=_strings(d, "untracked", where) or (), diff=diff,
                   submodules=tuple(pairs))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"commit": self.commit, "branch": self.branch, "remote": self.remote,
                               "describe": self.describe, "dirty": self.dirty,
                               "untracked": list(self.untracked)}
        if self.diff is not None:
            out["diff"] = self.diff
        if self.submodules:
            out["submodules"] = [{"path": p, "commit": c} for p, c in self.submodules]
        return out


@dataclass(frozen=True, kw_only=True, slots=True)
class CodeSection:
    """The ``code`` section of mlpack.json (spec/code.md)."""

    files: int
    size: int
    root: str
    digest: str
    git: GitInfo | None = None
    include: tuple[str, ...] | None = None
    exclude: tuple[str, ...] | None = None
    allowed_secrets: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, d: object) -> CodeSection:
        if not isinstance(d, dict):
            raise _err("section", "must be an object")
        files, size = _get(d, "files", int, ""), _get(d, "size", int, "")
        if files < 0 or size < 0:
            raise _err("files" if files < 0 else "size", "must not be negative")
        digest = _get(d, "digest", str, "")
        if not _DIGEST.fullmatch(digest):
            raise _err("digest", "must be 'sha256:' and 64 lowercase hex digits")
        root = _get(d, "root", str, "")
        if root and (root.startswith("/") or root.endswith("/")
                     or any(p in ("", ".", "..") for p in root.split("/"))):
            raise _err("root", "must be '' or a relative path without '.' or '..' components")
        return cls(files=files, size=size, root=root, digest=digest,
                   git=GitInfo.from_dict(d["git"]) if "git" in d else None,
                   include=_strings(d, "include", ""), exclude=_strings(d, "exclude", ""),
                   allowed_secrets=_strings(d, "allowed_secrets", "") or ())

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"files": self.files, "size": self.size, "root": self.root,
                               "digest": self.digest}
        if self.git is not None:
            out["git"] = self.git.to_dict()
        if self.include is not None:
            out["include"] = list(self.include)
        if self.exclude is not None:
            out["exclude"] = list(self.exclude)
        if self.allowed_secrets:
            out["allowed_secrets"] = list(self.allowed_secrets)
        return out

"""mlpack.code: the code capture on real git repositories and plain directories."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import jsonschema
import pytest

from mlpack.capture import Captured
from mlpack.code import (
    DIFF_MEMBER,
    CodeSection,
    GlobSet,
    capture_code,
    fingerprint,
    looks_secret,
    strip_credentials,
    translate_glob,
)
from mlpack.errors import MlpackError
from mlpack.pack import Source

REPO = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((REPO / "spec" / "schema" / "code.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
# Key material is assembled at run time so that this file itself holds no PEM header.
PEM = "-----BEGIN " + "{}PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END {}PRIVATE KEY-----\n"
AWS_ID = "AKIA" + "Q3EGR7PDXJ4K2ZLM"
AWS_SECRET = ("tq9Rk2" + "Lx/8vWmZp4Yb+Hc7Nd1Fs6Gj3Ke5Ua0Io2Pe")[:40]  # 40 base64 characters


def pem(kind: str = "RSA ") -> str:
    return PEM.format(kind, kind)


@pytest.fixture(autouse=True)
def isolated_git(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_CEILING_DIRECTORIES"):
        monkeypatch.delenv(var, raising=False)
    env = {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "Ada",
           "GIT_AUTHOR_EMAIL": "ada@example.org", "GIT_COMMITTER_NAME": "Ada",
           "GIT_COMMITTER_EMAIL": "ada@example.org", "GIT_AUTHOR_DATE": "2024-01-01T00:00:00Z",
           "GIT_COMMITTER_DATE": "2024-01-01T00:00:00Z"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def write(root: Path, files: dict[str, str | bytes]) -> None:
    for rel, content in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content)


def make_repo(root: Path, files: dict[str, str | bytes] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    write(root, files if files is not None else {
        ".gitignore": "*.log\ndata/\n",
        "mlpack.toml": '[model]\nname = "m"\n',
        "train.py": "print('train')\n",
        "src/model.py": "W = 1\n",
        "assets/blob.bin": bytes(range(256)) * 4,
    })
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "first")
    return root


def path_of(s: Source) -> Path:
    assert s.path is not None
    return Path(s.path)


def names(c: Captured) -> list[str]:
    return [s.name for s in c.files]


def check_consistent(c: Captured, root: Path) -> None:
    """Schema-valid, round-trips, counts match the code/ members, digest == fingerprint."""
    assert not sorted(VALIDATOR.iter_errors(c.section), key=str)
    assert CodeSection.from_dict(c.section).to_dict() == c.section
    code = [s for s in c.files if s.name.startswith("code/")]
    assert [s.name for s in code] == sorted(s.name for s in code)
    assert c.section["files"] == len(code)
    assert c.section["size"] == sum(path_of(s).stat().st_size for s in code)
    for s in code:
        assert s.stat is not None and s.stat.st_size == path_of(s).stat().st_size
        assert path_of(s).resolve() == (root / s.name.removeprefix("code/")).resolve()
    h = hashlib.sha256()
    for s in code:
        h.update(s.name.removeprefix("code/").encode() + b"\0")
        h.update(hashlib.sha256(path_of(s).read_bytes()).digest())
    assert c.section["digest"] == "sha256:" + h.hexdigest()
    assert fingerprint(root, c.section.get("include", ()), c.section.get("exclude", ())) \
        == c.section["digest"]


def fails(code: str, *args: object, **kw: object) -> MlpackError:
    with pytest.raises(MlpackError) as info:
        capture_code(*args, **kw)  # type: ignore[arg-type]
    err = info.value
    assert err.code == code, err
    assert err.message and "\n" not in err.message and err.hint
    return err


def diff_of(c: Captured) -> bytes:
    found = [s.data for s in c.files if s.name == DIFF_MEMBER]
    assert len(found) == 1 and found[0]
    return found[0]


def checkout(repo: Path, commit: str, where: Path) -> Path:
    git(repo.parent, "clone", "-q", "--no-checkout", str(repo), str(where))
    git(where, "checkout", "-q", "--detach", commit)
    return where


# ----------------------------------------------------------------------------- git states

def test_clean_repository(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "p")
    (root / "run.log").write_text("ignored\n")
    c = capture_code(root)
    assert names(c) == ["code/.gitignore", "code/assets/blob.bin", "code/mlpack.toml",
                        "code/src/model.py", "code/train.py"]
    head = git(root, "rev-parse", "HEAD")
    assert c.section["root"] == ""
    assert c.section["git"] == {"commit": head, "branch": "main", "remote": None,
                                "describe": head[:7], "dirty": False, "untracked": []}
    assert c.notes == ()
    check_consistent(c, root)


def test_dirty_tracked_changes_are_a_diff_that_applies_to_the_commit(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "p")
    commit = git(root, "rev-parse", "HEAD")
    (root / "train.py").write_text("print('train, edited')\n")  # unstaged
    (root / "src" / "model.py").write_text("W = 2\n")
    git(root, "add", "src/model.py")  # staged
    (root / "src" / "new.py").write_text("NEW = True\n")
    git(root, "add", "src/new.py")  # a new file in the index
    (root / "assets" / "blob.bin").write_bytes(bytes(range(255, -1, -1)) * 4)  # binary change
    (root / "mlpack.toml").unlink()  # a deletion
    (root / "train.py").chmod(0o755)
    c = capture_code(root)
    assert c.section["git"]["dirty"] is True and c.section["git"]["diff"] == DIFF_MEMBER
    assert c.section["git"]["describe"].endswith("-dirty")
    assert "code/mlpack.toml" not in names(c) and "code/src/new.py" in names(c)
    assert c.section["git"]["untracked"] == []
    check_consistent(c, root)
    other = checkout(root, commit, tmp_path / "other")
    (tmp_path / "u.diff").write_bytes(diff_of(c))
    git(other, "apply", str(tmp_path / "u.diff"))
    for s in c.files:
        if s.name.startswith("code/"):
            rel = s.name.removeprefix("code/")
            assert (other / rel).read_bytes() == path_of(s).read_bytes(), rel
    assert not (other / "mlpack.toml").exists()
    assert os.stat(other / "train.py").st_mode & 0o100


def test_untracked_files_are_captured_and_listed_ignored_ones_are_not(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "p")
    write(root, {"notes/idea.md": "# idea\n", "run.log": "x\n", "data/train.csv": "a,b\n",
                 "src/__pycache__/model.cpython-311.pyc": b"\0", "env/pyvenv.cfg": "home = /x\n",
                 "env/lib/site.py": "", ".mlpack/run.json": "{}"})
    c = capture_code(root)
    assert "code/notes/idea.md" in names(c)
    assert not [n for n in names(c) if "log" in n or "data/" in n or "pycache" in n
                or "env/" in n or ".mlpack" in n]
    git_facts = c.section["git"]
    assert git_facts["untracked"] == ["notes/idea.md"] and git_facts["dirty"] is True
    assert "diff" not in git_facts and DIFF_MEMBER not in names(c)  # untracked files are in no diff
    check_consistent(c, root)


def test_subdirectory_root(tmp_path: Path) -> None:
    top = make_repo(tmp_path / "mono", {"README.md": "top\n", "proj/train.py": "a = 1\n",
                                        "proj/lib/util.py": "u = 1\n", "other/x.py": "x\n"})
    commit = git(top, "rev-parse", "HEAD")
    (top / "proj" / "train.py").write_text("a = 2\n")
    (top / "other" / "x.py").write_text("changed outside the root\n")
    (top / "proj" / "extra.txt").write_text("untracked\n")
    (top / "stray.txt").write_text("untracked outside\n")
    c = capture_code(top / "proj")
    assert names(c) == ["code/extra.txt", "code/lib/util.py", "code/train.py", DIFF_MEMBER]
    assert c.section["root"] == "proj" and c.section["git"]["untracked"] == ["extra.txt"]
    diff = diff_of(c)
    assert b"other/x.py" not in diff and b"a/train.py" in diff
    check_consistent(c, top / "proj")
    other = checkout(top, commit, tmp_path / "other")
    (tmp_path / "u.diff").write_bytes(diff)
    git(other, "apply", "--directory=proj", str(tmp_path / "u.diff"))
    assert (other / "proj" / "train.py").read_text() == "a = 2\n"
    assert (other / "other" / "x.py").read_text() == "x\n"


def test_unborn_branch(tmp_path: Path) -> None:
    root = tmp_path / "p"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    write(root, {"a.py": "a\n", "b.py": "b\n"})
    git(root, "add", "a.py")
    c = capture_code(root)
    assert names(c) == ["code/a.py", "code/b.py"]
    assert c.section["git"] == {"commit": None, "branch": "main", "remote": None, "describe": None,
                                "dirty": True, "untracked": ["b.py"]}
    assert any("no commit yet" in n for n in c.notes)
    check_consistent(c, root)


def test_detached_head(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "p")
    (root / "train.py").write_text("v2\n")
    git(root, "commit", "-qam", "second")
    first = git(root, "rev-parse", "HEAD~1")
    git(root, "checkout", "-q", "--detach", first)
    g = capture_code(root).section["git"]
    assert g["commit"] == first and g["branch"] is None and g["dirty"] is False


def test_tags_show_in_describe(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "p")
    git(root, "tag", "v1.0")
    assert capture_code(root).section["git"]["describe"] == "v1.0"


def test_remote_credentials_are_stripped_and_upstream_wins(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "p")
    git(root, "remote", "add", "origin", "https://ada:ghp_secret@github.com/ada/proj.git")
    c = capture_code(root)
    assert c.section["git"]["remote"] == "https://github.com/ada/proj.git"
    assert "ghp_secret" not in json.dumps(c.section)
    git(root, "remote", "add", "fork", "git@gitlab.com:ada/proj.git")
    git(root, "config", "branch.main.remote", "fork")
    assert capture_code(root).section["git"]["remote"] == "git@gitlab.com:ada/proj.git"


@pytest.mark.parametrize(("url", "clean"), [
    ("https://user:token@host/x", "https://host/x"),
    ("https://ghp_abc@github.com/a/b.git", "https://github.com/a/b.git"),
    ("http://u:p@host:8080/x?private_token=t#frag", "http://host:8080/x"),
    ("ssh://git:pw@host/x.git", "ssh://git@host/x.git"),
    ("ssh://git@host/x.git", "ssh://git@host/x.git"),
    ("git@github.com:a/b.git", "git@github.com:a/b.git"),
    ("/srv/git/proj.git", "/srv/git/proj.git"),
    ("file:///srv/git/proj.git", "file:///srv/git/proj.git"),
])
def test_strip_credentials(url: str, clean: str) -> None:
    assert strip_credentials(url) == clean


def test_git_failure_is_e_capture(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "p")
    (root / ".git" / "index").write_bytes(b"garbage, not an index")
    err = fails("E_CAPTURE", root)
    assert "git ls-files failed" in err.message and "index" in err.message


def test_submodules_and_nested_repositories_are_noted_not_captured(tmp_path: Path) -> None:
    lib = make_repo(tmp_path / "lib", {"lib.py": "L = 1\n"})
    root = make_repo(tmp_path / "p")
    git(root, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(lib), "vendor/lib")
    git(root, "commit", "-qm", "submodule")
    make_repo(root / "scratch", {"s.py": "s\n"})
    c = capture_code(root)
    assert not [n for n in names(c) if "vendor/lib/" in n or "scratch" in n]
    assert "code/.gitmodules" in names(c)
    assert c.section["git"]["submodules"] == [{"path": "vendor/lib",
                                               "commit": git(lib, "rev-parse", "HEAD")}]
    assert any("vendor/lib" in n for n in c.notes) and any("scratch/" in n for n in c.notes)
    check_consistent(c, root)


# ----------------------------------------------------------------------------- without git

def test_plain_directory_without_git(tmp_path: Path) -> None:
    root = tmp_path / "p"
    write(root, {"train.py": "t\n", "src/m.py": "m\n", "src/__pycache__/m.cpython-311.pyc": b"\0",
                 "x.pyc": b"\0", ".venv/pyvenv.cfg": "home = /x\n", ".venv/lib/a.py": "",
                 "tools/venv2/pyvenv.cfg": "", "tools/venv2/bin/python": "",
                 "nb/.ipynb_checkpoints/a.ipynb": "{}", ".mlpack/run.json": "{}",
                 ".git": "gitdir: /nowhere\n", "old.mlpack": b"pack"})
    c = capture_code(root)
    assert names(c) == ["code/src/m.py", "code/train.py"]
    assert "git" not in c.section and c.section["root"] == ""
    assert len(c.notes) == 1 and "no git" in c.notes[0] and "not in a git work tree" in c.notes[0]
    check_consistent(c, root)


def test_git_not_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_repo(tmp_path / "p")
    (tmp_path / "empty-bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    c = capture_code(root)
    assert "git" not in c.section and "git is not installed" in c.notes[0]
    assert names(c) == ["code/.gitignore", "code/assets/blob.bin", "code/mlpack.toml",
                        "code/src/model.py", "code/train.py"]


def test_missing_root_is_e_input(tmp_path: Path) -> None:
    fails("E_INPUT", tmp_path / "nope")
    (tmp_path / "f").write_text("x")
    fails("E_INPUT", tmp_path / "f")


# ----------------------------------------------------------------------------- selection

@pytest.mark.parametrize(("pattern", "path", "hit"), [
    ("*.py", "train.py", True),
    ("*.py", "src/deep/m.py", True),  # no "/": any depth
    ("/*.py", "src/m.py", False),  # leading "/": the root only
    ("/*.py", "train.py", True),
    ("src/*.py", "src/m.py", True),
    ("src/*.py", "src/a/m.py", False),  # "*" stays in one directory
    ("src/*.py", "lib/src/m.py", False),  # a "/" anchors at the root
    ("**/*.py", "m.py", True),
    ("**/*.py", "a/b/c/m.py", True),
    ("src/**/*.py", "src/m.py", True),
    ("src/**/*.py", "src/a/b/m.py", True),
    ("src/**", "src/a/b/m.txt", True),
    ("src/**", "src", False),  # a file named src is not inside src/
    ("src/**", "lib/src/a.py", False),
    ("a/b/", "x/a/b/c", False),
    ("data/", "data/x.csv", True),
    ("data/", "a/data/x.csv", True),
    ("data/", "data", False),
    ("data", "data", True),
    ("data", "a/data/deep/x.csv", True),  # a directory that matches takes all below it
    ("requirements*.txt", "requirements-dev.txt", True),
    ("?.py", "ab.py", False),
    ("?.py", "a.py", True),
    ("[abc].py", "b.py", True),
    ("[!abc].py", "d.py", True),
    ("[!abc].py", "a.py", False),
    ("[a-c]x", "bx", True),
    ("[]]x", "]x", True),
    ("\\*.py", "*.py", True),
    ("\\*.py", "a.py", False),
    ("**", "any/thing", True),
    ("a.b", "axb", False),  # regex characters are literal
    ("x+(y)", "x+(y)", True),
])
def test_glob_semantics(pattern: str, path: str, hit: bool) -> None:
    assert GlobSet([pattern]).matches(path) is hit


def test_translate_glob() -> None:
    assert translate_glob("*.py") == ("(?:.*/)?[^/]*\\.py", False)
    assert translate_glob("src/**") == ("src", True)
    assert translate_glob("a/**/b") == ("a/(?:.*/)?b", False)


@pytest.mark.parametrize("bad", ["", "  ", "!*.py", "a/../b", "./a", "[ab", "a\\"])
def test_bad_globs_are_e_recipe(bad: str, tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("")
    err = fails("E_RECIPE", tmp_path, exclude=[bad])
    assert "[code] exclude" in err.message


def test_include_and_exclude(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "p", {"train.py": "", "src/m.py": "", "src/test_m.py": "",
                                      "notebooks/a.py": "", "requirements.txt": "", "README.md": "",
                                      "mlpack.toml": ""})
    inc = ["**/*.py", "mlpack.toml", "requirements*.txt"]
    exc = ["notebooks/**", "test_*.py"]
    c = capture_code(root, include=inc, exclude=exc)
    assert names(c) == ["code/mlpack.toml", "code/requirements.txt", "code/src/m.py",
                        "code/train.py"]
    assert c.section["include"] == inc and c.section["exclude"] == exc
    check_consistent(c, root)


def test_skip_weights_datasets_and_packs(tmp_path: Path) -> None:
    root = tmp_path / "p"
    write(root, {"train.py": "", "model.safetensors": b"w", "data/test/a.csv": "", "old.mlpack": b"p"})
    out = root / "out.mlpack"
    out.write_bytes(b"pack")
    c = capture_code(root, skip=["model.safetensors", "data/test/", str(out), "/elsewhere/x"])
    assert names(c) == ["code/train.py"]


def test_excluded_and_skipped_changes_stay_out_of_the_diff(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "p", {"train.py": "t\n", "model.safetensors": b"w1",
                                      "nb/a.ipynb": "{}"})
    (root / "model.safetensors").write_bytes(b"w2")
    (root / "nb" / "a.ipynb").write_text('{"x": 1}')
    c = capture_code(root, exclude=["nb/"], skip=["model.safetensors"])
    assert c.section["git"]["dirty"] is False and DIFF_MEMBER not in names(c)
    (root / "train.py").write_text("t2\n")
    diff = diff_of(capture_code(root, exclude=["nb/"], skip=["model.safetensors"]))
    assert b"train.py" in diff and b"safetensors" not in diff and b"ipynb" not in diff


def test_many_files_hash_in_parallel_and_match(tmp_path: Path) -> None:
    root = tmp_path / "p"
    write(root, {f"pkg/m{i:03}.py": f"x = {i}\n" * (i + 1) for i in range(300)})
    c = capture_code(root)
    assert c.section["files"] == 300
    check_consistent(c, root)


def test_captured_sources_pack(tmp_path: Path) -> None:
    from mlpack.manifest import FilesSummary, Manifest
    from mlpack.pack import write_pack

    root = make_repo(tmp_path / "p")
    (root / "train.py").write_text("edited\n")
    c = capture_code(root)
    write_pack(list(c.files), Manifest(name="t", files=FilesSummary(count=0, size=0)),
               tmp_path / "t.mlpack", key=None)
    with tarfile.open(tmp_path / "t.mlpack") as tar:
        packed = {m.name: m for m in tar.getmembers()}
        assert set(names(c)) <= set(packed)
        got = tar.extractfile(packed["code/train.py"])
        assert got is not None and got.read() == b"edited\n"


# ----------------------------------------------------------------------------- fingerprint

def test_fingerprint_changes_with_content_names_and_files_only(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "p")
    first = fingerprint(root)
    assert fingerprint(root) == first and first.startswith("sha256:") and len(first) == 71
    os.utime(root / "train.py", (1, 1))  # times are not content
    (root / "run.log").write_text("ignored")
    assert fingerprint(root) == first
    (root / "train.py").write_text("print('changed')\n")
    changed = fingerprint(root)
    assert changed != first
    (root / "new.py").write_text("")
    assert fingerprint(root) not in (first, changed)
    (root / "new.py").rename(root / "new2.py")
    renamed = fingerprint(root)
    assert renamed not in (first, changed) and fingerprint(root, exclude=["new2.py"]) == changed
    assert fingerprint(root, skip=["new2.py"]) == changed
    assert capture_code(root).section["digest"] == renamed


# ----------------------------------------------------------------------------- secrets

SECRETS: list[tuple[str, str | bytes]] = [
    (".env", "API_KEY=abc\n"),
    ("config/.env.production", "X=1\n"),
    ("keys/server.pem", pem()),
    ("deploy.key", pem("EC ")),
    ("id_ed25519", pem("OPENSSH ")),
    ("keys/id_rsa.old", pem("")),
    ("big.pem", pem("ENCRYPTED ") + "#" * (2 << 20)),  # key names are scanned at any size
    ("notes.txt", "here it is:\n" + pem("")),  # any small file
    ("gpg.asc", "-----BEGIN " + "PGP PRIVATE KEY BLOCK-----\nlQ\n"),
    (".aws/credentials", "[default]\naws_access_key_id = x\n"),
    (".netrc", "machine h login u password p\n"),
    (".git-credentials", "https://u:p@github.com\n"),
    (".pypirc", "[pypi]\nusername = __token__\npassword = pypi-abc\n"),
    ("credentials.json", '{"installed": {"client_id": "x", "client_secret": "y"}}'),
    ("gcp/sa.json", '{"type": "service_account", "private_key": "-----BEGIN"}'),
    (".docker/config.json", '{"auths": {"r.io": {"auth": "dTpw"}}}'),
    ("cert.p12", b"\x30\x82"),
    ("settings.py", f"AWS_ACCESS_KEY_ID = '{AWS_ID}'\nAWS_SECRET_ACCESS_KEY = '{AWS_SECRET}'\n"),
]
NOT_SECRETS: list[tuple[str, str | bytes]] = [
    (".env.example", "API_KEY=\n"),
    (".env.template", "API_KEY=\n"),
    ("keys/pub.pem", "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n"),
    ("ca.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"),
    ("id_rsa.pub", "ssh-rsa AAAAB3Nza ada@host\n"),
    (".pypirc", "[pypi]\nusername = __token__\n"),
    (".docker/config.json", '{"auths": {}, "credsStore": "desktop"}'),
    ("sa.json", '{"private_key_id": "x", "private_key": ""}'),
    ("docs/aws.md", "AKIA" + "IOSFODNN7EXAMPLE wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "EXAMPLEKEY\n"),
    ("ids.txt", AWS_ID + "\n"),  # a key id alone is not a credential
    ("hashes.txt", AWS_ID + " 3f786850e387550fdab836ed7e6dc881de23001b\n"),
    ("big.txt", "#" * (SCAN := (1 << 20)) + pem()),  # over 1 MiB: not scanned
    ("env.py", "import os\nos.environ.get('PRIVATE KEY')\n"),
]
assert SCAN == 1 << 20


@pytest.mark.parametrize(("rel", "content"), SECRETS, ids=[s[0] for s in SECRETS])
def test_secrets_are_refused_unless_allowed(rel: str, content: str | bytes, tmp_path: Path) -> None:
    root = tmp_path / "p"
    write(root, {"train.py": "", rel: content})
    err = fails("E_SECRET", root)
    assert rel in err.message and err.member == "code/" + rel
    assert err.hint is not None and "allow-secrets" in err.hint and "exclude" in err.hint
    c = capture_code(root, allow_secrets=[rel])
    assert "code/" + rel in names(c) and c.section["allowed_secrets"] == [rel]
    check_consistent(c, root)
    assert "code/" + rel not in names(capture_code(root, exclude=[rel]))


@pytest.mark.parametrize(("rel", "content"), NOT_SECRETS, ids=[s[0] for s in NOT_SECRETS])
def test_lookalikes_are_not_secrets(rel: str, content: str | bytes, tmp_path: Path) -> None:
    root = tmp_path / "p"
    write(root, {rel: content})
    c = capture_code(root)
    assert names(c) == ["code/" + rel] and "allowed_secrets" not in c.section


def test_secrets_in_git_repositories_and_unused_allowances(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "p")
    (root / "deploy.py").write_text("KEY = '''" + pem("EC ") + "'''\n")
    fails("E_SECRET", root)
    git(root, "add", "deploy.py")
    git(root, "commit", "-qm", "oops")
    fails("E_SECRET", root)  # committed or not
    c = capture_code(root, allow_secrets=["./deploy.py", "gone.pem"])
    assert c.section["allowed_secrets"] == ["deploy.py"]
    assert any("gone.pem" in n for n in c.notes)


def test_secrets_that_only_the_diff_would_carry(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "p", {"train.py": "",
                                      "settings.py": f"ID = '{AWS_ID}'\nKEY = '{AWS_SECRET}'\n",
                                      ".env": "TOKEN=abc\n"})
    fails("E_SECRET", root, allow_secrets=["settings.py"])  # the committed .env
    (root / ".env").unlink()
    err = fails("E_SECRET", root, allow_secrets=["settings.py"])
    assert err.message.startswith(".env looks like a secret") and "deletion" in err.message
    (root / "settings.py").write_text("ID = None\n")  # the key is gone, but not from the diff
    err = fails("E_SECRET", root, allow_secrets=[".env"])
    assert err.message.startswith("settings.py looks like a secret") and "diff" in err.message
    assert err.member == "code/settings.py"
    c = capture_code(root, allow_secrets=[".env", "settings.py"])
    assert AWS_SECRET.encode() in diff_of(c) and c.section["git"]["dirty"] is True
    assert c.section["allowed_secrets"] == [".env", "settings.py"]  # packed in the diff
    git(root, "commit", "-qam", "rotate")
    assert DIFF_MEMBER not in names(capture_code(root))


def test_looks_secret_is_pure() -> None:
    assert looks_secret("a/.env", b"", 0) is not None
    assert looks_secret("a/env", b"", 0) is None
    assert looks_secret("x.bin", pem().encode(), 2 << 20) is None
    assert looks_secret("x.key", pem().encode(), 2 << 20) is not None


# ----------------------------------------------------------------------------- refusals

def test_symlinks_are_refused(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    write(plain, {"a.py": ""})
    (plain / "link.py").symlink_to("a.py")
    err = fails("E_MEMBER_TYPE", plain)
    assert "link.py" in err.message and "symbolic link" in err.message and "exclude" in str(err.hint)
    assert names(capture_code(plain, exclude=["link.py"])) == ["code/a.py"]
    (plain / "dirlink").symlink_to(plain)
    assert "dirlink" in fails("E_MEMBER_TYPE", plain, exclude=["link.py"]).message

    root = make_repo(tmp_path / "p", {"a.py": ""})
    (root / "tracked").symlink_to("a.py")
    git(root, "add", "tracked")
    git(root, "commit", "-qm", "link")
    err = fails("E_MEMBER_TYPE", root)
    assert "'tracked' is tracked by git as a symbolic link" in err.message
    assert err.hint is not None and "exclude" in err.hint
    assert names(capture_code(root, exclude=["tracked"])) == ["code/a.py"]
    (root / "untracked").symlink_to("a.py")
    assert "untracked" in fails("E_MEMBER_TYPE", root, exclude=["tracked"]).message


def test_special_files_are_refused(tmp_path: Path) -> None:
    write(tmp_path, {"a.py": ""})
    os.mkfifo(tmp_path / "pipe")
    assert "pipe" in fails("E_MEMBER_TYPE", tmp_path).message


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file (see the setpriv variant)")
def test_unreadable_file_is_e_input(tmp_path: Path) -> None:
    write(tmp_path, {"a.py": "", "secret.py": "x"})
    (tmp_path / "secret.py").chmod(0)
    try:
        err = fails("E_INPUT", tmp_path)
        assert "secret.py" in err.message and "Permission denied" in err.message
    finally:
        (tmp_path / "secret.py").chmod(0o644)


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root and setpriv to drop the permission override")
def test_unreadable_file_is_e_input_as_root_without_dac_override(tmp_path: Path) -> None:
    write(tmp_path, {"a.py": "", "secret.py": "x"})
    (tmp_path / "secret.py").chmod(0)
    script = ("import json, sys\nfrom pathlib import Path\nfrom mlpack.code import capture_code\n"
              "try:\n    capture_code(Path(sys.argv[1]))\n    print('{}')\n"
              "except Exception as e:\n"
              "    print(json.dumps({'code': e.code, 'message': e.message, 'hint': e.hint}))\n")
    caps = "-dac_override,-dac_read_search"
    done = subprocess.run(["setpriv", f"--inh-caps={caps}", f"--bounding-set={caps}",
                           sys.executable, "-c", script, str(tmp_path)],
                          capture_output=True, text=True, check=True, cwd=REPO)
    got = json.loads(done.stdout)
    assert got["code"] == "E_INPUT" and "secret.py" in got["message"]
    assert "Permission denied" in got["message"] and "exclude" in got["hint"]


@pytest.mark.parametrize(("rel", "code"), [
    ("a:b.py", "E_PATH"),
    ("trailing. ", "E_NAME"),
    ("con.py", "E_NAME"),
    ("tab\tname.py", "E_NAME"),
    ("q?.py", "E_NAME"),
])
def test_names_that_break_pack_rules(rel: str, code: str, tmp_path: Path) -> None:
    write(tmp_path, {"ok.py": "", rel: ""})
    err = fails(code, tmp_path)
    assert err.member == "code/" + rel and "exclude" in str(err.hint)
    assert names(capture_code(tmp_path, exclude=[rel.replace("?", "\\?")])) == ["code/ok.py"]


def test_names_that_collide_on_case_insensitive_systems(tmp_path: Path) -> None:
    write(tmp_path, {"Model.py": "", "model.py": ""})
    if len(list(tmp_path.iterdir())) == 2:  # a case-sensitive file system
        fails("E_NAME_COLLISION", tmp_path)


# ----------------------------------------------------------------------------- records

def test_section_records_reject_bad_values() -> None:
    good = {"files": 1, "size": 2, "root": "", "digest": "sha256:" + "0" * 64,
            "git": {"commit": None, "branch": None, "remote": None, "describe": None,
                    "dirty": False, "untracked": []}}
    assert CodeSection.from_dict(good).to_dict() == good
    for path, value in [("files", -1), ("files", True), ("digest", "sha256:AB"), ("root", "../x"),
                        ("git.commit", "abc"), ("git.dirty", "no"), ("git.diff", "x.diff"),
                        ("git.untracked", [1])]:
        doc = json.loads(json.dumps(good))
        target = doc["git"] if path.startswith("git.") else doc
        target[path.removeprefix("git.")] = value
        with pytest.raises(MlpackError) as info:
            CodeSection.from_dict(doc)
        assert info.value.code == "E_MANIFEST" and f"code.{path}" in info.value.message
        assert not VALIDATOR.is_valid(doc), path

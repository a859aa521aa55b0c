"""The ``mlpack`` command line: one thin command per verb, one error boundary.

Every command calls one library function. :func:`main` is the only place that turns
errors into the one-line ``mlpack: error: [CODE] message`` and an exit code
(spec/verification.md, "Exit codes"): 0 success, 1 checks failed / input refused,
2 usage, 3 could not complete, 130 interrupted.
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import click
import typer

from . import __version__
from .errors import EXIT_FAILED, EXIT_INTERRUPTED, Interrupted, MlpackError

app = typer.Typer(
    name="mlpack",
    help="Source control for trained models: pack, sign, inspect and verify model packs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

KeyOpt = Annotated[list[Path], typer.Option("--key", "-k", help="Trusted public key (PEM); repeatable.")]
TrustDirOpt = Annotated[list[Path], typer.Option("--trust-dir", help="Directory of trusted *.pub keys; repeatable.")]
ThresholdOpt = Annotated[int, typer.Option(help="Distinct trusted keys that must have signed.", min=1)]
AllowUnsignedOpt = Annotated[bool, typer.Option("--allow-unsigned", help="Accept a pack with no signature (reported as unsigned).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mlpack {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
) -> None:
    """mlpack: portable, signed, reproducible model packs."""


def _trust(keys: list[Path], trust_dirs: list[Path]) -> Any:
    from .keys import load_trust

    return load_trust([str(k) for k in keys], [str(d) for d in trust_dirs])


@app.command()
def keygen(
    output: Annotated[Path, typer.Option("-o", "--output", help="Prefix: writes PREFIX.pem and PREFIX.pub.")],
    force: Annotated[bool, typer.Option("--force", help="Replace existing key files.")] = False,
) -> None:
    """Create an ECDSA P-256 signing key pair."""
    from .keys import generate

    private, public, fingerprint = generate(output, force=force)
    typer.echo(f"private key  {private} (keep it secret; mode 0600)")
    typer.echo(f"public key   {public} (give it to verifiers)")
    typer.echo(f"fingerprint  {fingerprint}")


@app.command()
def pack(
    directory: Annotated[Path, typer.Argument(help="Directory whose regular files go into the pack.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="The pack file to write.")],
    key: Annotated[Path | None, typer.Option("--key", "-k", help="Private key (PEM) to sign with.")] = None,
    unsigned: Annotated[bool, typer.Option("--unsigned", help="Write an unsigned pack.")] = False,
    hash_name: Annotated[str, typer.Option("--hash", help="sha256 (default), blake2b or blake3.")] = "sha256",
    name: Annotated[str | None, typer.Option("--name", help="Pack name (default: mlpack.json's or the directory's).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace OUTPUT if it exists.")] = False,
) -> None:
    """Pack and sign every regular file under DIRECTORY (plus a generated mlpack.json)."""
    from .errors import UsageError
    from .keys import load_signing_key
    from .pack import pack_directory

    if hash_name not in ("sha256", "blake2b", "blake3"):
        raise UsageError(f"--hash {hash_name!r} is not one of sha256, blake2b, blake3")
    if (key is None) == (not unsigned):
        raise UsageError("pass --key PRIVATE.pem to sign, or --unsigned (but not both)",
                         hint="create a key with: mlpack keygen -o NAME")
    signing_key = load_signing_key(key) if key else None
    result = pack_directory(directory, output, key=signing_key, algorithm=hash_name, name=name,
                            replace_existing=force)
    typer.echo(f"wrote {result.path}: {result.files} files, {result.size} bytes, "
               f"{result.algorithm} root sha256:{result.root_digest}")
    typer.echo(f"signed by {result.signer}" if result.signer else "UNSIGNED")


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="The training project (default: here).")] = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Replace an existing mlpack.toml.")] = False,
) -> None:
    """Write a commented mlpack.toml, pre-filled from what the project holds (git, weights, data)."""
    from .init import write_init

    path = write_init(directory, force=force)
    typer.echo(f"wrote {path}: review it, train (wrap training in mlpack.run()), then mlpack build")


@app.command()
def build(
    output: Annotated[Path, typer.Option("-o", "--output", help="The pack file to write.")],
    key: Annotated[Path | None, typer.Option("--key", "-k", help="Private key (PEM) to sign with.")] = None,
    unsigned: Annotated[bool, typer.Option("--unsigned", help="Write an unsigned pack.")] = False,
    directory: Annotated[Path, typer.Option("-C", "--project", help="The training project.")] = Path("."),
    env_mode: Annotated[str | None, typer.Option(
        "--env", help="Override [environment] mode: lock, wheelhouse, conda-pack or none.")] = None,
    wheelhouse: Annotated[bool, typer.Option("--wheelhouse", help="Same as --env wheelhouse.")] = False,
    conda_pack: Annotated[bool, typer.Option("--conda-pack", help="Same as --env conda-pack.")] = False,
    allow_stale: Annotated[bool, typer.Option(
        "--allow-stale", help="Build even if weights or code changed since the recorded run.")] = False,
    hash_name: Annotated[str, typer.Option("--hash", help="sha256 (default), blake2b or blake3.")] = "sha256",
    force: Annotated[bool, typer.Option("--force", help="Replace OUTPUT if it exists.")] = False,
) -> None:
    """Capture the project as mlpack.toml says (weights, code, environment, data, hardware, run, metrics); pack, sign."""
    from .build import build_project
    from .errors import UsageError
    from .keys import load_signing_key

    if hash_name not in ("sha256", "blake2b", "blake3"):
        raise UsageError(f"--hash {hash_name!r} is not one of sha256, blake2b, blake3")
    modes = [m for m, on in (("wheelhouse", wheelhouse), ("conda-pack", conda_pack)) if on]
    if env_mode:
        modes.append(env_mode)
    if len(set(modes)) > 1:
        raise UsageError(f"choose one environment mode, not {' and '.join(sorted(set(modes)))}")
    if modes and modes[0] not in ("lock", "wheelhouse", "conda-pack", "none"):
        raise UsageError(f"--env {modes[0]!r} is not one of lock, wheelhouse, conda-pack, none")
    if (key is None) == (not unsigned):
        raise UsageError("pass --key PRIVATE.pem to sign, or --unsigned (but not both)",
                         hint="create a key with: mlpack keygen -o NAME")
    signing_key = load_signing_key(key) if key else None
    result = build_project(directory, output, key=signing_key, algorithm=hash_name,
                           replace_existing=force, allow_stale=allow_stale,
                           environment_mode=modes[0] if modes else None)
    for note in result.notes:
        typer.echo(f"note: {note}", err=True)
    p = result.pack
    typer.echo(f"wrote {p.path}: {p.files} files, {p.size} bytes, {p.algorithm} "
               f"root sha256:{p.root_digest}")
    typer.echo(f"sections: {', '.join(sorted(result.manifest.sections))}")
    typer.echo(f"signed by {p.signer}" if p.signer else "UNSIGNED")


@app.command()
def convert(
    source: Annotated[Path, typer.Argument(help="A PyTorch checkpoint (state dict).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="The .safetensors file to write.")],
    key: Annotated[str | None, typer.Option("--key", help="Entry holding the state dict (e.g. state_dict).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace OUTPUT if it exists.")] = False,
) -> None:
    """Turn a PyTorch state dict into safetensors (loaded with weights_only: never unpickles code)."""
    from .convert import convert_torch

    result = convert_torch(source, output, key=key, overwrite=force)
    typer.echo(f"wrote {output}: {result.tensors} tensors, {result.size} bytes, sha256:{result.sha256}")
    for what, items in (("shared tensors cloned", result.shared), ("scalars kept as metadata", result.scalars),
                        ("entries skipped", result.skipped)):
        if items:
            typer.echo(f"note: {what}: {', '.join(map(str, items))}", err=True)


@app.command()
def inspect(
    pack_file: Annotated[Path, typer.Argument(metavar="PACK", help="The pack to describe.")],
    as_json: JsonOpt = False,
) -> None:
    """Describe a pack without verifying it (reads under 1 MiB)."""
    from .inspection import inspect_pack

    info = inspect_pack(pack_file)
    typer.echo(json.dumps(info.to_dict(), indent=2, sort_keys=True) if as_json else info.render())


def _finish(report: Any, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        typer.echo(report.render())
        for att in getattr(report, "attestations", None) or []:
            typer.echo(f"  attestation: {att['line']}")
    if not report.ok:
        err = report.error
        _print_error(err)
        raise typer.Exit(EXIT_FAILED)


@app.command()
def verify(
    pack_file: Annotated[Path, typer.Argument(metavar="PACK", help="The pack to verify.")],
    key: KeyOpt = [],  # noqa: B006 - typer reads the default, never mutates it
    trust_dir: TrustDirOpt = [],  # noqa: B006
    threshold: ThresholdOpt = 1,
    allow_unsigned: AllowUnsignedOpt = False,
    as_json: JsonOpt = False,
    evaluate: Annotated[bool, typer.Option("--eval", help="Re-evaluate the shipped weights (runs pack code, sandboxed).")] = False,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Retrain from scratch, compare weights, then evaluate.")] = False,
    data: Annotated[list[str], typer.Option("--data", help="NAME=PATH|s3://... for a dataset the entry points read; repeatable.")] = [],  # noqa: B006
    allow_data_drift: Annotated[bool, typer.Option("--allow-data-drift", help="Run even if data differs from its signed manifest (reported).")] = False,
    env: Annotated[str, typer.Option("--env", help="lock: a fresh environment from the pack's lock (cached); current: this interpreter, checked against the lock.")] = "lock",
    eval_with: Annotated[Path | None, typer.Option("--eval-with", help="Your own evaluation script instead of the pack's (called with --weights, --data NAME=PATH, --out DIR).")] = None,
    exact: Annotated[bool, typer.Option("--exact", help="--rebuild: require bit-identical weights.")] = False,
    unsafe_no_sandbox: Annotated[bool, typer.Option("--unsafe-no-sandbox", help="Run pack code without a sandbox when none can be set up.")] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds each pack command may run.", min=1)] = 3600.0,
    report_file: Annotated[Path | None, typer.Option("--report", help="Also write a self-contained Markdown report to this file.")] = None,
) -> None:
    """Check a pack's integrity and signature; with --eval/--rebuild also recompute its metrics.

    Exit 0: verified (and reproduced); 1: a check failed; 2: usage; 3: could not run.
    """
    from .verify import verify_pack

    trust = _trust(key, trust_dir)
    if evaluate or rebuild:
        if str(pack_file).startswith(("oci:/", "s3:/")):
            from .errors import UsageError

            raise UsageError("--eval/--rebuild run on a local pack", hint="mlpack pull it first (-o FILE), then verify FILE")
        _reproduce(pack_file, trust, threshold, allow_unsigned, as_json, evaluate, rebuild, data,
                   allow_data_drift, env, eval_with, exact, unsafe_no_sandbox, timeout, report_file)
        return
    for name, value in (("--data", data), ("--allow-data-drift", allow_data_drift), ("--eval-with", eval_with),
                        ("--exact", exact), ("--unsafe-no-sandbox", unsafe_no_sandbox)):
        if value:
            from .errors import UsageError

            raise UsageError(f"{name} needs --eval or --rebuild")
    report = _remote_verify(pack_file, trust, threshold, allow_unsigned) \
        or verify_pack(pack_file, trust=trust, threshold=threshold, allow_unsigned=allow_unsigned)
    report.attestations = _attestations(pack_file, trust) if report.ok else []
    if report_file is not None:
        _write_report(report_file, f"# Verification report: {pack_file.name}\n\n```\n{report.render()}\n```\n")
    _finish(report, as_json)


def _attestations(pack_file: Path, trust: Any) -> list[dict[str, Any]]:
    """Attestations beside the pack, each checked; a bad one is listed with its error."""
    from .attest import find_attestations, read_attestation
    from .digest import sha256_file
    from .errors import MlpackError as _Err

    found = find_attestations(pack_file)
    if not found:
        return []
    digest = sha256_file(pack_file)
    out = []
    for path in found:
        try:
            att = read_attestation(path, digest, trust)
            out.append({**att.to_dict(), "line": att.line()})
        except _Err as err:
            out.append({"path": str(path), "error": err.to_dict(), "line": f"{path.name}: [{err.code}] {err.message}"})
    return out


@app.command()
def attest(
    pack_file: Annotated[Path, typer.Argument(metavar="PACK", help="The pack the report is about.")],
    report: Annotated[Path, typer.Argument(help="The output of mlpack verify PACK --eval/--rebuild --json.")],
    key: Annotated[Path, typer.Option("--key", "-k", help="The verifier's private key (PEM).")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Default: PACK.<key>.att.json beside the pack.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing attestation.")] = False,
) -> None:
    """Sign what you reproduced (verdict, metrics, your hardware) as a file beside the pack."""
    from .attest import attest as sign_outcome
    from .attest import load_report
    from .keys import load_signing_key

    path = sign_outcome(pack_file, load_report(report), key=load_signing_key(key), out=output, force=force)
    typer.echo(f"wrote {path}")


def _write_report(path: Path, text: str) -> None:
    from ._atomic import atomic_write_bytes
    from .errors import IOFailure

    try:
        atomic_write_bytes(path, text.encode())
    except OSError as err:
        raise IOFailure.from_os_error(err, f"cannot write {path}") from None


def _reproduce(pack_file: Path, trust: Any, threshold: int, allow_unsigned: bool, as_json: bool, evaluate: bool,
               rebuild: bool, data: list[str], allow_data_drift: bool, env: str, eval_with: Path | None,
               exact: bool, unsafe: bool, timeout: float, report_file: Path | None) -> None:
    from .errors import EXIT_IO, EXIT_USAGE
    from .reproduce import parse_bindings, reproduce

    def progress(msg: str) -> None:
        typer.echo(f"mlpack: {msg}", err=True)

    result = reproduce(pack_file, trust=trust, threshold=threshold, allow_unsigned=allow_unsigned,
                       evaluate=evaluate, rebuild=rebuild, data=parse_bindings(data),
                       allow_data_drift=allow_data_drift, env=env, eval_with=eval_with, exact=exact,
                       unsafe_no_sandbox=unsafe, timeout_s=timeout, progress=progress)
    if result.error is not None and result.error.exit_code == EXIT_USAGE and not as_json:
        raise result.error  # a usage error: one line, no table of levels that never ran
    if report_file is not None:
        _write_report(report_file, result.to_markdown())
    typer.echo(json.dumps(result.to_dict(), indent=2) if as_json else result.render())
    if result.verdict == "reproduced":
        return
    if result.error is not None and result.error.exit_code != EXIT_FAILED:
        raise result.error
    _print_error(result.error)
    raise typer.Exit(EXIT_FAILED if result.verdict == "failed" else EXIT_IO)


@app.command()
def unpack(
    pack_file: Annotated[Path, typer.Argument(metavar="PACK", help="The pack to extract.")],
    dest: Annotated[Path, typer.Option("-d", "--dest", help="NEW directory to create.")],
    key: KeyOpt = [],  # noqa: B006
    trust_dir: TrustDirOpt = [],  # noqa: B006
    threshold: ThresholdOpt = 1,
    allow_unsigned: AllowUnsignedOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Verify a pack while extracting it into a new directory (created only if all holds)."""
    from .verify import unpack_pack

    trust = _trust(key, trust_dir)
    report = unpack_pack(pack_file, dest, trust=trust, threshold=threshold, allow_unsigned=allow_unsigned)
    _finish(report, as_json)
    if not as_json:
        typer.echo(f"unpacked into {dest}")


PlainHttpOpt = Annotated[bool, typer.Option(
    "--plain-http", help="Talk http, not https, to the registry (default for loopback hosts that "
    "do not speak TLS; env MLPACK_REGISTRY_PLAIN_HTTP=1).")]
InsecureOpt = Annotated[bool, typer.Option(
    "--insecure", help="Do not verify the registry's TLS certificate (env MLPACK_REGISTRY_INSECURE=1).")]
CaFileOpt = Annotated[Path | None, typer.Option(
    "--ca-file", help="Extra trusted CA certificates (PEM) for the registry (env MLPACK_REGISTRY_CA_FILE).")]
UserOpt = Annotated[str | None, typer.Option(
    "--username", "-u", help="Registry user (default: MLPACK_REGISTRY_USERNAME, then the Docker config).")]
PasswordStdinOpt = Annotated[bool, typer.Option(
    "--password-stdin", help="Read the registry password (or token) from standard input.")]
EndpointOpt = Annotated[str | None, typer.Option(
    "--endpoint", help="S3 endpoint URL for s3:// references (default: AWS_ENDPOINT_URL).")]


def _registry_options(plain_http: bool, insecure: bool, ca_file: Path | None, username: str | None,
                      password_stdin: bool) -> Any:
    from .errors import UsageError
    from .oci import Credentials, RegistryOptions

    credentials = None
    if password_stdin and not username:
        raise UsageError("--password-stdin needs --username")
    if username:
        if password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        else:
            import os

            password = os.environ.get("MLPACK_REGISTRY_PASSWORD")
            if password is None:
                raise UsageError(f"no password for {username}",
                                 hint="pass --password-stdin, or set MLPACK_REGISTRY_PASSWORD")
        credentials = Credentials(username, password, "--username")
    return RegistryOptions(plain_http=plain_http or None, insecure=insecure or None,
                           ca_file=str(ca_file) if ca_file else None, credentials=credentials)


def _remote_kind(ref: str) -> str:
    from .errors import UsageError

    if ref.startswith("oci://"):
        return "oci"
    if ref.startswith("s3://"):
        return "s3"
    raise UsageError(f"{ref!r} is neither an oci:// nor an s3:// reference",
                     hint="write oci://HOST/REPOSITORY:TAG or s3://BUCKET/PREFIX:TAG")


def _remote_verify(pack_file: Path | str, trust: Any, threshold: int, allow_unsigned: bool) -> Any:
    """``mlpack verify oci://...`` / ``s3://...``: the report of the remote pack, or None for a local file.

    typer hands PACK over as a Path, which turns ``oci://h/r`` into ``oci:/h/r``; both
    spellings are accepted (a local file under a directory named ``oci:`` is ``./oci:/...``).
    """
    text = str(pack_file)
    for scheme in ("oci", "s3"):
        if text.startswith(f"{scheme}:/") and not text.startswith(f"{scheme}://"):
            text = f"{scheme}://" + text[len(scheme) + 2:]
    if text.startswith("oci://"):
        from .oci import verify_remote

        return verify_remote(text, trust=trust, threshold=threshold, allow_unsigned=allow_unsigned)
    if text.startswith("s3://"):
        from .store import verify_remote as verify_store

        return verify_store(text, trust=trust, threshold=threshold, allow_unsigned=allow_unsigned)
    return None


@app.command()
def push(
    pack_file: Annotated[Path, typer.Argument(metavar="PACK", help="The pack to upload.")],
    ref: Annotated[str, typer.Argument(metavar="REF", help="oci://HOST/REPOSITORY[:TAG] or s3://BUCKET/PREFIX[:TAG].")],
    plain_http: PlainHttpOpt = False,
    insecure: InsecureOpt = False,
    ca_file: CaFileOpt = None,
    username: UserOpt = None,
    password_stdin: PasswordStdinOpt = False,
    endpoint: EndpointOpt = None,
) -> None:
    """Upload a pack to an OCI registry or an S3 pack store; blobs already there are not sent again."""
    if _remote_kind(ref) == "oci":
        from .oci import push as push_oci

        options = _registry_options(plain_http, insecure, ca_file, username, password_stdin)
        result = push_oci(pack_file, ref, options=options)
    else:
        from .store import push as push_store

        result = push_store(pack_file, ref, endpoint=endpoint)
    files = [n for n in result.uploaded if n != "manifest"]
    typer.echo(f"pushed {pack_file} to {ref}: {len(files)} blob(s) sent ({result.bytes_sent} bytes), "
               f"{result.skipped} already there")
    typer.echo(f"digest: {result.digest}")
    typer.echo(f"pull by digest: {result.reference}")


@app.command()
def pull(
    ref: Annotated[str, typer.Argument(metavar="REF", help="oci://HOST/REPOSITORY[:TAG|@sha256:...] or s3://...")],
    output: Annotated[Path, typer.Option("-o", "--output", help="The pack file to write.")],
    key: KeyOpt = [],  # noqa: B006
    trust_dir: TrustDirOpt = [],  # noqa: B006
    threshold: ThresholdOpt = 1,
    allow_unsigned: AllowUnsignedOpt = False,
    force: Annotated[bool, typer.Option("--force", help="Replace OUTPUT if it exists.")] = False,
    plain_http: PlainHttpOpt = False,
    insecure: InsecureOpt = False,
    ca_file: CaFileOpt = None,
    username: UserOpt = None,
    password_stdin: PasswordStdinOpt = False,
    endpoint: EndpointOpt = None,
) -> None:
    """Download a pack, verify it with your trusted keys, and only then write OUTPUT."""
    trust = _trust(key, trust_dir)
    if _remote_kind(ref) == "oci":
        from .oci import pull as pull_oci

        options = _registry_options(plain_http, insecure, ca_file, username, password_stdin)
        result = pull_oci(ref, output, trust=trust, threshold=threshold, allow_unsigned=allow_unsigned,
                          replace=force, options=options)
    else:
        from .store import pull as pull_store

        result = pull_store(ref, output, trust=trust, threshold=threshold, allow_unsigned=allow_unsigned,
                            replace=force, endpoint=endpoint)
    report = result.report
    who = f"signed by {', '.join(report.signers)}" if report.signers else "UNSIGNED (integrity only)"
    typer.echo(f"pulled {ref} ({result.digest}) into {output}: verified, {who}")


@app.command()
def diff(
    old: Annotated[Path, typer.Argument(metavar="OLD", help="The reference pack.")],
    new: Annotated[Path, typer.Argument(metavar="NEW", help="The pack to compare with it.")],
    key: KeyOpt = [],  # noqa: B006
    trust_dir: TrustDirOpt = [],  # noqa: B006
    threshold: ThresholdOpt = 1,
    allow_unsigned: AllowUnsignedOpt = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the diff report as JSON (spec/diff.md).")] = False,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print the diff as Markdown.")] = False,
    limit: Annotated[int, typer.Option(help="Most paths, packages or tensors listed per list.", min=1)] = 1000,
    no_tensor_stats: Annotated[bool, typer.Option(
        "--no-tensor-stats", help="Do not read changed tensors for their largest difference.")] = False,
    strict: Annotated[bool, typer.Option(
        "--strict", help="Exit 1 on incidental differences too (run times, processor clock, signers).")] = False,
) -> None:
    """Verify both packs, then show what changed, most important first (exit 0 equal, 1 different).

    Metrics and tolerances, training parameters and seeds, code, packages, data files, hardware, tensors.
    """
    from .diff import DiffOptions, diff_files, render_markdown, render_text
    from .errors import UsageError

    if as_json and markdown:
        raise UsageError("choose one of --json and --markdown")
    trust = _trust(key, trust_dir)
    result = diff_files(old, new, trust=trust, threshold=threshold, allow_unsigned=allow_unsigned,
                        options=DiffOptions(limit=limit, tensor_stats=not no_tensor_stats))
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    elif markdown:
        typer.echo(render_markdown(result), nl=False)
    else:
        typer.echo(render_text(result))
    if not (result.strictly_equal if strict else result.equal):
        raise typer.Exit(EXIT_FAILED)


@app.command()
def card(
    pack_file: Annotated[Path, typer.Argument(metavar="PACK", help="The pack to describe.")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="File to write (default: print).")] = None,
    html: Annotated[bool, typer.Option("--html", help="One self-contained HTML page instead of Markdown.")] = False,
    store: Annotated[Path | None, typer.Option("--store", help="Directory of packs to draw the lineage from.")] = None,
    task: Annotated[str, typer.Option(help="model-index task type (a Hugging Face task id).")] = "other",
    key: KeyOpt = [],  # noqa: B006
    trust_dir: TrustDirOpt = [],  # noqa: B006
    threshold: ThresholdOpt = 1,
    allow_unsigned: AllowUnsignedOpt = False,
    force: Annotated[bool, typer.Option("--force", help="Replace OUTPUT if it exists.")] = False,
) -> None:
    """Verify a pack, then write its model card: Hugging Face Markdown, or --html."""
    from .card import write_card

    trust = _trust(key, trust_dir)
    text = write_card(pack_file, output, trust=trust, threshold=threshold, allow_unsigned=allow_unsigned,
                      html=html, store=store, task=task, force=force)
    if output is None:
        typer.echo(text, nl=False)
    else:
        typer.echo(f"wrote {output}", err=True)


@app.command()
def log(
    pack_file: Annotated[Path, typer.Argument(metavar="PACK", help="The pack whose ancestry to show.")],
    store: Annotated[Path, typer.Option("--store", help="Directory of packs where parents are looked up.")],
    key: KeyOpt = [],  # noqa: B006
    trust_dir: TrustDirOpt = [],  # noqa: B006
    threshold: ThresholdOpt = 1,
    allow_unsigned: AllowUnsignedOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Show the chain of parent packs (found in --store) and what changed at each step.

    Exit 0 when it reaches a pack without parent; 1 when a parent is missing or fails (chain printed first).
    """
    from .lineage import DirectoryStore, walk

    trust = _trust(key, trust_dir)
    chain = walk(pack_file, DirectoryStore(store), trust=trust, threshold=threshold,
                 allow_unsigned=allow_unsigned)
    typer.echo(json.dumps(chain.to_dict(), indent=2, ensure_ascii=False) if as_json else chain.render_text())
    if chain.stop is not None:
        raise chain.stop


export_app = typer.Typer(help="Export what a pack records in other formats.", no_args_is_help=True)
app.add_typer(export_app, name="export")


@export_app.command("croissant")
def export_croissant_command(
    pack_file: Annotated[Path, typer.Argument(metavar="PACK", help="The pack holding the dataset manifest.")],
    dataset: Annotated[str, typer.Argument(metavar="DATASET", help="The dataset's name in the pack.")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="File to write (default: print).")] = None,
    base_url: Annotated[str | None, typer.Option(
        "--base-url", help="Prefix of every file's contentUrl (default: the dataset's recorded source).")] = None,
    key: KeyOpt = [],  # noqa: B006
    trust_dir: TrustDirOpt = [],  # noqa: B006
    threshold: ThresholdOpt = 1,
    allow_unsigned: AllowUnsignedOpt = False,
    force: Annotated[bool, typer.Option("--force", help="Replace OUTPUT if it exists.")] = False,
) -> None:
    """Write MLCommons Croissant 1.0 JSON-LD (per-file sha256) for one dataset of a verified pack."""
    from .croissant import export_croissant

    trust = _trust(key, trust_dir)
    text = export_croissant(pack_file, dataset, output, trust=trust, threshold=threshold,
                            allow_unsigned=allow_unsigned, base_url=base_url, force=force)
    if output is None:
        typer.echo(text, nl=False)
    else:
        typer.echo(f"wrote {output}", err=True)


def _print_error(err: MlpackError | None) -> None:
    if err is None:
        return
    where = f" ({err.member})" if err.member and err.member not in err.message else ""
    print(f"mlpack: error: [{err.code}] {err.message}{where}", file=sys.stderr)
    if err.hint:
        print(f"mlpack: hint: {err.hint}", file=sys.stderr)


def _on_sigterm(signum: int, frame: Any) -> NoReturn:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``mlpack`` command; returns the exit code."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        result = app(args=argv, prog_name="mlpack", standalone_mode=False)
        if result == EXIT_INTERRUPTED:  # typer returns Ctrl-C as exit code 130
            _print_error(Interrupted("interrupted; no partial output was left behind"))
        return result if isinstance(result, int) else 0
    except MlpackError as err:
        _print_error(err)
        return err.exit_code
    except click.exceptions.Exit as exit_:
        return exit_.exit_code
    except (KeyboardInterrupt, click.exceptions.Abort):
        _print_error(Interrupted("interrupted; no partial output was left behind"))
        return EXIT_INTERRUPTED
    except click.exceptions.ClickException as err:
        err.show()
        return err.exit_code
    except BrokenPipeError:
        return EXIT_FAILED


def run() -> None:
    sys.exit(main())

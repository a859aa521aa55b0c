"""The S3 pack store (spec/distribution.md, "S3 pack store") against a real moto_server.

Round trip byte-identical, the content-addressed layout, dedup (a second push sends one
file blob), pull by digest, faults (unknown tag, tampered blob, unreachable endpoint),
and the CLI. ``mlpack build`` with s3:// datasets is covered by
tests/test_build.py::test_s3_referenced_and_included_datasets.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from mlpack import keys, store
from mlpack.errors import MlpackError
from mlpack.pack import pack_directory
from tests._registry import free_port
from tests.conftest import KeyPair, write_model


@pytest.fixture
def packed(tmp_path: Path, keypair: KeyPair) -> Path:
    out = tmp_path / "model.mlpack"
    pack_directory(write_model(tmp_path / "model"), out, key=keys.load_signing_key(keypair.private))
    return out


def _trust(keypair: KeyPair) -> list[keys.PublicKey]:
    return keys.load_trust([str(keypair.public)], [])


def _objects(client, bucket: str) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"]: client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed}


def _one_line_error(err: str, code: str) -> None:
    lines = [line for line in err.splitlines() if line.startswith("mlpack: error:")]
    assert len(lines) == 1 and f"[{code}]" in lines[0], err


def test_round_trip_and_layout(s3, packed: Path, keypair: KeyPair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    client, bucket = s3
    ref = f"s3://{bucket}/models/digits:1.2.0"
    pushed = store.push(packed, ref)
    objects = _objects(client, bucket)
    # every object under blobs/ is named by the sha256 of its content
    blobs = {k: v for k, v in objects.items() if k.startswith("models/digits/blobs/sha256/")}
    assert all(k.rsplit("/", 1)[1] == hashlib.sha256(v).hexdigest() for k, v in blobs.items())
    assert objects["models/digits/refs/1.2.0"] == f"{pushed.digest}\n".encode()
    manifest = json.loads(blobs[f"models/digits/blobs/sha256/{pushed.digest[7:]}"])
    assert manifest["artifactType"] == "application/vnd.mlpack.pack.v1"
    assert set(objects) == set(blobs) | {"models/digits/refs/1.2.0"}
    assert len(blobs) == len(manifest["layers"]) + 1  # each member once (mlpack.json is also the config)
    out = tmp_path / "back.mlpack"
    result = store.pull(ref, out, trust=_trust(keypair))
    assert result.report.ok and out.read_bytes() == packed.read_bytes()
    by_digest = tmp_path / "by-digest.mlpack"
    store.pull(pushed.reference, by_digest, trust=_trust(keypair))
    assert pushed.reference == f"s3://{bucket}/models/digits@{pushed.digest}"
    assert by_digest.read_bytes() == packed.read_bytes()


def test_same_digest_as_in_a_registry(s3, packed: Path) -> None:  # type: ignore[no-untyped-def]
    from mlpack._transfer import read_pack
    from mlpack.verify import _open

    _, bucket = s3
    fd, size = _open(packed)
    image = read_pack(fd, size, str(packed))
    assert store.push(packed, f"s3://{bucket}/p").digest == image.digest


def test_second_push_sends_only_the_changed_file(s3, tmp_path: Path, keypair: KeyPair) -> None:  # type: ignore[no-untyped-def]
    client, bucket = s3
    key = keys.load_signing_key(keypair.private)
    model = write_model(tmp_path / "model")
    first, second = tmp_path / "1.mlpack", tmp_path / "2.mlpack"
    pack_directory(model, first, key=key)
    (model / "config.json").write_text('{"hidden": 32}\n')
    pack_directory(model, second, key=key)
    store.push(first, f"s3://{bucket}/m:1")
    before = set(_objects(client, bucket))
    result = store.push(second, f"s3://{bucket}/m:2")
    new = set(_objects(client, bucket)) - before
    changed = hashlib.sha256(b'{"hidden": 32}\n').hexdigest()
    assert f"m/blobs/sha256/{changed}" in new
    assert result.uploaded == (".mlpack/model.sig", "config.json", "manifest")
    # counted in the bucket: the file, the signature, the manifest, and the new tag
    assert len(new) == 4 and "m/refs/2" in new


def test_cli_push_pull_and_verify(s3, packed: Path, keypair: KeyPair, other_keypair: KeyPair,  # type: ignore[no-untyped-def]
                                  tmp_path: Path, cli, moto_endpoint: str) -> None:
    from mlpack.cli import _remote_verify

    _, bucket = s3
    ref = f"s3://{bucket}/team/digits:1.0"
    result = cli("push", packed, ref, "--endpoint", moto_endpoint)
    assert result.code == 0, result.err
    assert "digest: sha256:" in result.out
    out = tmp_path / "out.mlpack"
    result = cli("pull", ref, "-o", out, "--key", keypair.public)
    assert result.code == 0 and out.read_bytes() == packed.read_bytes()
    result = cli("pull", ref, "-o", tmp_path / "x.mlpack", "--key", other_keypair.public)
    assert result.code == 1 and not (tmp_path / "x.mlpack").exists()
    _one_line_error(result.err, "E_UNTRUSTED_KEY")
    report = _remote_verify(Path(ref), _trust(keypair), 1, False)
    assert report.ok and report.pack == ref


def test_unknown_tag_digest_and_bucket(s3, packed: Path, keypair: KeyPair, tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    _, bucket = s3
    store.push(packed, f"s3://{bucket}/m:1")
    out = tmp_path / "out.mlpack"
    for ref in (f"s3://{bucket}/m:2", f"s3://{bucket}/m@sha256:{'0' * 64}", "s3://no-such-bucket-x/m:1"):
        result = cli("pull", ref, "-o", out, "--key", keypair.public)
        assert result.code == 2 and not out.exists(), result.err
        _one_line_error(result.err, "E_NOT_FOUND")


def test_tampered_blob_fails_then_repair(s3, packed: Path, keypair: KeyPair, tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    client, bucket = s3
    ref = f"s3://{bucket}/m:1"
    store.push(packed, ref)
    blob = f"m/blobs/sha256/{hashlib.sha256(b'id,label' + bytes([10]) + b'1,cat' + bytes([10])).hexdigest()}"
    client.put_object(Bucket=bucket, Key=blob, Body=b"id,label\n1,cow\n")
    out = tmp_path / "out.mlpack"
    result = cli("pull", ref, "-o", out, "--key", keypair.public)
    assert result.code == 1 and "data/labels.csv" in result.err and not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    _one_line_error(result.err, "E_DIGEST")
    client.delete_object(Bucket=bucket, Key=blob)  # the repair the hint names
    assert "data/labels.csv" in store.push(packed, ref).uploaded
    assert cli("pull", ref, "-o", out, "--key", keypair.public).code == 0
    assert out.read_bytes() == packed.read_bytes()


def test_unreachable_endpoint(packed: Path, keypair: KeyPair, tmp_path: Path, cli,  # type: ignore[no-untyped-def]
                              monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                        "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}.items():
        monkeypatch.setenv(name, value)
    endpoint = f"http://127.0.0.1:{free_port()}"
    result = cli("push", packed, "s3://bucket/m:1", "--endpoint", endpoint)
    assert result.code == 3
    _one_line_error(result.err, "E_NETWORK")
    out = tmp_path / "out.mlpack"
    result = cli("pull", "s3://bucket/m:1", "-o", out, "--key", keypair.public, "--endpoint", endpoint)
    assert result.code == 3 and not out.exists()


@pytest.mark.parametrize("ref", ["s3://", "s3://Bad_Bucket/x", "s3://bucket/a//b:1", "s3://bucket/x:bad tag",
                                 "s3://bucket/x@sha256:12"])
def test_bad_references(ref: str) -> None:
    with pytest.raises(MlpackError) as info:
        store.StoreReference.parse(ref)
    assert info.value.code == "E_USAGE" and info.value.exit_code == 2


def test_reference_grammar() -> None:
    ref = store.StoreReference.parse("s3://bucket/a/b:1.0")
    assert (ref.bucket, ref.prefix, ref.tag, ref.root) == ("bucket", "a/b", "1.0", "bucket/a/b")
    assert store.StoreReference.parse("s3://bucket/a").tag == "latest"
    assert store.StoreReference.parse("s3://bucket:v2").root == "bucket"
    assert str(store.StoreReference.parse("s3://bucket/a@sha256:" + "a" * 64)) == "s3://bucket/a@sha256:" + "a" * 64

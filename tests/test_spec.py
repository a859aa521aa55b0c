"""spec/ is normative: every JSON example validates, real outputs validate, codes are documented."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import jsonschema
import pytest

from mlpack import keys
from mlpack.inspection import inspect_pack
from mlpack.pack import pack_directory
from mlpack.verify import verify_pack

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "spec"
SCHEMAS = {p.name.removesuffix(".schema.json"): p for p in (SPEC / "schema").glob("*.schema.json")}
FENCE = re.compile(r"^```json schema=([\w-]+)\n(.*?)^```", re.M | re.S)


def examples() -> list[tuple[str, str, str]]:
    found = []
    for md in sorted(SPEC.glob("*.md")):
        for i, m in enumerate(FENCE.finditer(md.read_text())):
            found.append((f"{md.name}#{i}", m.group(1), m.group(2)))
    return found


def validator(name: str) -> jsonschema.Draft202012Validator:
    from mlpack import schema

    return jsonschema.Draft202012Validator(json.loads(SCHEMAS[name].read_text()),
                                           format_checker=jsonschema.FormatChecker(),
                                           registry=schema.registry())


def test_every_schema_is_valid_2020_12() -> None:
    from mlpack.schema import SCHEMA_NAMES

    assert set(SCHEMAS) == set(SCHEMA_NAMES)
    for path in SCHEMAS.values():
        schema = json.loads(path.read_text())
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        jsonschema.Draft202012Validator.check_schema(schema)


def test_packaged_schemas_equal_the_spec() -> None:
    packaged = REPO / "mlpack" / "schemas"
    assert sorted(p.name for p in packaged.glob("*.json")) == sorted(p.name for p in SCHEMAS.values())
    for path in SCHEMAS.values():
        assert (packaged / path.name).read_bytes() == path.read_bytes(), path.name


def test_spec_has_examples_of_every_document() -> None:
    assert {kind for _, kind, _ in examples()} == set(SCHEMAS)


@pytest.mark.parametrize(("where", "kind", "text"), examples(), ids=[e[0] for e in examples()])
def test_spec_example_validates(where: str, kind: str, text: str) -> None:
    doc = json.loads(text)
    errors = sorted(validator(kind).iter_errors(doc), key=str)
    assert not errors, f"{where}: {errors[0].message}"
    if kind == "manifest":
        from mlpack.manifest import Manifest

        assert Manifest.from_dict(doc).to_dict() == {k: v for k, v in doc.items()
                                                      if k in Manifest.from_dict(doc).to_dict()}
    if kind == "statement":
        from mlpack.signing import parse_statement

        parse_statement(json.dumps(doc).encode())  # root digest, order, names: all consistent


@pytest.fixture
def real_pack(model_dir: Path, tmp_path: Path, keypair) -> Path:  # type: ignore[no-untyped-def]
    out = tmp_path / "m.mlpack"
    pack_directory(model_dir, out, key=keys.load_signing_key(keypair.private))
    return out


def test_real_documents_validate(real_pack: Path, keypair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from mlpack.verify import unpack_pack

    trust = keys.load_trust([str(keypair.public)], [])
    out = tmp_path / "out"
    report = unpack_pack(real_pack, out, trust=trust)
    bundle = json.loads((out / ".mlpack" / "model.sig").read_text())
    validator("bundle").validate(bundle)
    validator("statement").validate(json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"])))
    validator("manifest").validate(json.loads((out / "mlpack.json").read_text()))
    validator("report").validate(report.to_dict())
    validator("inspect").validate(inspect_pack(real_pack).to_dict())


def test_failed_and_unsigned_reports_validate(real_pack: Path, keypair, model_dir: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    trust = keys.load_trust([str(keypair.public)], [])
    data = bytearray(real_pack.read_bytes())
    data[data.index(b"id,label")] ^= 1
    real_pack.write_bytes(bytes(data))
    validator("report").validate(verify_pack(real_pack, trust=trust).to_dict())
    real_pack.write_bytes(b"not a pack" * 100)
    validator("report").validate(verify_pack(real_pack, trust=trust).to_dict())
    unsigned = tmp_path / "u.mlpack"
    pack_directory(model_dir, unsigned, key=None)
    validator("report").validate(verify_pack(unsigned, trust=(), allow_unsigned=True).to_dict())
    validator("inspect").validate(inspect_pack(unsigned).to_dict())


def _codes_in_source() -> set[str]:
    found: set[str] = set()
    for path in (REPO / "mlpack").glob("*.py"):
        found |= set(re.findall(r'"(E_[A-Z_]+)"', path.read_text()))
    return found


def test_every_error_code_is_documented_and_exists() -> None:
    table = (SPEC / "verification.md").read_text()
    documented = set(re.findall(r"^\|\s*`(E_[A-Z_]+)`", table, re.M))
    used = _codes_in_source() - {"E_FAILED"}  # the abstract base class's placeholder
    assert used <= documented, f"undocumented: {sorted(used - documented)}"
    assert documented <= used, f"documented but never raised: {sorted(documented - used)}"
    schema_codes = set(json.loads(SCHEMAS["report"].read_text())["$defs"]["errorCode"]["enum"])
    assert documented <= schema_codes


def test_schema_module_reports_paths() -> None:
    from mlpack import schema

    assert schema.validate({"mlpack": "1.0", "name": "x", "files": {"count": 0, "size": 0}}, "manifest") == []
    problems = schema.validate({"mlpack": "1.0", "name": "x", "files": {"count": -1, "size": 0}}, "manifest")
    assert problems and problems[0].startswith("$.files.count:")


def test_pack_refuses_a_base_manifest_the_schema_rejects(model_dir: Path, tmp_path: Path) -> None:
    from mlpack.errors import VerificationError

    (model_dir / "mlpack.json").write_text(json.dumps(
        {"mlpack": "1.0", "name": "x", "files": {"count": 0, "size": 0}, "license": 7}))
    with pytest.raises(VerificationError) as info:
        pack_directory(model_dir, tmp_path / "m.mlpack", key=None)
    assert info.value.code == "E_MANIFEST" and "license" in info.value.message

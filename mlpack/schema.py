"""The JSON Schemas of spec/schema/, shipped with the package (tests keep the copies equal).

    >>> problems = validate({"mlpack": "1.0"}, "manifest")
    >>> problems[0]
    "$: 'name' is a required property"
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["SCHEMA_NAMES", "load", "registry", "validate"]

SCHEMA_NAMES = tuple(sorted(
    p.name.removesuffix(".schema.json")
    for p in resources.files("mlpack").joinpath("schemas").iterdir()  # type: ignore[attr-defined]
    if p.name.endswith(".schema.json")
))


@cache
def load(name: str) -> dict[str, Any]:
    """The schema ``spec/schema/<name>.schema.json`` as a dict."""
    if name not in SCHEMA_NAMES:
        raise ValueError(f"unknown schema {name!r}")
    text = resources.files("mlpack").joinpath("schemas", f"{name}.schema.json").read_text()
    return json.loads(text)  # type: ignore[no-any-return]


@cache
def registry() -> Any:
    """Every packaged schema under its ``$id``, so cross-document ``$ref``s resolve offline."""
    from referencing import Registry, Resource

    return Registry().with_resources(  # type: ignore[call-arg]
        (load(n)["$id"], Resource.from_contents(load(n))) for n in SCHEMA_NAMES)


def validate(document: Any, name: str) -> list[str]:
    """Every violation of schema ``name``, as ``"$.path: message"`` lines (empty: valid)."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(load(name), registry=registry())
    problems = []
    for error in sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path)):
        path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        problems.append(f"{path}: {error.message}")
    return problems

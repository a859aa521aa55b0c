"""mlpack.jsonstrict: hostile JSON is refused, canonical bytes are stable."""

from __future__ import annotations

import pytest

from mlpack import jsonstrict
from mlpack.errors import VerificationError


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b'{"a":1,"a":2}', "E_MANIFEST"),
        (b"[NaN]", "E_MANIFEST"),
        (b"[Infinity]", "E_MANIFEST"),
        (b"[-Infinity]", "E_MANIFEST"),
        (b"[" * 17 + b"]" * 17, "E_MANIFEST"),
        (b"[" * 200000 + b"]" * 200000, "E_MANIFEST"),  # would overflow the stack
        (b"\xff", "E_MANIFEST"),
        (b"{", "E_MANIFEST"),
        (b" " * 101, "E_LIMIT"),
    ],
)
def test_refused(data: bytes, code: str) -> None:
    with pytest.raises(VerificationError) as info:
        jsonstrict.loads(data, what="doc", max_size=100 if code == "E_LIMIT" else len(data))
    assert info.value.code == code


def test_accepts_depth_at_limit() -> None:
    assert jsonstrict.loads(b"[" * 16 + b"]" * 16, what="doc", max_size=100) is not None


def test_dumps_is_canonical() -> None:
    assert jsonstrict.dumps({"b": [1, "é"], "a": {"y": True, "x": None}}) == \
        '{"a":{"x":null,"y":true},"b":[1,"é"]}'.encode()
    with pytest.raises(ValueError):
        jsonstrict.dumps({"x": float("nan")})


def test_lone_surrogates_refused_pairs_allowed() -> None:
    with pytest.raises(VerificationError):
        jsonstrict.loads(b'{"name": "a\\ud800b"}', what="doc", max_size=100)
    with pytest.raises(VerificationError):
        jsonstrict.loads(b'{"\\udc00": 1}', what="doc", max_size=100)
    assert jsonstrict.loads(b'["\\ud83d\\ude00"]', what="doc", max_size=100) == ["\U0001f600"]

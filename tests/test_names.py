"""mlpack.names: portable names; the same rules apply to signed names."""

from __future__ import annotations

import pytest

from mlpack.errors import VerificationError
from mlpack.names import check_name, check_names


@pytest.mark.parametrize("name", ["a", "model.safetensors", "dir/sub/file.txt", "café.txt", "日本/データ.bin",
                                  "COM10.txt", "console.log", "a" * 255, "/".join(["d"] * 32)])
def test_portable_names_pass(name: str) -> None:
    check_name(name)


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("../evil", "E_PATH"), ("/tmp/evil", "E_PATH"), ("a/../../evil", "E_PATH"), ("a/./b", "E_PATH"),
        ("a//b", "E_PATH"), ("a/", "E_PATH"), ("..\\..\\evil", "E_PATH"), ("C:\\x", "E_PATH"),
        ("C:x", "E_PATH"), ("", "E_PATH"), ("x:stream", "E_PATH"), ("dir/ab:stream", "E_PATH"), ("a\0b", "E_NAME"), ("a\nb", "E_NAME"),
        ("a\x7fb", "E_NAME"), ("CON", "E_NAME"), ("aux.txt", "E_NAME"), ("dir/lpt1", "E_NAME"),
        ("name.", "E_NAME"), ("name ", "E_NAME"), ("a*b", "E_NAME"), ("a?b", "E_NAME"), ("a|b", "E_NAME"),
        ("a" * 256, "E_LIMIT"), ("/".join(["d"] * 33), "E_LIMIT"), ("d/" * 520 + "x", "E_LIMIT"),
    ],
)
def test_hostile_names_fail(name: str, code: str) -> None:
    with pytest.raises(VerificationError) as info:
        check_name(name)
    assert info.value.code == code
    assert info.value.member == name


@pytest.mark.parametrize(
    ("names", "code"),
    [
        (["Model.bin", "model.bin"], "E_NAME_COLLISION"),
        (["caf\u00e9.txt", "cafe\u0301.txt"], "E_NAME_COLLISION"),  # NFC vs NFD
        (["a", "a/b"], "E_NAME_COLLISION"),  # a file that is also a directory
        (["A", "a/b"], "E_NAME_COLLISION"),
        (["x", "x"], "E_DUPLICATE"),
    ],
)
def test_collisions(names: list[str], code: str) -> None:
    with pytest.raises(VerificationError) as info:
        check_names(names)
    assert info.value.code == code


def test_distinct_names_pass() -> None:
    check_names(["a/b", "a/c", "ab", "a.b/c"])

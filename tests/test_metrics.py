"""mlpack.metrics: the claim check (within), the section built from recipe and run (merge)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlpack.errors import UsageError, VerificationError
from mlpack.metrics import ExpectedMetric, Tolerance, merge, parse_section, within

REPO = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((REPO / "spec" / "schema" / "metrics.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
ACC = {"name": "accuracy", "dataset": "digits-test", "split": "test", "direction": "higher",
       "tolerance": {"absolute": 0.005, "relative": 0.01}}
LOGGED = {"name": "accuracy", "value": 0.9689, "dataset": "digits-test", "split": "test"}


def claim(value: float, *, absolute: float | None = None, relative: float | None = None,
          direction: Any = None) -> ExpectedMetric:
    tol = None if absolute is None and relative is None else Tolerance(absolute=absolute,
                                                                        relative=relative)
    return ExpectedMetric(name="m", value=value, tolerance=tol, direction=direction)


def one_line(err: BaseException) -> str:
    text = str(err)
    assert "\n" not in text and getattr(err, "hint", None)
    return text


# -- within ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("c", "observed", "outcome"), [
    (claim(0.9689, absolute=0.005), 0.9689, "within"),
    (claim(0.9689, absolute=0.005), 0.9700, "within"),
    (claim(0.9689, absolute=0.005), 0.9739, "within"),      # 0.9739-0.9689 > 0.005 in binary
    (claim(0.9689, absolute=0.005), 0.9740, "outside"),
    (claim(0.9689, absolute=0.005), 0.9630, "outside"),
    (claim(100.0, relative=0.01), 101.0, "within"),
    (claim(100.0, relative=0.01), 101.5, "outside"),
    # both bounds: the larger one applies (within either)
    (claim(100.0, absolute=0.5, relative=0.01), 100.9, "within"),
    (claim(0.001, absolute=0.01, relative=0.01), 0.0105, "within"),
    (claim(0.9689, absolute=0.005, direction="higher"), 0.99, "better"),
    (claim(0.9689, absolute=0.005, direction="higher"), 0.95, "worse"),
    (claim(0.30, absolute=0.01, direction="lower"), 0.20, "better"),
    (claim(0.30, absolute=0.01, direction="lower"), 0.40, "worse"),
    (claim(0.30, absolute=0.01, direction="lower"), 0.305, "within"),
    # a zero expected value with only a relative tolerance needs an exact zero
    (claim(0.0, relative=0.5), 0.0, "within"),
    (claim(0.0, relative=0.5), 1e-12, "outside"),
    (claim(0.0, absolute=1e-9, relative=0.5), 1e-12, "within"),
    # observations that are not finite numbers fail
    (claim(0.9, absolute=0.1), math.nan, "invalid"),
    (claim(0.9, absolute=0.1), math.inf, "invalid"),
    (claim(0.9, absolute=0.1), True, "invalid"),
    (claim(0.9, absolute=0.1), "0.9", "invalid"),
    (claim(0.9, absolute=0.1), None, "invalid"),
    # no tolerance: informational, never fails
    (claim(0.9), 0.1, "informational"),
])
def test_within_outcomes(c: ExpectedMetric, observed: object, outcome: str) -> None:
    v = within(c, observed)
    assert v.outcome == outcome
    assert v.passed is (outcome in ("within", "better", "informational"))


def test_within_reports_differences() -> None:
    v = within(claim(0.5, absolute=0.1, relative=0.5), 0.6)
    assert v.difference == pytest.approx(0.1) and v.relative_difference == pytest.approx(0.2)
    assert v.allowed == 0.25 and v.to_dict()["passed"] is True
    zero = within(claim(0.0, absolute=0.1), 0.05)
    assert zero.relative_difference is None and "relative_difference" not in zero.to_dict()
    bad = within(claim(0.9, absolute=0.1), math.nan)
    assert bad.observed is None and bad.difference is None and not bad.passed


def test_within_accepts_a_section_entry() -> None:
    section = merge([ACC], [LOGGED])
    assert within(section["metrics"][0], 0.9711).outcome == "within"
    assert within(section["metrics"][0], 0.90).outcome == "worse"


@given(e=st.floats(-1e6, 1e6), o=st.floats(-1e6, 1e6), a=st.floats(0, 1e3), r=st.floats(0, 10),
       extra=st.floats(0, 1e3))
def test_a_wider_tolerance_never_fails_what_a_narrower_one_passes(e: float, o: float, a: float,
                                                                  r: float, extra: float) -> None:
    """Monotonicity: passing with (a, r) implies passing with (a + extra, r) and (a, r + 1)."""
    if within(claim(e, absolute=a, relative=r), o).passed:
        assert within(claim(e, absolute=a + extra, relative=r), o).passed
        assert within(claim(e, absolute=a, relative=r + 1), o).passed


@given(e=st.floats(-1e6, 1e6), o=st.floats(-1e6, 1e6), a=st.floats(0, 1e3))
def test_direction_only_turns_failures_on_the_good_side_into_passes(e: float, o: float,
                                                                    a: float) -> None:
    plain = within(claim(e, absolute=a), o)
    for direction, good in (("higher", o > e), ("lower", o < e)):
        directed = within(claim(e, absolute=a, direction=direction), o)
        if plain.passed:
            assert directed.outcome == "within"
        else:
            assert directed.outcome == ("better" if good else "worse")


# -- merge ----------------------------------------------------------------------------------


def test_merge_takes_the_logged_value_and_validates() -> None:
    section = merge([ACC], [LOGGED])
    VALIDATOR.validate(section)
    assert section == {"metrics": [{
        "name": "accuracy", "value": 0.9689, "dataset": "digits-test", "split": "test",
        "direction": "higher", "tolerance": {"absolute": 0.005, "relative": 0.01},
        "status": "claimed", "source": "run"}]}


def test_merge_keeps_a_recipe_value_and_the_logged_one() -> None:
    entry = merge([{**ACC, "value": 0.965}], [LOGGED])["metrics"][0]
    assert entry["value"] == 0.965 and entry["source"] == "recipe" and entry["logged"] == 0.9689
    # claiming less than achieved (higher is better) is consistent even far outside tolerance
    entry = merge([{**ACC, "value": 0.90}], [LOGGED])["metrics"][0]
    assert entry["value"] == 0.90 and entry["logged"] == 0.9689
    # no run at all: the recipe value stands alone
    alone = merge([{**ACC, "value": 0.97}], [])["metrics"][0]
    assert alone["source"] == "recipe" and "logged" not in alone


def test_merge_refuses_a_claim_its_own_run_contradicts() -> None:
    with pytest.raises(UsageError) as info:
        merge([{**ACC, "value": 0.99}], [LOGGED])
    assert info.value.code == "E_RECIPE"
    assert "metrics[0].value" in one_line(info.value) and "0.9689" in info.value.message


def test_merge_needs_a_value_from_somewhere() -> None:
    with pytest.raises(UsageError) as info:
        merge([ACC], [{"name": "loss", "value": 0.1}])
    assert info.value.code == "E_RECIPE"
    assert one_line(info.value).startswith("[E_RECIPE] mlpack.toml: metrics[0].value")
    assert "accuracy on digits-test/test" in info.value.message


def test_merge_matches_by_dataset_and_split() -> None:
    logged = [LOGGED, {**LOGGED, "dataset": "digits-val", "value": 0.97},
              {**LOGGED, "split": "train", "value": 1.0}]
    section = merge([ACC], logged)["metrics"]
    assert section[0]["value"] == 0.9689
    # the two unmatched logged metrics follow, informational, in the order logged
    assert [(m["dataset"], m["split"], m["value"]) for m in section[1:]] == [
        ("digits-val", "test", 0.97), ("digits-test", "train", 1.0)]
    assert all("tolerance" not in m and m["source"] == "run" for m in section[1:])
    VALIDATOR.validate({"metrics": section})


def test_merge_refuses_an_ambiguous_entry() -> None:
    loose = {"name": "accuracy", "tolerance": {"absolute": 0.01}}
    with pytest.raises(UsageError) as info:
        merge([loose], [LOGGED, {**LOGGED, "dataset": "digits-val"}])
    assert info.value.code == "E_RECIPE" and "matches 2" in one_line(info.value)
    # with one candidate the recipe's missing fields come from the run
    entry = merge([loose], [LOGGED])["metrics"][0]
    assert entry["dataset"] == "digits-test" and entry["split"] == "test"


@pytest.mark.parametrize(("entry", "where"), [
    ({"name": "accuracy", "value": 0.9}, "metrics[0].tolerance"),
    ({**ACC, "tolerance": {}}, "metrics[0].tolerance"),
    ({**ACC, "tolerance": {"absolute": -0.1}}, "metrics[0].tolerance.absolute"),
    ({**ACC, "tolerance": {"absolute": math.nan}}, "metrics[0].tolerance.absolute"),
    ({**ACC, "tolerance": {"percent": 1}}, "metrics[0].tolerance.percent"),
    ({**ACC, "value": True}, "metrics[0].value"),
    ({**ACC, "value": "0.9"}, "metrics[0].value"),
    ({**ACC, "direction": "up"}, "metrics[0].direction"),
    ({**ACC, "dataset": "bad name"}, "metrics[0].dataset"),
    ({**ACC, "name": ""}, "metrics[0].name"),
    ({**ACC, "name": "a\nb"}, "metrics[0].name"),
    ({**ACC, "unit": "%"}, "metrics[0].unit"),
])
def test_merge_names_the_bad_key(entry: dict[str, Any], where: str) -> None:
    with pytest.raises(UsageError) as info:
        merge([entry], [LOGGED])
    assert info.value.code == "E_RECIPE"
    assert one_line(info.value).startswith(f"[E_RECIPE] mlpack.toml: {where} ")


def test_merge_refuses_duplicates_and_a_damaged_run() -> None:
    with pytest.raises(UsageError) as info:
        merge([ACC, {**ACC, "value": 0.9}], [LOGGED])
    assert info.value.code == "E_RECIPE" and "metrics[1]" in one_line(info.value)
    with pytest.raises(UsageError) as info:
        merge([ACC], [{"name": "accuracy", "value": math.nan}])
    assert info.value.code == "E_INPUT" and "run.json: metrics[0].value" in one_line(info.value)


def test_merge_with_nothing() -> None:
    assert merge([], []) == {"metrics": []}
    VALIDATOR.validate(merge([], []))


def test_merge_is_pure() -> None:
    recipe, logged = [dict(ACC)], [dict(LOGGED)]
    before = json.dumps([recipe, logged], sort_keys=True)
    assert merge(recipe, logged) == merge(recipe, logged)
    assert json.dumps([recipe, logged], sort_keys=True) == before


# -- reading a section ----------------------------------------------------------------------


def spec_examples() -> list[dict[str, Any]]:
    text = (REPO / "spec" / "metrics.md").read_text()
    return [json.loads(m) for m in re.findall(r"```json schema=metrics\n(.*?)```", text, re.DOTALL)]


@pytest.mark.parametrize("doc", spec_examples())
def test_spec_examples_parse_and_round_trip(doc: dict[str, Any]) -> None:
    claims = parse_section(doc)
    assert {"metrics": [c.to_dict() for c in claims]} == doc


def test_parse_section_refuses_what_the_schema_refuses() -> None:
    good = merge([ACC], [LOGGED])
    bad_docs = [
        {"metrics": [{**good["metrics"][0], "value": "x"}]},
        {"metrics": [{**good["metrics"][0], "status": "reproduced"}]},
        {"metrics": [{**good["metrics"][0], "tolerance": {}}]},
        {"metrics": [{k: v for k, v in good["metrics"][0].items() if k != "source"}]},
        {"metrics": {}},
    ]
    for doc in bad_docs:
        assert list(VALIDATOR.iter_errors(doc)), doc
        with pytest.raises(VerificationError) as info:
            parse_section(doc)
        assert info.value.code == "E_MANIFEST" and "metrics.metrics" in str(info.value)
    dup = {"metrics": [good["metrics"][0], good["metrics"][0]]}
    with pytest.raises(VerificationError) as info:
        parse_section(dup)
    assert "repeats accuracy on digits-test/test" in str(info.value)

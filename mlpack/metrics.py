"""The ``metrics`` section of mlpack.json (spec/metrics.md): expected metrics and tolerances.

Every metric in a pack is a *claim*: the value the author says the model reaches on a
data set, with the tolerance within which a re-run counts as reproducing it. Pure
functions only: :func:`merge` builds the section from the recipe's ``[[metrics]]`` and
the metrics the training run logged; :func:`within` compares one claim with an observed
value.

    >>> section = merge([{"name": "accuracy", "dataset": "digits-test", "direction": "higher",
    ...                   "tolerance": {"absolute": 0.005}}],
    ...                 [{"name": "accuracy", "value": 0.9689, "dataset": "digits-test"}])
    >>> v = within(section["metrics"][0], 0.9711)
    >>> v.outcome, v.passed
    ('within', True)
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from .errors import UsageError, VerificationError

__all__ = [
    "DIRECTIONS",
    "NAME_RE",
    "ExpectedMetric",
    "Tolerance",
    "Verdict",
    "check_logged",
    "merge",
    "parse_section",
    "within",
]

Direction = Literal["higher", "lower"]
Source = Literal["recipe", "run"]
Outcome = Literal["within", "better", "worse", "outside", "invalid", "informational"]
DIRECTIONS = ("higher", "lower")
NAME_RE = re.compile(r"[^\x00-\x1f\x7f]{1,200}")
"""Metric and split names: 1 to 200 characters, no control characters."""
DATASET_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
"""Data set names, as in the recipe's ``[[datasets]]``."""
SLACK = 1e-9
"""Relative slack when a difference equals the tolerance (0.9739 - 0.9689 > 0.005 in binary)."""
PASSING: frozenset[str] = frozenset(("within", "better", "informational"))


def _number(v: object) -> bool:
    """A finite real number that is not a bool (TOML and JSON keep the two apart)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


@dataclass(frozen=True, kw_only=True, slots=True)
class Tolerance:
    """How far a re-run may land from the claimed value; at least one bound is given."""

    absolute: float | None = None
    """Largest allowed ``|observed - expected|``."""
    relative: float | None = None
    """Largest allowed ``|observed - expected| / |expected|``."""

    def bound(self, expected: float) -> float:
        """The allowed difference: the larger of the two bounds (pass if within either)."""
        return max(self.absolute or 0.0, (self.relative or 0.0) * abs(expected))

    def to_dict(self) -> dict[str, float]:
        out = {}
        if self.absolute is not None:
            out["absolute"] = self.absolute
        if self.relative is not None:
            out["relative"] = self.relative
        return out


@dataclass(frozen=True, kw_only=True, slots=True)
class ExpectedMetric:
    """One entry of the section: a claimed value and how to check it."""

    name: str
    value: float
    dataset: str | None = None
    split: str | None = None
    direction: Direction | None = None
    tolerance: Tolerance | None = None
    """None: informational, never fails a check."""
    status: Literal["claimed"] = "claimed"
    source: Source = "recipe"
    """Where ``value`` came from: the recipe's ``value``, or the value the run logged."""
    logged: float | None = None
    """The value the training run logged, when ``source`` is ``"recipe"`` and the run logged it."""

    @classmethod
    def from_dict(cls, d: object, where: str = "metrics[0]") -> ExpectedMetric:
        """Parse a section entry; ``E_MANIFEST`` naming the key on any violation."""
        def bad(key: str, why: str) -> VerificationError:
            return VerificationError(f"mlpack.json: metrics.{where}{key} {why}",
                                     code="E_MANIFEST", member="mlpack.json")

        if not isinstance(d, dict):
            raise bad("", "must be an object")
        for key in ("name", "value", "status", "source"):
            if key not in d:
                raise bad(f".{key}", "is required")
        problem = _entry_problem(d)
        if problem:
            raise bad(*problem)
        tol = d.get("tolerance")
        return cls(name=d["name"], value=float(d["value"]), dataset=d.get("dataset"),
                   split=d.get("split"), direction=d.get("direction"),
                   tolerance=None if tol is None else Tolerance(
                       absolute=_opt_float(tol.get("absolute")),
                       relative=_opt_float(tol.get("relative"))),
                   status=d["status"], source=d["source"], logged=_opt_float(d.get("logged")))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "value": self.value, "status": self.status,
                               "source": self.source}
        for key in ("dataset", "split", "direction", "logged"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.tolerance is not None:
            out["tolerance"] = self.tolerance.to_dict()
        return out


def _opt_float(v: Any) -> float | None:
    return None if v is None else float(v)


def _entry_problem(d: Mapping[str, Any]) -> tuple[str, str] | None:
    """(key suffix, what is wrong) for the first invalid field of an entry, else None."""
    if not isinstance(d.get("name"), str) or not NAME_RE.fullmatch(d["name"]):
        return ".name", "must be 1 to 200 characters without control characters"
    if not _number(d.get("value")):
        return ".value", "must be a finite number"
    if d.get("status") not in ("claimed", None):
        return ".status", 'must be "claimed"'
    if d.get("source") not in ("recipe", "run", None):
        return ".source", 'must be "recipe" or "run"'
    for key, rx in (("dataset", DATASET_RE), ("split", NAME_RE)):
        if key in d and (not isinstance(d[key], str) or not rx.fullmatch(d[key])):
            return f".{key}", ("must be 1 to 200 characters without control characters"
                               if rx is NAME_RE else f"must match {rx.pattern}")
    if "direction" in d and d["direction"] not in DIRECTIONS:
        return ".direction", 'must be "higher" or "lower"'
    if "logged" in d and not _number(d["logged"]):
        return ".logged", "must be a finite number"
    if "tolerance" in d:
        return _tolerance_problem(d["tolerance"])
    return None


def _tolerance_problem(tol: object) -> tuple[str, str] | None:
    if not isinstance(tol, Mapping) or not tol:
        return ".tolerance", "must be a table with absolute and/or relative"
    for key, v in tol.items():
        if key not in ("absolute", "relative"):
            return f".tolerance.{key}", "is not a tolerance (use absolute or relative)"
        if not _number(v) or v < 0:
            return f".tolerance.{key}", "must be a finite number >= 0"
    return None


@dataclass(frozen=True, kw_only=True, slots=True)
class Verdict:
    """One claim compared with one observed value."""

    name: str
    expected: float
    observed: float | None
    """None when the observed value was not a finite number."""
    difference: float | None
    """``observed - expected``."""
    relative_difference: float | None
    """``difference / |expected|``; None when ``expected`` is 0."""
    allowed: float | None
    """The tolerance's bound for this value; None for an informational metric."""
    outcome: Outcome

    @property
    def passed(self) -> bool:
        """``within``, ``better`` and ``informational`` pass; the rest fail."""
        return self.outcome in PASSING

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "expected": self.expected,
                               "outcome": self.outcome, "passed": self.passed}
        for key in ("observed", "difference", "relative_difference", "allowed"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out


def within(expected: ExpectedMetric | Mapping[str, Any], observed: object) -> Verdict:
    """Compare a claim with an observed value (spec/metrics.md, "Checking a claim").

    ``|observed - expected| <= max(absolute, relative * |expected|)`` is ``within``. Outside
    that band, a metric with a ``direction`` is ``better`` (passes) or ``worse`` (fails);
    one without is ``outside`` (fails). A non-finite or non-numeric observation is
    ``invalid``; a claim without tolerance is ``informational`` and never fails.
    """
    claim = expected if isinstance(expected, ExpectedMetric) else ExpectedMetric.from_dict(
        dict(expected))
    exp = claim.value
    if not _number(observed):
        return Verdict(name=claim.name, expected=exp, observed=None, difference=None,
                       relative_difference=None, allowed=None, outcome="invalid")
    obs = float(cast(float, observed))
    diff = obs - exp
    rel = diff / abs(exp) if exp != 0 else None
    if claim.tolerance is None:
        return Verdict(name=claim.name, expected=exp, observed=obs, difference=diff,
                       relative_difference=rel, allowed=None, outcome="informational")
    bound = claim.tolerance.bound(exp)
    outcome: Outcome
    if abs(diff) <= bound or math.isclose(abs(diff), bound, rel_tol=SLACK):
        outcome = "within"
    elif claim.direction is None:
        outcome = "outside"
    else:
        gain = diff if claim.direction == "higher" else -diff
        outcome = "better" if gain > 0 else "worse"
    return Verdict(name=claim.name, expected=exp, observed=obs, difference=diff,
                   relative_difference=rel, allowed=bound, outcome=outcome)


def _recipe_error(where: str, why: str, hint: str) -> UsageError:
    return UsageError(f"mlpack.toml: {where} {why}", code="E_RECIPE", hint=hint)


def _label(name: str, dataset: str | None, split: str | None) -> str:
    on = "/".join(x for x in (dataset, split) if x)
    return f"{name} on {on}" if on else name


def check_logged(entry: Mapping[str, Any], where: str) -> None:
    """Check one metric the training run logged; ``E_INPUT`` naming ``where``."""
    problem = _entry_problem({**entry, "status": "claimed", "source": "run"})
    if problem or set(entry) - {"name", "value", "dataset", "split", "direction"}:
        key, why = problem or ("", "has unknown fields")
        raise UsageError(f".mlpack/run.json: {where}{key} {why}", code="E_INPUT",
                         hint="the run record is damaged; re-run training")


def merge(recipe_metrics: Sequence[Mapping[str, Any]],
          run_metrics: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """The ``metrics`` section from the recipe's ``[[metrics]]`` and the run's logged metrics.

    A recipe entry matches the logged metrics with its ``name`` and, where the recipe gives
    them, its ``dataset`` and ``split``. Its value is the recipe's ``value``, else the one
    matching logged value. Logged metrics no recipe entry matched are added as
    informational claims (no tolerance, ``source`` ``"run"``), in the order logged.

    Args:
        recipe_metrics: ``[[metrics]]`` tables as plain dicts (name, value, dataset, split,
            direction, tolerance).
        run_metrics: ``metrics`` of ``.mlpack/run.json`` (name, value, dataset, split,
            direction).

    Raises:
        UsageError: ``E_RECIPE`` naming ``metrics[i]`` for an invalid entry, a duplicate,
            an entry that matches several logged metrics, one with no value that the run
            did not log, or a value the run's own logged value contradicts.
    """
    logged = list(run_metrics)
    for i, m in enumerate(logged):
        check_logged(m, f"metrics[{i}]")
    used: set[int] = set()
    seen: set[tuple[str, str | None, str | None]] = set()
    out: list[dict[str, Any]] = []
    fix = "fix the [[metrics]] entry in mlpack.toml"
    for i, raw in enumerate(recipe_metrics):
        where = f"metrics[{i}]"
        if not isinstance(raw, Mapping):
            raise _recipe_error(where, "must be a table", fix)
        unknown = set(raw) - {"name", "value", "dataset", "split", "direction", "tolerance"}
        if unknown:
            raise _recipe_error(f"{where}.{min(unknown)}", "is not a metrics key",
                                "use name, value, dataset, split, direction and tolerance")
        if "tolerance" not in raw:
            raise _recipe_error(f"{where}.tolerance", "is missing",
                                "add tolerance = { absolute = ..., relative = ... } (one or both)")
        problem = _entry_problem({**raw, "value": raw.get("value", 0.0)})
        if problem:
            raise _recipe_error(where + problem[0], problem[1], fix)
        name, dataset, split = raw["name"], raw.get("dataset"), raw.get("split")
        label = _label(name, dataset, split)
        if (name, dataset, split) in seen:
            raise _recipe_error(where, f"({label}) appears twice", "remove the duplicate entry")
        seen.add((name, dataset, split))
        hits = [j for j, m in enumerate(logged) if m["name"] == name
                and (dataset is None or m.get("dataset") == dataset)
                and (split is None or m.get("split") == split)]
        if len(hits) > 1:
            raise _recipe_error(where, f"({label}) matches {len(hits)} metrics the run logged",
                                "add dataset and split to tell them apart")
        hit = logged[hits[0]] if hits else None
        used.update(hits)
        if "value" in raw:
            value, source = float(raw["value"]), "recipe"
        elif hit is not None:
            value, source = float(hit["value"]), "run"
        else:
            raise _recipe_error(f"{where}.value", f"({label}) is missing and the training run "
                                "logged no such metric",
                                "add value = ..., or log it with run.log_metric() and re-run")
        tol = raw["tolerance"]
        claim = ExpectedMetric(
            name=name, value=value,
            dataset=dataset if dataset is not None else (hit or {}).get("dataset"),
            split=split if split is not None else (hit or {}).get("split"),
            direction=raw.get("direction", (hit or {}).get("direction")),
            tolerance=Tolerance(absolute=_opt_float(tol.get("absolute")),
                                relative=_opt_float(tol.get("relative"))),
            source=cast(Source, source),
            logged=float(hit["value"]) if hit is not None and source == "recipe" else None)
        if claim.logged is not None and not within(claim, claim.logged).passed:
            raise _recipe_error(f"{where}.value", f"({label}) = {claim.value} is not within its "
                                f"tolerance of the value the training run logged "
                                f"({claim.logged})",
                                "fix value or tolerance, or remove value to claim the logged one")
        out.append(claim.to_dict())
    for j, m in enumerate(logged):
        if j not in used:
            out.append(ExpectedMetric(
                name=m["name"], value=float(m["value"]), dataset=m.get("dataset"),
                split=m.get("split"), direction=m.get("direction"), source="run").to_dict())
    return {"metrics": out}


def parse_section(section: object) -> tuple[ExpectedMetric, ...]:
    """The claims of a ``metrics`` section read from a pack (``E_MANIFEST`` if invalid)."""
    if not isinstance(section, dict) or not isinstance(section.get("metrics"), list):
        raise VerificationError("mlpack.json: metrics.metrics must be an array",
                                code="E_MANIFEST", member="mlpack.json")
    claims = tuple(ExpectedMetric.from_dict(d, f"metrics[{i}]")
                   for i, d in enumerate(section["metrics"]))
    keys = [(c.name, c.dataset, c.split) for c in claims]
    for i, key in enumerate(keys):
        if key in keys[:i]:
            raise VerificationError(f"mlpack.json: metrics.metrics[{i}] repeats "
                                    f"{_label(*key)}", code="E_MANIFEST", member="mlpack.json")
    return claims

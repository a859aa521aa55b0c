"""mlpack._parallel: ranges by size; results and errors in range order, threads or processes."""

from __future__ import annotations

import os

import pytest

from mlpack._parallel import map_ranges, split
from mlpack.errors import VerificationError


def test_split_groups_small_items_and_isolates_large_ones() -> None:
    assert split([1, 1, 1, 1], batch=2, alone=10) == [range(0, 2), range(2, 4)]
    assert split([1, 50, 1], batch=5, alone=10) == [range(0, 1), range(1, 2), range(2, 3)]
    assert split([3, 3, 3], batch=100, alone=10, start=1) == [range(1, 4)]
    assert split([], batch=1, alone=1) == []


def _square(context: int, indices: range) -> list[tuple[int, int, int]]:
    if context in indices:
        raise VerificationError(f"item {context}", code="E_DIGEST", member=str(context))
    return [(i, i * i, os.getpid()) for i in indices]


@pytest.mark.parametrize("processes", [False, True])
def test_results_in_order(processes: bool) -> None:
    ranges = split([1] * 100, batch=7, alone=50)
    rows = map_ranges(_square, -1, ranges, processes=processes)
    assert [r[:2] for r in rows] == [(i, i * i) for i in range(100)]
    assert (len({r[2] for r in rows}) > 1 or os.cpu_count() == 1) if processes else True


@pytest.mark.parametrize("processes", [False, True])
def test_first_error_in_range_order_wins_and_keeps_its_code(processes: bool) -> None:
    calls: list[str] = []
    with pytest.raises(VerificationError) as info:
        map_ranges(_square, 42, split([1] * 100, batch=5, alone=50), processes=processes,
                   meanwhile=lambda: calls.append("meanwhile"))
    assert info.value.code == "E_DIGEST" and info.value.member == "42"
    assert calls == ["meanwhile"]

"""Run independent ranges of work on every core: threads, or forked worker processes.

Hashing releases the GIL, so threads suffice for a few large files; many small files
need per-file Python work (headers, format checks) on every core, hence processes.
Forked workers inherit the (large) context instead of receiving it pickled; only the
ranges go to them and only small result tuples come back.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ["WORKERS", "map_ranges", "split"]

CPUS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 2)
WORKERS = max(1, min(8, CPUS - 1))  # the calling thread works too (see map_ranges)

C = TypeVar("C")
_INHERITED: Any = None  # the context forked workers see


def split(sizes: Sequence[int], *, batch: int, alone: int, start: int = 0) -> list[range]:
    """Consecutive index ranges of about ``batch`` bytes; an item over ``alone`` gets its own.

    Indices run from ``start``; ``sizes[k]`` is the size of item ``start + k``.
    """
    ranges: list[range] = []
    first = start
    total = 0
    for index, size in enumerate(sizes, start):
        if size > alone:
            if index > first:
                ranges.append(range(first, index))
            ranges.append(range(index, index + 1))
            first, total = index + 1, 0
            continue
        total += size
        if total >= batch:
            ranges.append(range(first, index + 1))
            first, total = index + 1, 0
    if first < start + len(sizes):
        ranges.append(range(first, start + len(sizes)))
    return ranges


def _in_child(task: Callable[[Any, range], list[tuple[Any, ...]]], indices: range) -> list[tuple[Any, ...]]:
    return task(_INHERITED, indices)


def map_ranges(
    task: Callable[[C, range], list[tuple[Any, ...]]],
    context: C,
    ranges: Sequence[range],
    *,
    processes: bool,
    meanwhile: Callable[[], None] = lambda: None,
) -> list[tuple[Any, ...]]:
    """``task(context, r)`` for every range, results concatenated in range order.

    ``task`` must be a module-level function returning plain tuples (they cross the
    process boundary). ``meanwhile`` runs on the calling thread while workers work; an
    error from it or from any task (the first in range order) cancels the rest.
    """
    global _INHERITED
    pool: Executor
    if processes and hasattr(os, "fork"):
        import multiprocessing  # only here: it costs 10 ms of start-up
        from concurrent.futures import ProcessPoolExecutor

        _INHERITED = context
        pool = ProcessPoolExecutor(max_workers=WORKERS, mp_context=multiprocessing.get_context("fork"))
        submit: Callable[[range], Future[list[tuple[Any, ...]]]] = lambda r: pool.submit(_in_child, task, r)
    else:
        pool = ThreadPoolExecutor(max_workers=WORKERS)
        submit = lambda r: pool.submit(task, context, r)
    futures: list[Future[list[tuple[Any, ...]]]] = []
    stolen: dict[int, list[tuple[Any, ...]]] = {}
    results: list[tuple[Any, ...]] = []
    try:
        futures = [submit(r) for r in ranges]
        meanwhile()
        # This thread works too, from the tail: a range no worker has started yet is
        # cancelled in the pool and run here (on 2 cores the caller would otherwise idle).
        for k in range(len(futures) - 1, -1, -1):
            if not futures[k].cancel():
                break
            stolen[k] = task(context, ranges[k])
        for k, future in enumerate(futures):
            results.extend(stolen[k] if k in stolen else future.result())
    except BaseException:
        for future in futures:
            future.cancel()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        _INHERITED = None
    return results

"""Threads sharing one key on the memory store admit exactly the limit."""

from __future__ import annotations

import threading

import pytest
from conftest import ALL_LIMITERS, make_exact

from ratelimiter import MemoryBackend


@pytest.mark.parametrize("cls", ALL_LIMITERS)
def test_eight_threads_one_key_admit_exactly_limit(cls: type) -> None:
    limiter = make_exact(cls, MemoryBackend(), 100, 60.0, clock=lambda: 1_000.0)
    counts = [0] * 8
    start = threading.Barrier(8)

    def hammer(slot: int) -> None:
        start.wait()
        for _ in range(2_500):
            if limiter.is_allowed("shared").allowed:
                counts[slot] += 1

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(counts) == 100


@pytest.mark.parametrize("cls", ALL_LIMITERS)
def test_batch_calls_from_threads_admit_exactly_limit(cls: type) -> None:
    limiter = make_exact(cls, MemoryBackend(), 100, 60.0, clock=lambda: 1_000.0)
    totals: list[int] = []
    lock = threading.Lock()

    def hammer() -> None:
        admitted = sum(r.allowed for r in limiter.is_allowed_many(["shared"] * 500))
        with lock:
            totals.append(admitted)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(totals) == 100

"""`is_allowed_many(keys, cost, detail=...)`: the batch decides exactly what the same calls
one at a time would (memory store: grouped by shard, one lock per shard, one clock reading);
`detail=False` answers bools on every backend; a bad key or a bad `detail` decides nothing."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from conftest import ALL_LIMITERS, DictBackend, FakeClock, make_exact
from redis_server import RedisServer

from ratelimiter import MemoryBackend, MultiRateLimiter, RedisBackend, SQLiteBackend
from ratelimiter.exceptions import ConfigurationError


@pytest.fixture(scope="module")
def redis_server() -> Any:
    with RedisServer() as s:
        yield s


def backends(kind: str, tmp_path: Path, redis_server: Any = None) -> Any:
    if kind == "memory":
        return MemoryBackend()
    if kind == "sqlite":
        return SQLiteBackend(str(tmp_path / "limits.db"))
    if kind == "custom":
        return DictBackend()
    redis_server.client().flushall()
    return RedisBackend(url=redis_server.url, use_server_time=False)


@pytest.mark.parametrize("cls", ALL_LIMITERS)
def test_memory_batch_equals_single_calls_in_order(cls: type, clock: FakeClock) -> None:
    # 300 distinct keys (spread over every shard) each repeated, interleaved: a key's
    # repeats must be decided in batch order even though the batch is grouped by shard.
    keys = [f"user:{(i * 7) % 300}" for i in range(1_500)]
    batched = make_exact(cls, MemoryBackend(), 3, 60.0, clock=clock, key_prefix="p:")
    single = make_exact(cls, MemoryBackend(), 3, 60.0, clock=clock, key_prefix="p:")
    got = batched.is_allowed_many(keys)
    want = [single.is_allowed(k) for k in keys]
    assert [(r.key, r.allowed, r.remaining, r.retry_after, r.reset_after) for r in got] == [
        (r.key, r.allowed, r.remaining, r.retry_after, r.reset_after) for r in want
    ]
    assert sum(r.allowed for r in got) == 300 * 3
    # The batch wrote under the prefixed key, where a single call finds it.
    assert batched._impl.state("user:0") == single._impl.state("user:0") != []
    assert not batched.is_allowed("user:0").allowed


@pytest.mark.parametrize("kind", ["memory", "sqlite", "custom", "redis"])
def test_detail_false_is_a_list_of_bools_on_every_backend(
    kind: str, tmp_path: Path, redis_server: Any, clock: FakeClock
) -> None:
    limiter = make_exact(ALL_LIMITERS[0], backends(kind, tmp_path, redis_server), 2, 60.0,
                         clock=clock)
    got = limiter.is_allowed_many(["a", "a", "b", "a", "b", "b", "c"], detail=False)
    assert got == [True, True, True, False, True, False, True]
    assert all(type(x) is bool for x in got)
    assert limiter.is_allowed_many([], detail=False) == []
    # detail=True (the default) still gives results, at the state the batch left.
    assert [r.allowed for r in limiter.is_allowed_many(["c", "c"], detail=True)] == [True, False]


def test_detail_false_matches_results_for_a_large_batch(clock: FakeClock) -> None:
    # 2,000 keys: the GIL is released around the store (from 32 keys); same decisions.
    keys = [f"k{i % 700}" for i in range(2_000)]
    a = make_exact(ALL_LIMITERS[0], MemoryBackend(), 2, 60.0, clock=clock)
    b = make_exact(ALL_LIMITERS[0], MemoryBackend(), 2, 60.0, clock=clock)
    assert a.is_allowed_many(keys, detail=False) == [r.allowed for r in b.is_allowed_many(keys)]


@pytest.mark.parametrize("detail", [0, 1, None, "no"])
def test_detail_must_be_a_bool_and_decides_nothing(detail: Any, clock: FakeClock) -> None:
    limiter = make_exact(ALL_LIMITERS[0], MemoryBackend(), 1, 60.0, clock=clock)
    with pytest.raises(TypeError, match="detail must be a bool"):
        limiter.is_allowed_many(["a"], detail=detail)
    with pytest.raises(TypeError, match="detail must be a bool"):
        limiter._impl.is_allowed_many(["a"], 1, detail=detail)
    assert limiter.is_allowed("a").allowed  # nothing was consumed


def test_detail_is_keyword_only(clock: FakeClock) -> None:
    limiter = make_exact(ALL_LIMITERS[0], MemoryBackend(), 1, 60.0, clock=clock)
    with pytest.raises(TypeError):
        limiter.is_allowed_many(["a"], 1, False)  # type: ignore[misc]


@pytest.mark.parametrize("kind", ["memory", "sqlite", "custom"])
@pytest.mark.parametrize("detail", [True, False])
def test_a_batch_with_a_bad_key_decides_nothing(
    kind: str, detail: bool, tmp_path: Path, clock: FakeClock
) -> None:
    limiter = make_exact(ALL_LIMITERS[0], backends(kind, tmp_path), 1, 60.0, clock=clock)
    for bad in (5, None, "x" * 5000, "a\udfffb"):
        with pytest.raises((ConfigurationError, TypeError, ValueError)):
            limiter.is_allowed_many(["a", "b", bad, "c"], detail=detail)
    # Every good key before and after the bad one is untouched: each still has its 1.
    assert limiter.is_allowed_many(["a", "b", "c"], detail=False) == [True, True, True]


def test_threads_batching_one_key_with_the_gil_released_admit_exactly_limit() -> None:
    limiter = make_exact(ALL_LIMITERS[0], MemoryBackend(), 1_000, 60.0, clock=lambda: 1_000.0)
    totals: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(4)

    def hammer(t: int) -> None:
        start.wait()
        # Each batch mixes the shared key with this thread's own keys (many shards).
        admitted = 0
        for _ in range(5):
            keys = ["shared"] * 200 + [f"own{t}:{i}" for i in range(200)]
            admitted += sum(limiter.is_allowed_many(keys, detail=False)[:200])
        with lock:
            totals.append(admitted)

    threads = [threading.Thread(target=hammer, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(totals) == 1_000


def test_multi_limiter_detail_false(clock: FakeClock) -> None:
    limiter = MultiRateLimiter(MemoryBackend(), limits=["2/minute", "3/hour"], clock=clock)
    assert limiter.is_allowed_many(["a", "a", "a", "b"], detail=False) == [True, True, False,
                                                                           True]
    with pytest.raises(TypeError, match="detail must be a bool"):
        limiter.is_allowed_many(["a"], detail=1)  # type: ignore[call-overload]


def test_keys_differing_after_an_embedded_nul_are_distinct(clock: FakeClock) -> None:
    limiter = make_exact(ALL_LIMITERS[0], MemoryBackend(), 1, 60.0, clock=clock)
    keys = ["a\x00b", "a\x00c", "a", "a\x00"]
    assert limiter.is_allowed_many(keys, detail=False) == [True] * 4
    assert limiter.is_allowed_many(keys, detail=False) == [False] * 4
    assert [limiter.is_allowed(k).allowed for k in keys] == [False] * 4


@pytest.mark.parametrize("container", [list, tuple])
@pytest.mark.parametrize("detail", [True, False])
def test_a_batch_holds_no_reference_to_its_keys_afterwards(
    container: type, detail: bool, clock: FakeClock
) -> None:
    # A list's keys are held (a reference each) while the batch runs; every one is given
    # back, also when a bad key ends the batch before any decision.
    keys = [f"key-{i}" for i in range(100)]  # built here: not interned, counts are ours
    limiter = make_exact(ALL_LIMITERS[0], MemoryBackend(), 5, 60.0, clock=clock)
    before = [sys.getrefcount(k) for k in keys]
    for _ in range(3):
        limiter.is_allowed_many(container(keys), detail=detail)
        with pytest.raises(TypeError):
            limiter.is_allowed_many(container([*keys[:50], 7, *keys[50:]]), detail=detail)
    assert [sys.getrefcount(k) for k in keys] == before
    # The bad batches decided nothing: each key was decided 3 times, 2 of its 5 are left.
    assert limiter.is_allowed_many(keys, detail=False) == [True] * 100
    assert limiter.is_allowed_many(keys, detail=False) == [True] * 100
    assert limiter.is_allowed_many(keys, detail=False) == [False] * 100

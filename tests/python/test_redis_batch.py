"""`is_allowed_many` on Redis is one pipeline: every key's EVALSHA written at once and the
replies read after, so a batch costs one round trip (per cluster master) instead of one per
key — on the native hiredis path and through a redis-py client alike. Decisions stay exact,
NOSCRIPT is recovered inside the batch, and a dead Redis answers every key by on_error."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from conftest import ALL_LIMITERS, FakeClock, make_exact
from redis_server import RedisServer

from ratelimiter import RedisBackend
from ratelimiter.exceptions import BackendError

PATHS = ["native", "redis-py"]


class _Wrapped(redis.Redis):
    """Any client other than a plain redis.Redis runs through the client object."""


def backend_for(server: RedisServer, path: str, **kwargs: Any) -> RedisBackend:
    if path == "native":
        return RedisBackend(url=server.url, **kwargs)
    return RedisBackend(_Wrapped(port=server.port), **kwargs)


def reads(client: Any) -> int:
    """Socket reads the server has processed (INFO stats); one per round trip or less."""
    return int(client.info("stats")["total_reads_processed"])


@pytest.mark.parametrize("path", PATHS)
def test_a_batch_is_one_round_trip(server: RedisServer, client: Any, path: str) -> None:
    limiter = make_exact(ALL_LIMITERS[0], backend_for(server, path, use_server_time=False),
                         3, 60.0, clock=FakeClock())
    keys = [f"k{i}" for i in range(60)]
    limiter.is_allowed_many(keys)  # connect and load scripts first
    before = reads(client)
    results = limiter.is_allowed_many(keys)
    # Key by key this would be 60 reads; pipelined the 60 commands arrive in one or two
    # reads (+1 for the INFO that measures it).
    assert reads(client) - before <= 4
    assert [r.allowed for r in results] == [True] * 60
    assert client.info("commandstats")["cmdstat_evalsha"]["calls"] >= 120


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("cls", ALL_LIMITERS, ids=lambda c: c.__name__)
def test_batches_decide_as_single_calls(server: RedisServer, client: Any, path: str,
                                        cls: type) -> None:
    clock = FakeClock()
    batched = make_exact(cls, backend_for(server, path, use_server_time=False,
                                          key_prefix="a:"), 3, 60.0, clock=clock)
    single = make_exact(cls, backend_for(server, path, use_server_time=False,
                                         key_prefix="b:"), 3, 60.0, clock=clock)
    keys = ["x", "y", "x", "z", "x", "x", "y"]
    for _ in range(2):
        got = [(r.allowed, r.remaining) for r in batched.is_allowed_many(keys)]
        want = [(r.allowed, r.remaining) for r in (single.is_allowed(k) for k in keys)]
        assert got == want
        clock.advance(7.0)


@pytest.mark.parametrize("path", PATHS)
def test_noscript_inside_a_batch_is_recovered(server: RedisServer, client: Any,
                                              path: str) -> None:
    limiter = make_exact(ALL_LIMITERS[3], backend_for(server, path, use_server_time=False),
                         2, 60.0, clock=FakeClock())
    keys = ["a", "b", "c"]
    assert all(r.allowed for r in limiter.is_allowed_many(keys))
    client.script_flush()
    assert [r.allowed for r in limiter.is_allowed_many(keys + keys)] == [True] * 3 + [False] * 3


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("on_error", ["raise", "allow", "deny"])
def test_redis_down_answers_every_key_by_on_error(path: str, on_error: str) -> None:
    with RedisServer() as down:
        backend = backend_for(down, path, on_error=on_error, timeout=0.2, connect_timeout=0.2)
        limiter = make_exact(ALL_LIMITERS[0], backend, 5, 60.0)
        assert all(r.allowed for r in limiter.is_allowed_many(["a", "b"]))
        down.kill()
        if on_error == "raise":
            with pytest.raises(BackendError):
                limiter.is_allowed_many(["a", "b", "c"])
            return
        results = limiter.is_allowed_many(["a", "b", "c"])
        assert [r.allowed for r in results] == [on_error == "allow"] * 3
        assert all(r.metadata["on_error"] == on_error for r in results)
        counter = "fallback_allowed" if on_error == "allow" else "fallback_denied"
        assert backend.counters[counter] == 3

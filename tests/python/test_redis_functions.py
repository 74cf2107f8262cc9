"""Redis >= 7 Functions on the native path: single-key decisions are FCALLs of one function
library (cmake/EmbedLua.cmake kLibrary) instead of EVALSHA of scripts, with the scripts as
the fallback (a server or ACL without FUNCTION), a FUNCTION FLUSH recovered inside the call,
and decisions identical to the scripts' (the redis-py path still runs EVALSHA)."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from conftest import ALL_LIMITERS, FakeClock, make_exact
from redis_server import RedisServer

from ratelimiter import RedisBackend


class _Wrapped(redis.Redis):
    """Any client other than a plain redis.Redis runs through the client object (EVALSHA)."""


@pytest.fixture(scope="module")
def server() -> Any:
    with RedisServer() as s:
        yield s


@pytest.fixture
def client(server: RedisServer) -> Any:
    c = server.client()
    c.flushall()
    c.function_flush()
    yield c
    c.close()


def calls(client: Any, command: str) -> int:
    return int(client.info("commandstats").get(f"cmdstat_{command}", {}).get("calls", 0))


def test_single_decisions_are_fcalls(server: RedisServer, client: Any) -> None:
    limiter = make_exact(ALL_LIMITERS[0], RedisBackend(url=server.url), 3, 60.0)
    assert limiter.is_allowed("warm").allowed  # connects and loads the library
    client.config_resetstat()
    assert [limiter.is_allowed("k").allowed for _ in range(5)] == [True] * 3 + [False] * 2
    assert calls(client, "fcall") == 5
    assert calls(client, "evalsha") == 0
    (library,) = client.function_list()  # one library: [b"library_name", name, ...]
    fields = dict(zip(library[::2], library[1::2]))
    assert fields[b"library_name"].startswith(b"ratelimiter_")


def test_a_function_flush_is_recovered_inside_the_call(server: RedisServer,
                                                       client: Any) -> None:
    limiter = make_exact(ALL_LIMITERS[0], RedisBackend(url=server.url), 2, 60.0)
    assert limiter.is_allowed("k").allowed
    client.function_flush()
    client.config_resetstat()
    assert [limiter.is_allowed("k").allowed for _ in range(2)] == [True, False]
    assert calls(client, "function|load") == 1  # reloaded once, by the first call after
    assert calls(client, "fcall") == 3  # the call that found nothing, its retry, the next
    assert limiter.backend.counters["errors"] == 0


def test_without_function_permission_scripts_are_used(server: RedisServer,
                                                      client: Any) -> None:
    client.acl_setuser("nofunctions", enabled=True, passwords=["+pw"], keys=["*"],
                       commands=["+@all", "-function"], reset=True)
    try:
        url = f"redis://nofunctions:pw@127.0.0.1:{server.port}/0"
        limiter = make_exact(ALL_LIMITERS[0], RedisBackend(url=url), 2, 60.0)
        client.config_resetstat()
        assert [limiter.is_allowed("k").allowed for _ in range(3)] == [True, True, False]
        assert calls(client, "evalsha") == 3
        assert calls(client, "fcall") == 0
    finally:
        client.acl_deluser("nofunctions")


@pytest.mark.parametrize("cls", ALL_LIMITERS, ids=lambda c: c.__name__)
def test_fcall_and_evalsha_decide_alike(server: RedisServer, client: Any, cls: type) -> None:
    """Every field of every decision, and the stored state byte for byte."""
    clock = FakeClock()
    native = make_exact(cls, RedisBackend(url=server.url, use_server_time=False,
                                          key_prefix="f:"), 4, 3.0, clock=clock)
    scripts = make_exact(cls, RedisBackend(_Wrapped(port=server.port), use_server_time=False,
                                           key_prefix="e:"), 4, 3.0, clock=clock)
    for i in range(40):
        clock.advance(0.0 if i % 3 == 0 else 0.29 * (i % 7))
        cost = 1 + i % 3
        if i % 5 == 4:
            assert native.peek("k") == scripts.peek("k")
        else:
            assert native.is_allowed("k", cost) == scripts.is_allowed("k", cost)
    for key in client.keys("f:*"):
        other = b"e:" + key[2:]
        if client.type(key) == b"string":
            assert client.get(key) == client.get(other)
        else:
            assert client.lrange(key, 0, -1) == client.lrange(other, 0, -1)
    assert calls(client, "fcall") > 0

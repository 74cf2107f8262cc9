"""fakeredis (with lupa) as users test on it: same decisions and the same stored bytes as a
real redis-server, sync and async, for all seven algorithms.

fakeredis runs the scripts on Lua 5.1 without Redis's embedded `struct` library, so
cpp/lua/_common.lua encodes doubles itself there; these tests pin that encoding to the
struct one byte for byte, which is what lets either server read the other's state.
"""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio
from conftest import ALL_LIMITERS, FakeClock, make_exact
from redis_server import RedisServer

from ratelimiter import AsyncRedisBackend, MemoryBackend, RedisBackend

fakeredis = pytest.importorskip("fakeredis")
pytest.importorskip("lupa")

COMMON_LUA = (Path(__file__).resolve().parents[2] / "cpp" / "lua" / "_common.lua").read_text()

# Doubles whose encoding has a special case: signed zero, subnormals, the largest finite,
# infinities, epoch-scale times, and values with all 52 mantissa bits in use.
EDGE_DOUBLES = [0.0, -0.0, 5e-324, -5e-324, 2.2250738585072009e-308, 2.2250738585072014e-308,
                1.7976931348623157e308, float("inf"), float("-inf"), 1.0, -1.5, 0.1, 1 / 3,
                1_712_345_678.123, 2.0**53 + 2, 123456789.98765432, -7e-300]


@pytest.fixture(scope="module")
def server() -> Any:
    with RedisServer() as s:
        yield s


def _encode_on(client: Any, values: list[float]) -> tuple[bytes, list[bytes]]:
    """_common.lua's pack and unpack_binary run on `client`'s server."""
    script = COMMON_LUA + """
local values = {}
for i = 5, #ARGV do values[#values + 1] = tonumber(ARGV[i]) end
local packed = pack(rep('<d', #values), unpack(values))
local decoded = { unpack_binary(rep('<d', #values), packed) }
for i = 1, #values do decoded[i] = fmt(decoded[i]) end
decoded[#values + 1] = nil  -- the next position unpack returns
return { packed, decoded }
"""
    args = ["0", "1", "peek", "t"] + [repr(v) for v in values]
    packed, decoded = client.eval(script, 1, "unused", *args)
    return packed, decoded


@pytest.mark.parametrize("where", ["fakeredis", "redis-server"])
def test_double_encoding_is_struct_little_endian(where: str, server: Any) -> None:
    client = (fakeredis.FakeRedis() if where == "fakeredis"
              else redis.Redis(port=server.port))
    packed, decoded = _encode_on(client, EDGE_DOUBLES)
    assert packed == struct.pack(f"<{len(EDGE_DOUBLES)}d", *EDGE_DOUBLES)
    assert [float(d) for d in decoded] == EDGE_DOUBLES
    assert [str(float(d))[0] == "-" for d in decoded] == [
        str(v)[0] == "-" for v in EDGE_DOUBLES]  # -0.0 keeps its sign


def _steps() -> list[tuple[float, int, bool]]:
    """A deterministic trace: (clock advance, cost, peek?) crossing several windows."""
    return [(0.0 if i % 4 == 0 else 0.37 * (i % 5), 1 + i % 3, i % 7 == 6) for i in range(60)]


def _stored(client: Any) -> dict[bytes, Any]:
    out: dict[bytes, Any] = {}
    for key in client.keys("*"):
        kind = client.type(key)
        out[key] = client.get(key) if kind == b"string" else client.lrange(key, 0, -1)
    return out


@pytest.mark.parametrize("cls", ALL_LIMITERS)
def test_sync_fakeredis_matches_redis_server(cls: type, server: Any) -> None:
    real = redis.Redis(port=server.port)
    real.flushdb()
    fake = fakeredis.FakeRedis()
    clock = FakeClock()
    limiters = [make_exact(cls, RedisBackend(client=c, use_server_time=False), 5, 2.5,
                           clock=clock) for c in (real, fake)]
    reference = make_exact(cls, MemoryBackend(), 5, 2.5, clock=clock)
    for dt, cost, peek in _steps():
        clock.advance(dt)
        expected = reference.peek("k") if peek else reference.is_allowed("k", cost)
        for limiter in limiters:
            got = limiter.peek("k") if peek else limiter.is_allowed("k", cost)
            assert got == expected
    state = _stored(real)
    assert state and state == _stored(fake)  # byte-identical: each reads the other's state
    limiters[1].reset("k")
    assert _stored(fake) == {}


@pytest.mark.parametrize("cls", ALL_LIMITERS)
def test_state_moves_between_redis_server_and_fakeredis(cls: type, server: Any) -> None:
    """State written by the struct encoding continues on fakeredis and back again."""
    real = redis.Redis(port=server.port)
    real.flushdb()
    fake = fakeredis.FakeRedis()
    clock = FakeClock()
    on_real = make_exact(cls, RedisBackend(client=real, use_server_time=False), 4, 3.0,
                         clock=clock)
    on_fake = make_exact(cls, RedisBackend(client=fake, use_server_time=False), 4, 3.0,
                         clock=clock)
    reference = make_exact(cls, MemoryBackend(), 4, 3.0, clock=clock)
    for i, (dt, cost, _) in enumerate(_steps()[:30]):
        clock.advance(dt)
        source, target = ((real, fake), (fake, real))[i % 2]
        limiter = (on_real, on_fake)[i % 2]
        assert limiter.is_allowed("k", cost) == reference.is_allowed("k", cost)
        for key, value in _stored(source).items():  # hand the state over
            target.delete(key)
            if isinstance(value, list):
                target.rpush(key, *value)
            else:
                target.set(key, value)


@pytest.mark.parametrize("cls", ALL_LIMITERS)
def test_async_fakeredis_matches_redis_server(cls: type, server: Any) -> None:
    async def run() -> None:
        real = redis.asyncio.Redis(port=server.port)
        await real.flushdb()
        clock = FakeClock()
        limiters = [make_exact(cls, AsyncRedisBackend(c, use_server_time=False), 5, 2.5,
                               clock=clock)
                    for c in (real, fakeredis.FakeAsyncRedis())]
        reference = make_exact(cls, MemoryBackend(), 5, 2.5, clock=clock)
        for dt, cost, peek in _steps():
            clock.advance(dt)
            expected = reference.peek("k") if peek else reference.is_allowed("k", cost)
            for limiter in limiters:
                got = await (limiter.peek_async("k") if peek
                             else limiter.is_allowed_async("k", cost))
                assert got == expected
        await real.aclose()

    asyncio.run(run())


def test_fakeredis_with_server_time_and_decode_responses() -> None:
    """The defaults users reach for: server TIME, and a client decoding replies as text."""
    for client in (fakeredis.FakeRedis(), fakeredis.FakeRedis(decode_responses=True)):
        limiter = make_exact(ALL_LIMITERS[3], RedisBackend(client=client), 3, 60.0)
        assert [limiter.is_allowed("k").allowed for _ in range(4)] == [True] * 3 + [False]

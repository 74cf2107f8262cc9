"""Bad input is refused: a bad clock reading, an unusable runtime config and a
malformed key, batch or URL are refused with the library's own exception naming the culprit,
before any state changes. Real stores throughout (memory, SQLite files, a user's dict
backend, a real redis-server)."""

from __future__ import annotations

import asyncio
import math
import os
import subprocess
import sys
import textwrap
from copy import deepcopy
from pathlib import Path
from typing import Any, Callable

import pytest
from conftest import ALL_LIMITERS, DictBackend, FakeClock, make_exact
from redis_server import RedisServer

import ratelimiter
from ratelimiter import ConfigurationError, DynamicConfig, MemoryBackend
from ratelimiter.backends import RedisBackend, SQLiteBackend


class _IntWithBrokenFloat(int):
    def __float__(self) -> float:
        raise ArithmeticError("no float for you")


# Readings a clock may return that no decision can use. 10**400 is the case: an int
# beyond the double range, which PyFloat_AsDouble reported as -1.0 plus a pending error.
BAD_READINGS: list[Any] = [
    10**400, -(10**400), math.nan, math.inf, -math.inf, "abc", None, b"1", True,
    _IntWithBrokenFloat(5),
]

BACKENDS: dict[str, Callable[[Path], Any]] = {
    "memory": lambda _: MemoryBackend(),
    "sqlite": lambda tmp: SQLiteBackend(tmp / "rl.db"),
    "custom": lambda _: DictBackend(),
}


class SwitchableClock(FakeClock):
    """A FakeClock that returns `bad` instead of the time while `bad` is set."""

    def __init__(self) -> None:
        super().__init__(1_000.0)
        self.bad: Any = None
        self.broken = False

    def __call__(self) -> Any:
        return self.bad if self.broken else self.now


def _calls(limiter: Any) -> dict[str, Callable[[], Any]]:
    """Every entry point that reads the clock, each deciding or peeking the key "used"."""
    return {
        "fast is_allowed": lambda: limiter.is_allowed("used"),
        "pybind is_allowed": lambda: limiter._impl.is_allowed("used", 1),
        "is_allowed_many": lambda: limiter.is_allowed_many(["used", "other"]),
        "peek": lambda: limiter.peek("used"),
        "is_allowed_async": lambda: asyncio.run(limiter.is_allowed_async("used")),
        "peek_async": lambda: asyncio.run(limiter.peek_async("used")),
    }


def _stored(backend: Any, limiter: Any) -> Any:
    """What the store holds for "used" and "other", where a test can read it exactly."""
    if isinstance(backend, DictBackend):
        return deepcopy(backend.data)
    return (limiter._impl.state("used"), limiter._impl.state("other"))  # [] off memory


# --- every clock reading is checked --------------------------------------------------------------


@pytest.mark.parametrize("cls", ALL_LIMITERS)
@pytest.mark.parametrize("store", list(BACKENDS))
def test_bad_clock_reading_raises_configuration_error_and_changes_nothing(
    cls: type, store: str, tmp_path: Path
) -> None:
    backend = BACKENDS[store](tmp_path)
    clock = SwitchableClock()
    limiter = make_exact(cls, backend, 3, 10.0, clock=clock)
    assert limiter.is_allowed("used").allowed  # 1 of 3 used
    before = _stored(backend, limiter)
    clock.broken = True
    for bad in BAD_READINGS:
        clock.bad = bad
        for name, call in _calls(limiter).items():
            with pytest.raises(ConfigurationError, match="clock") as info:
                call()
            assert not isinstance(info.value, SystemError), name
    clock.broken = False
    assert _stored(backend, limiter) == before
    # Nothing was consumed or written: "used" has exactly 2 left, "other" is a fresh key.
    assert [limiter.is_allowed("used").allowed for _ in range(3)] == [True, True, False]
    assert [limiter.is_allowed("other").allowed for _ in range(4)] == [True] * 3 + [False]


def test_clock_too_large_for_a_float_names_the_clock_and_chains_the_cause() -> None:
    limiter = ratelimiter.GCRARateLimiter(MemoryBackend(), 5, 1.0, clock=lambda: 10**400)
    with pytest.raises(ConfigurationError, match="clock returned int") as info:
        limiter.is_allowed("k")
    assert isinstance(info.value.__cause__, OverflowError)
    assert limiter._impl.state("k") == []


@pytest.mark.parametrize("store", list(BACKENDS))
def test_clock_raising_propagates_its_own_exception_and_changes_nothing(
    store: str, tmp_path: Path
) -> None:
    # The clock's exception is the caller's: it propagates unchanged (not wrapped).
    backend = BACKENDS[store](tmp_path)
    state = {"fail": True}

    def clock() -> float:
        if state["fail"]:
            raise ZeroDivisionError("clock is down")
        return 1_000.0

    limiter = ratelimiter.TokenBucketRateLimiter(backend, 2, 10.0, clock=clock)
    for call in _calls(limiter).values():
        with pytest.raises(ZeroDivisionError, match="clock is down"):
            call()
    state["fail"] = False
    assert [limiter.is_allowed("used").allowed for _ in range(3)] == [True, True, False]


@pytest.fixture(scope="module")
def redis_server() -> Any:
    with RedisServer() as server:
        yield server


def test_bad_clock_on_the_async_redis_path_raises_before_any_round_trip(
    redis_server: RedisServer,
) -> None:
    import redis.asyncio

    from ratelimiter.backends import AsyncRedisBackend

    clock = SwitchableClock()
    sync = redis_server.client()
    sync.flushall()

    async def scenario() -> list[bool]:
        client = redis.asyncio.Redis(host="127.0.0.1", port=redis_server.port)
        backend = AsyncRedisBackend(client, key_prefix="h:", use_server_time=False)
        limiter = ratelimiter.FixedWindowRateLimiter(backend, 2, 60.0, clock=clock)
        clock.broken = True
        for bad in BAD_READINGS:
            clock.bad = bad
            with pytest.raises(ConfigurationError, match="clock"):
                await limiter.is_allowed_async("k")
            with pytest.raises(ConfigurationError, match="clock"):
                await limiter.peek_async("k")
        with pytest.raises(ConfigurationError, match="key"):
            await limiter.reset_async("\ud800")
        clock.broken = False
        allowed = [(await limiter.is_allowed_async("k")).allowed for _ in range(3)]
        await client.aclose()
        return allowed

    assert asyncio.run(scenario()) == [True, True, False]


# --- DynamicConfig validates as the core does, at construction and update ------------------------


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"limit": 2**60}, "limit"),  # the core's limit is at most 2**52
        ({"limit": 2**52 + 1}, "limit"),
        ({"window": 1e-320}, "window"),  # limit / window overflows to inf
        ({"window": 10**400}, "window"),  # an int too large for a float
        ({"window": 1e308}, "window"),  # the adaptive window (5 * window) overflows
        ({"limit": 2**52}, "adaptive"),  # limit * default burst_multiplier (2) > 2**52
    ],
)
def test_update_rejects_what_every_decision_would_reject_and_keeps_old_values(
    kwargs: dict[str, Any], param: str, clock: FakeClock
) -> None:
    cfg = DynamicConfig(limit=10, window=60)
    limiters = [make_exact(cls, MemoryBackend(), 10, 60, clock=clock, config_provider=cfg)
                for cls in ALL_LIMITERS]
    with pytest.raises(ConfigurationError, match=param):
        cfg.update(**kwargs)
    assert cfg.snapshot() == (10, 60.0)
    # Traffic keeps flowing under the old values.
    assert all(limiter.is_allowed("k").remaining == 9 for limiter in limiters)
    with pytest.raises(ConfigurationError, match=param):
        DynamicConfig(**{"limit": 10, "window": 60, **kwargs})


def test_constructor_with_huge_int_window_is_configuration_error_not_overflow() -> None:
    with pytest.raises(ConfigurationError, match="window") as info:
        DynamicConfig(10, 10**400)
    assert not isinstance(info.value, OverflowError)


def test_update_checks_the_new_limit_against_the_current_window() -> None:
    cfg = DynamicConfig(limit=1, window=1e-6)  # valid: the shortest window, rate 1e6/s
    with pytest.raises(ConfigurationError, match=r"limit=4503599627370496 with window=1e-06"):
        cfg.update(limit=2**52)  # the adaptive limiter's default burst 2 * 2**52 is too large
    assert cfg.snapshot() == (1, 1e-6)


@pytest.mark.parametrize("window", [1e-320, 1e-7, 1e10 * 1.5, 1e300])
def test_windows_outside_a_microsecond_to_1e10_seconds_are_refused_everywhere(
    window: float, clock: FakeClock
) -> None:
    # 1e-320 s used to be accepted and admit everything: now / window overflowed to inf.
    with pytest.raises(ConfigurationError, match=r"window must be a number of seconds in"):
        DynamicConfig(1, window)
    for cls in ALL_LIMITERS:
        with pytest.raises(ConfigurationError, match=r"window"):
            cls(MemoryBackend(), 5, window, clock=clock)


@pytest.mark.parametrize("pair", [(1, 1e-6), (2**51, 1e10), (2**51, 1.0), (1, 1e10)])
def test_every_pair_dynamic_config_accepts_is_accepted_by_every_limiter(
    pair: tuple[int, float], clock: FakeClock
) -> None:
    cfg = DynamicConfig(*pair)
    for cls in ALL_LIMITERS:
        limiter = cls(MemoryBackend(), 1, 1.0, clock=clock, config_provider=cfg)
        assert limiter.is_allowed("k").limit == pair[0]
        cls(MemoryBackend(), *pair, clock=clock)  # and by every constructor


def test_core_validator_returns_the_converted_pair() -> None:
    assert ratelimiter._core.validate_limit_window(10, 60) == (10, 60.0)
    assert type(ratelimiter._core.validate_limit_window(10, 60)[1]) is float


# --- clear errors --------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", ALL_LIMITERS)
def test_lone_surrogate_key_is_configuration_error_naming_key(
    cls: type, clock: FakeClock
) -> None:
    limiter = cls(MemoryBackend(), 3, 10.0, clock=clock)
    calls: list[Callable[[], Any]] = [
        lambda: limiter.is_allowed("\ud800"),  # the fast vectorcall path
        lambda: limiter._impl.is_allowed("\ud800", 1),
        lambda: limiter.is_allowed_many(["ok", "a\udfffb"]),
        lambda: limiter.peek("\ud800"),
        lambda: limiter.reset("\ud800"),
    ]
    for call in calls:
        with pytest.raises(ConfigurationError, match="key must be encodable as UTF-8") as info:
            call()
        assert not isinstance(info.value, UnicodeError)
        assert isinstance(info.value.__cause__, UnicodeEncodeError)
    assert limiter._impl.state("ok") == []  # the batch decided nothing


@pytest.mark.parametrize("keys", ["user42", b"user42", bytearray(b"user42")], ids=repr)
def test_is_allowed_many_refuses_a_single_str_or_bytes(keys: Any, clock: FakeClock) -> None:
    limiter = ratelimiter.FixedWindowRateLimiter(MemoryBackend(), 3, 10.0, clock=clock)
    with pytest.raises(TypeError, match="keys must be"):
        limiter.is_allowed_many(keys)
    with pytest.raises(TypeError, match="keys must be"):
        limiter._impl.is_allowed_many(keys, 1)
    assert all(limiter._impl.state(k) == [] for k in "user42")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://127.0.0.1:99999", "invalid port '99999'"),
        ("redis://127.0.0.1:99999/0", "invalid port '99999'"),
        ("redis://127.0.0.1:0", "invalid port '0'"),
        ("redis://127.0.0.1:abc/0", "invalid port 'abc'"),
        ("rediss://example.com:70000", "invalid port '70000'"),
        ("redis://[::1]:65536", "invalid port '65536'"),
        ("redis://", "has no host"),
        ("redis:///0", "has no host"),
        ("redis://:secret@/0", "has no host"),
        ("redis://[::1", "not a valid URL"),
        ("http://127.0.0.1:6379", "must start with redis://"),
    ],
)
def test_bad_redis_url_is_configuration_error_naming_url(url: str, expected: str) -> None:
    with pytest.raises(ConfigurationError, match=expected) as info:
        RedisBackend(url=url)
    assert repr(url) in str(info.value)


def test_redis_url_without_port_uses_6379() -> None:
    from ratelimiter.backends.redis_backend import _params_from_url

    params = _params_from_url("redis://u:p@example.com/2")
    assert params is not None
    assert (params["host"], params["port"], params["db"]) == ("example.com", 6379, 2)
    params = _params_from_url("redis://[::1]:6380")
    assert params is not None and (params["host"], params["port"]) == ("::1", 6380)


_OPEN_READ_ONLY = textwrap.dedent(
    """
    import sys
    from ratelimiter import BackendError
    from ratelimiter.backends import SQLiteBackend
    try:
        SQLiteBackend(sys.argv[1])
    except BackendError as e:
        print("BackendError:", e)
    """
)


def test_read_only_sqlite_message_says_why_not_not_an_error(tmp_path: Path) -> None:
    path = tmp_path / "rl.db"
    SQLiteBackend(path).close()
    path.chmod(0o444)
    cmd = [sys.executable, "-c", _OPEN_READ_ONLY, str(path)]
    if os.geteuid() == 0:  # root ignores file modes unless it drops the override
        cmd = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--", *cmd]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
    finally:
        path.chmod(0o644)
    assert out.stdout.startswith(f"BackendError: SQLite database '{path}' is read-only"), (
        out.stdout + out.stderr
    )
    assert "attempt to write a readonly database" in out.stdout
    assert "not an error" not in out.stdout

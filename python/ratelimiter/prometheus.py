"""Prometheus metrics for limiters (install the ``prometheus`` extra: ``prometheus_client``).

One counter, ``ratelimiter_decisions_total{limiter="<name>", decision="allowed"|"denied"}``.
It is labelled by limiter name, never by the rate-limit key: keys are unbounded (one per IP
or user) and would explode the number of time series::

    from prometheus_client import start_http_server
    from ratelimiter.metrics import ObservableRateLimiter
    from ratelimiter.prometheus import PrometheusMetricsCollector

    api = ObservableRateLimiter(limiter, PrometheusMetricsCollector("api"))
    start_http_server(9100)
"""

from __future__ import annotations

import threading
from typing import Optional

from prometheus_client import REGISTRY, CollectorRegistry, Counter

from .algorithms.base import RateLimitResult
from .metrics import MetricsCollector

__all__ = ["PrometheusMetricsCollector"]

_lock = threading.Lock()
_counters: dict[tuple[int, str], tuple[CollectorRegistry, Counter]] = {}


def _counter(registry: CollectorRegistry, namespace: str) -> Counter:
    """The decisions counter of ``registry``, created once and shared by every collector."""
    cache_key = (id(registry), namespace)
    with _lock:
        entry = _counters.get(cache_key)
        if entry is None or entry[0] is not registry:
            counter = Counter(
                "decisions",
                "Rate-limit decisions by limiter and outcome.",
                labelnames=("limiter", "decision"),
                namespace=namespace,
                registry=registry,
            )
            entry = _counters[cache_key] = (registry, counter)
        return entry[1]


class PrometheusMetricsCollector(MetricsCollector):
    """Count decisions in a Prometheus counter labelled ``limiter`` and ``decision``.

    Several collectors (one per limiter name) share one counter per registry.

    Args:
        name: The ``limiter`` label value, e.g. ``"api"`` or ``"login"``.
        registry: Where the counter is registered (default: the global ``REGISTRY``).
        namespace: Metric name prefix (default ``"ratelimiter"``, giving
            ``ratelimiter_decisions_total``).
    """

    def __init__(
        self,
        name: str = "default",
        registry: Optional[CollectorRegistry] = None,
        namespace: str = "ratelimiter",
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"name must be a non-empty str, got {name!r}")
        self.name = name
        counter = _counter(REGISTRY if registry is None else registry, namespace)
        self._allowed = counter.labels(limiter=name, decision="allowed")
        self._denied = counter.labels(limiter=name, decision="denied")

    def record(self, key: str, result: RateLimitResult) -> None:
        """Increment the allowed or denied series of this limiter (``key`` is not used)."""
        (self._allowed if result.allowed else self._denied).inc()

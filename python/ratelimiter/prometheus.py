"""Prometheus metrics for limiters (install the ``prometheus`` extra: ``prometheus_client``).

Two counters:

* ``ratelimiter_decisions_total{limiter="<name>", decision="allowed"|"denied"}``;
* ``ratelimiter_near_limit_total{limiter="<name>"}``: near-limit events, counted when
  :class:`~ratelimiter.metrics.ObservableRateLimiter` reports a key crossing its
  ``near_limit_ratio`` (once per key per window, exactly when ``on_near_limit`` would be
  called; see :class:`~ratelimiter.metrics.NearLimitTracker`).

They are labelled by limiter name, never by the rate-limit key: keys are unbounded (one per
IP or user) and would explode the number of time series::

    from prometheus_client import start_http_server
    from ratelimiter.metrics import ObservableRateLimiter
    from ratelimiter.prometheus import PrometheusMetricsCollector

    api = ObservableRateLimiter(limiter, PrometheusMetricsCollector("api"),
                                near_limit_ratio=0.8)
    start_http_server(9100)
"""

from __future__ import annotations

import threading
from typing import Optional

from prometheus_client import REGISTRY, CollectorRegistry, Counter

from .metrics import MetricsCollector
from .result import RateLimitResult

__all__ = ["PrometheusMetricsCollector"]

_lock = threading.Lock()
_counters: dict[tuple[int, str, str], tuple[CollectorRegistry, Counter]] = {}

# name -> (help text, label names) of each counter a collector feeds.
_METRICS = {
    "decisions": ("Rate-limit decisions by limiter and outcome.", ("limiter", "decision")),
    "near_limit": (
        "Keys crossing their near-limit ratio (once per key per window), by limiter.",
        ("limiter",),
    ),
}


def _counter(registry: CollectorRegistry, namespace: str, name: str = "decisions") -> Counter:
    """The ``name`` counter of ``registry``, created once and shared by every collector."""
    cache_key = (id(registry), namespace, name)
    with _lock:
        entry = _counters.get(cache_key)
        if entry is None or entry[0] is not registry:
            documentation, labelnames = _METRICS[name]
            counter = Counter(
                name,
                documentation,
                labelnames=labelnames,
                namespace=namespace,
                registry=registry,
            )
            entry = _counters[cache_key] = (registry, counter)
        return entry[1]


class PrometheusMetricsCollector(MetricsCollector):
    """Count decisions in a Prometheus counter labelled ``limiter`` and ``decision``, and
    near-limit events in one labelled ``limiter``.

    Several collectors (one per limiter name) share each counter per registry. Giving this
    collector to an :class:`~ratelimiter.metrics.ObservableRateLimiter` turns near-limit
    tracking on (its ``near_limit_ratio``, default 0.8), with or without ``on_near_limit``.

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
        registry = REGISTRY if registry is None else registry
        counter = _counter(registry, namespace)
        self._allowed = counter.labels(limiter=name, decision="allowed")
        self._denied = counter.labels(limiter=name, decision="denied")
        self._near_limit = _counter(registry, namespace, "near_limit").labels(limiter=name)

    def record(self, key: str, result: RateLimitResult) -> None:
        """Increment the allowed or denied series of this limiter (``key`` is not used)."""
        (self._allowed if result.allowed else self._denied).inc()

    def record_near_limit(self, key: str, result: RateLimitResult) -> None:
        """Increment this limiter's near-limit series (``key`` is not used)."""
        self._near_limit.inc()

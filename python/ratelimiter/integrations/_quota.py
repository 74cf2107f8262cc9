"""Usage reports and near-limit alerts for the framework integrations.

The integrations decide through :class:`~ratelimiter.multi.MultiRateLimiter`, so one result
carries several limits (``metadata["limits"]``). A client cares about each of them on its
own: "80 % of my daily quota" matters even while the per-second limit is untouched. So
both features here work **per limit**:

* :func:`limit_results` splits a group's result into one plain ``RateLimitResult`` per
  limit, its ``metadata["policy"]`` the limit text (``"5/minute"``);
* :class:`NearLimitAlerts` runs each of those through one
  :class:`~ratelimiter.metrics.NearLimitTracker` (once per key per limit per window);
* :class:`UsageReport` turns peeked results into the JSON of :mod:`ratelimiter._usage`
  (same fields as the middleware's report, plus ``policy``), one resource per limit.

The report names resources by route or shared scope and limit, never by key: the key is
the caller's own and is not echoed, and only the caller's key is ever peeked.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

from .._usage import usage_body, usage_entry
from ..limits import Limit
from ..metrics import (
    NearLimitCallback,
    NearLimitTracker,
    check_near_limit_callback,
    check_near_limit_ratio,
    clock_of,
    notify_near_limit_async,
    notify_near_limit_sync,
)
from ..result import RateLimitResult

__all__ = ["NearLimitAlerts", "UsageReport", "limit_results", "near_limit_alerts"]


def limit_results(result: RateLimitResult) -> list[tuple[str, RateLimitResult]]:
    """``[(dimension, result of one limit)]`` for each limit in ``result``.

    Each per-limit result has ``metadata == {"policy": "<limit text>"}``; ``dimension`` is
    the integration's internal name of the rule the limit belongs to (``""`` if none).
    """
    entries = result.metadata.get("limits")
    if not entries:
        policy = str(Limit(result.limit, result.window))
        return [("", RateLimitResult(result.allowed, result.key, result.limit,
                                     result.remaining, result.reset_after,
                                     result.retry_after, {"policy": policy},
                                     window=result.window))]
    out = []
    for entry in entries:
        amount, window = int(entry["limit"]), float(entry["window"])
        out.append((entry["dimension"] or "", RateLimitResult(
            bool(entry["allowed"]), result.key, amount, int(entry["remaining"]),
            float(entry["reset_after"]), float(entry["retry_after"]),
            {"policy": str(Limit(amount, window))}, window=window)))
    return out


class NearLimitAlerts:
    """``on_near_limit(key, result)`` for an integration: called once per key per limit per
    window (see :class:`~ratelimiter.metrics.NearLimitTracker` for the exact rule) with
    the result of the one limit that crossed ``ratio`` (``result.metadata["policy"]`` names
    it). Shared scopes are tracked once whichever view counted into them. Thread-safe."""

    def __init__(self, callback: NearLimitCallback, ratio: float) -> None:
        self.callback = callback
        self.tracker = NearLimitTracker(ratio)

    def due(self, key: str, result: RateLimitResult, limiter: Any) -> list[RateLimitResult]:
        """The per-limit results of this decision that are due an alert."""
        clock = clock_of(limiter)
        return [one for dimension, one in limit_results(result)
                if self.tracker.observe(f"{dimension}\x1f{one.metadata['policy']}\x1f{key}",
                                        one, clock)]

    def notify(self, key: str, result: RateLimitResult, limiter: Any) -> None:
        for one in self.due(key, result, limiter):
            notify_near_limit_sync(self.callback, key, one)

    async def notify_async(self, key: str, result: RateLimitResult, limiter: Any) -> None:
        for one in self.due(key, result, limiter):
            await notify_near_limit_async(self.callback, key, one)


def near_limit_alerts(on_near_limit: object, near_limit_ratio: object,
                      where: str = "") -> Optional[NearLimitAlerts]:
    """Checked options (errors name ``where`` + the parameter); ``None`` without a callback."""
    ratio = check_near_limit_ratio(near_limit_ratio, f"{where}near_limit_ratio")
    callback = check_near_limit_callback(on_near_limit, f"{where}on_near_limit")
    return None if callback is None else NearLimitAlerts(callback, ratio)


class UsageReport:
    """Collects one client's peeked results into a usage report.

    ``add`` each group's peek with a ``label`` (a route, or a shared scope's name) and the
    routes it covers; a limit already reported for the same dimension and key (a shared
    scope reached through several views) only gains routes.
    """

    def __init__(self) -> None:
        self.resources: dict[str, dict[str, Any]] = {}
        self._seen: dict[tuple[str, str, str], str] = {}

    def add(self, label: str, routes: Sequence[str], limiter: Any, key: str,
            result: RateLimitResult, dimensions: Optional[set[str]] = None) -> None:
        """Report every limit of ``result`` (only those of ``dimensions`` when given)."""
        for dimension, one in limit_results(result):
            if dimensions is not None and dimension not in dimensions:
                continue
            policy = one.metadata["policy"]
            seen = (dimension, policy, key)
            name = self._seen.get(seen)
            if name is not None:
                listed = self.resources[name]["routes"]
                listed.extend(r for r in routes if r not in listed)
                continue
            name = base = f"{label} {policy}"
            n = 1
            while name in self.resources:
                n += 1
                name = f"{base} #{n}"
            entry = usage_entry(limiter, one, list(routes))
            entry["algorithm"] = getattr(limiter, "algorithm", entry["algorithm"])
            entry["policy"] = policy
            self.resources[name] = entry
            self._seen[seen] = name

    def body(self) -> bytes:
        return usage_body(self.resources)


"""Sliding window counter: O(1) approximation of the sliding log."""

from __future__ import annotations

from .. import _core
from .base import WindowRateLimiter

__all__ = ["SlidingWindowCounterRateLimiter"]


class SlidingWindowCounterRateLimiter(WindowRateLimiter):
    """Weighted two-window counter.

    `effective = prev * (1 - elapsed/window) + curr`; admits iff `effective + cost <= limit`.
    Three numbers per key; smooths the fixed-window boundary burst.
    Metadata: `curr_count`, `prev_count`, `effective_count`, `weight_prev`."""

    _native_class = _core.SlidingWindowCounterLimiter

"""Sliding window log: exact."""

from __future__ import annotations

from .. import _core
from .base import WindowRateLimiter

__all__ = ["SlidingWindowRateLimiter"]


class SlidingWindowRateLimiter(WindowRateLimiter):
    """Exact sliding window: admits iff requests in `(now - window, now]` plus cost <= limit.

    Keeps a timestamp per admitted request (merged per instant), bounded by `limit`.
    Metadata: `current_count`."""

    _native_class = _core.SlidingWindowLimiter

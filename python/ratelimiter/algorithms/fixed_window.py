"""Fixed window counter."""

from __future__ import annotations

from .. import _core
from .base import WindowRateLimiter

__all__ = ["FixedWindowRateLimiter"]


class FixedWindowRateLimiter(WindowRateLimiter):
    """Counts requests in aligned windows `[k*window, (k+1)*window)`.

    Admits iff `count + cost <= limit`. Rejected requests do not consume. Cheapest state
    (two numbers), but a client can send `2*limit` across a window boundary.
    Metadata: `window_start`, `count`."""

    _native_class = _core.FixedWindowLimiter

"""Fixed window counter."""

from __future__ import annotations

from typing import Callable, Optional

from .. import _core
from ..backends.base import BaseBackend
from ..config import ConfigProvider
from .base import NativeRateLimiter

__all__ = ["FixedWindowRateLimiter"]


class FixedWindowRateLimiter(NativeRateLimiter):
    """Counts requests in aligned windows `[k*window, (k+1)*window)`.

    Admits iff `count + cost <= limit`. Rejected requests do not consume. Cheapest state
    (two numbers), but a client can send `2*limit` across a window boundary.
    Metadata: `window_start`, `count`."""

    _native_class = _core.FixedWindowLimiter

    def __init__(
        self,
        backend: BaseBackend,
        limit: int,
        window: float,
        *,
        key_prefix: str = "",
        config_provider: Optional[ConfigProvider] = None,
        clock: Optional[Callable[[], float]] = None,
    ) -> None:
        super().__init__(
            backend,
            limit,
            window,
            {},
            key_prefix=key_prefix,
            config_provider=config_provider,
            clock=clock,
        )

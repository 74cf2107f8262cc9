"""Sliding window log: exact."""

from __future__ import annotations

from typing import Callable, Optional

from .. import _core
from ..backends.base import BaseBackend
from ..config import ConfigProvider
from .base import NativeRateLimiter

__all__ = ["SlidingWindowRateLimiter"]


class SlidingWindowRateLimiter(NativeRateLimiter):
    """Exact sliding window: admits iff requests in `(now - window, now]` plus cost <= limit.

    Keeps a timestamp per admitted request (merged per instant), bounded by `limit`.
    Metadata: `current_count`."""

    _native_class = _core.SlidingWindowLimiter

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

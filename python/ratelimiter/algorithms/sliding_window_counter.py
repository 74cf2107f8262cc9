"""Sliding window counter: O(1) approximation of the sliding log."""

from __future__ import annotations

from typing import Callable, Optional

from .. import _core
from ..backends.base import BaseBackend
from ..config import ConfigProvider
from .base import NativeRateLimiter

__all__ = ["SlidingWindowCounterRateLimiter"]


class SlidingWindowCounterRateLimiter(NativeRateLimiter):
    """Weighted two-window counter.

    `effective = prev * (1 - elapsed/window) + curr`; admits iff `effective + cost <= limit`.
    Three numbers per key; smooths the fixed-window boundary burst.
    Metadata: `curr_count`, `prev_count`, `effective_count`, `weight_prev`."""

    _native_class = _core.SlidingWindowCounterLimiter

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

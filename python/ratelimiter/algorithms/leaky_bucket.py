"""Leaky bucket (as a meter)."""

from __future__ import annotations

from typing import Callable, Optional

from .. import _core
from ..backends.base import BaseBackend
from ..config import ConfigProvider
from .base import NativeRateLimiter

__all__ = ["LeakyBucketRateLimiter"]


class LeakyBucketRateLimiter(NativeRateLimiter):
    """Bucket leaking at `leak_rate` units/s (default limit/window).

    Admits iff `level + cost <= limit`; smooths traffic to a steady outflow.
    Metadata: `level`, `leak_rate`."""

    _native_class = _core.LeakyBucketLimiter

    def __init__(
        self,
        backend: BaseBackend,
        limit: int,
        window: float,
        leak_rate: Optional[float] = None,
        *,
        key_prefix: str = "",
        config_provider: Optional[ConfigProvider] = None,
        clock: Optional[Callable[[], float]] = None,
    ) -> None:
        super().__init__(
            backend,
            limit,
            window,
            {"leak_rate": leak_rate},
            key_prefix=key_prefix,
            config_provider=config_provider,
            clock=clock,
        )

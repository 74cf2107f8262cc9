"""Token bucket."""

from __future__ import annotations

from typing import Callable, Optional

from .. import _core
from ..backends.base import BaseBackend
from ..config import ConfigProvider
from .base import NativeRateLimiter

__all__ = ["TokenBucketRateLimiter"]


class TokenBucketRateLimiter(NativeRateLimiter):
    """Bucket of capacity `limit` refilled at `refill_rate` tokens/s (default limit/window).

    A new key starts full; admits iff `tokens >= cost`. Allows bursts up to `limit`
    with a smooth long-run rate. Metadata: `tokens`, `refill_rate`."""

    _native_class = _core.TokenBucketLimiter

    def __init__(
        self,
        backend: BaseBackend,
        limit: int,
        window: float,
        refill_rate: Optional[float] = None,
        *,
        key_prefix: str = "",
        config_provider: Optional[ConfigProvider] = None,
        clock: Optional[Callable[[], float]] = None,
    ) -> None:
        super().__init__(
            backend,
            limit,
            window,
            {"refill_rate": refill_rate},
            key_prefix=key_prefix,
            config_provider=config_provider,
            clock=clock,
        )

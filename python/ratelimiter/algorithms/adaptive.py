"""Adaptive hybrid limiter: burst allowance that shrinks under load."""

from __future__ import annotations

from typing import Callable, Optional

from .. import _core
from ..backends.base import BaseBackend
from ..config import ConfigProvider
from .base import NativeRateLimiter

__all__ = ["AdaptiveRateLimiter"]


class AdaptiveRateLimiter(NativeRateLimiter):
    """Sliding-window guard + token bucket + load sensor.

    The burst ceiling `effective_burst = max(1, int(limit * burst_multiplier * factor))`,
    where `factor` falls linearly from 1 (load <= `low_load_threshold`) to
    `1 - penalty` (load >= `high_load_threshold`). The guard (a sliding window capped at
    `effective_burst`) is checked first, then a token bucket of capacity `effective_burst`
    refilling at `limit/window`, so the long-run average is `limit` per `window`.

    Load is each key's own admitted rate over `adaptive_window` (default `5*window`)
    against `limit/window`; with `load_capacity=<requests/s>` it is this process's
    aggregate admitted rate over all keys against that capacity.
    Metadata: `layer`, `tokens`, `effective_burst`, `refill_rate`, `sw_count`, `load`."""

    _native_class = _core.AdaptiveLimiter

    def __init__(
        self,
        backend: BaseBackend,
        limit: int,
        window: float,
        burst_multiplier: float = 2.0,
        adaptive_window: Optional[float] = None,
        high_load_threshold: float = 0.8,
        low_load_threshold: float = 0.4,
        penalty: float = 0.5,
        *,
        key_prefix: str = "",
        config_provider: Optional[ConfigProvider] = None,
        clock: Optional[Callable[[], float]] = None,
        load_capacity: Optional[float] = None,
    ) -> None:
        super().__init__(
            backend,
            limit,
            window,
            {
                "burst_multiplier": burst_multiplier,
                "adaptive_window": adaptive_window,
                "high_load_threshold": high_load_threshold,
                "low_load_threshold": low_load_threshold,
                "penalty": penalty,
                "load_capacity": load_capacity,
            },
            key_prefix=key_prefix,
            config_provider=config_provider,
            clock=clock,
        )

"""Generic cell rate algorithm (GCRA)."""

from __future__ import annotations

from typing import Callable, Optional

from .. import _core
from ..backends.base import BaseBackend
from ..config import ConfigProvider
from .base import NativeRateLimiter

__all__ = ["GCRARateLimiter"]


class GCRARateLimiter(NativeRateLimiter):
    """GCRA: one timestamp per key, exact and smooth.

    Emission interval `window/limit`; up to `burst` (default `limit`) requests at once.
    Admits exactly what a token bucket of the same rate and burst admits.
    Metadata: `tat` (theoretical arrival time)."""

    _native_class = _core.GcraLimiter

    def __init__(
        self,
        backend: BaseBackend,
        limit: int,
        window: float,
        burst: Optional[int] = None,
        *,
        key_prefix: str = "",
        config_provider: Optional[ConfigProvider] = None,
        clock: Optional[Callable[[], float]] = None,
    ) -> None:
        super().__init__(
            backend,
            limit,
            window,
            {"burst": burst},
            key_prefix=key_prefix,
            config_provider=config_provider,
            clock=clock,
        )

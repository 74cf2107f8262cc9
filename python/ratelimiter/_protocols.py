"""Structural types shared by the Python integration modules (decorators, middleware, ...)."""

from __future__ import annotations

from collections.abc import Awaitable, MutableMapping
from typing import TYPE_CHECKING, Any, Callable, Protocol

if TYPE_CHECKING:
    from .result import RateLimitResult

__all__ = ["ASGIApp", "Message", "Receive", "Scope", "Send", "SyncLimiter"]


class SyncLimiter(Protocol):
    """What the integrations need from a limiter: every built-in limiter, an
    ``ObservableRateLimiter``, or a user's own object with these members."""

    @property
    def limit(self) -> int:
        """Requests admitted per window."""
        ...

    @property
    def window(self) -> float:
        """Window length in seconds."""
        ...

    def is_allowed(self, key: str, cost: int = 1) -> RateLimitResult:
        """Decide one request of ``cost`` for ``key``."""
        ...

    def reset(self, key: str) -> None:
        """Forget ``key``'s state."""
        ...


# ASGI types, spelled like Starlette's so the middleware type-checks with add_middleware().
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

"""The outcome of one decision: :class:`RateLimitResult`.

A leaf module (it imports only the compiled core), so backends, algorithms and integrations
can all build results without importing each other. The documented path
``ratelimiter.algorithms.base.RateLimitResult`` re-exports this class.
"""

from __future__ import annotations

import math
from typing import Any

from . import _core

__all__ = ["RateLimitResult"]

_RESULT_FIELDS = ("allowed", "key", "limit", "remaining", "reset_after", "retry_after")


def _whole_seconds(seconds: float) -> str:
    """Seconds rounded up to an integer, as HTTP headers want them (RFC 9110)."""
    return str(max(0, math.ceil(seconds - 1e-9)))


class RateLimitResult(_core.RateLimitResultBase):
    """The outcome of one decision.

    Fields: ``allowed``, ``key`` (without prefix), ``limit``, ``remaining`` (>= 0),
    ``reset_after`` (seconds until the quota is fully restored), ``retry_after`` (0 when
    allowed; otherwise the exact wait after which the same request would be admitted if
    nobody else consumed, ``inf`` when it never can be), ``metadata`` (algorithm-specific,
    built when read). Immutable; compares and prints like a frozen dataclass.
    """

    __slots__ = ()

    @property
    def advertised_limit(self) -> int:
        """The limit the headers announce: always at least ``remaining``.

        For most algorithms this is ``limit``. Bursty ones can hold more than ``limit`` at
        once; for them the headers announce the capacity, so ``Remaining`` never exceeds
        ``Limit``: the adaptive limiter's current ``effective_burst`` (``limit ·
        burst_multiplier``, less under load), and a GCRA with ``burst > limit`` at least
        what remains (its burst is not in the result).
        """
        remaining: int = self.remaining
        burst = self.metadata.get("effective_burst")  # the adaptive limiter's capacity
        if isinstance(burst, int) and not isinstance(burst, bool):
            return max(burst, remaining)
        return max(self.limit, remaining)

    @property
    def headers(self) -> dict[str, str]:
        """``X-RateLimit-Limit/Remaining/Reset`` and, when rejected, ``Retry-After``.

        ``Limit`` is :attr:`advertised_limit` (``Remaining`` never exceeds it). Reset and
        Retry-After are whole seconds rounded up. No ``Retry-After`` is sent when waiting
        cannot help (cost above capacity).
        """
        headers = {
            "X-RateLimit-Limit": str(self.advertised_limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": _whole_seconds(self.reset_after),
        }
        if not self.allowed and math.isfinite(self.retry_after):
            headers["Retry-After"] = _whole_seconds(self.retry_after)
        return headers

    @property
    def ietf_headers(self) -> dict[str, str]:
        """``RateLimit-Policy`` and ``RateLimit`` per the IETF httpapi ratelimit-headers draft.

        ``RateLimit-Policy: "default";q=<limit>;w=<window>`` and
        ``RateLimit: "default";r=<remaining>;t=<seconds to reset>``; plus ``Retry-After``
        when rejected (finite waits only).
        """
        window = max(1, math.ceil(self.window)) if self.window > 0 else None
        policy = f'"default";q={self.advertised_limit}' + (f";w={window}" if window else "")
        headers = {
            "RateLimit-Policy": policy,
            "RateLimit": f'"default";r={self.remaining};t={_whole_seconds(self.reset_after)}',
        }
        if not self.allowed and math.isfinite(self.retry_after):
            headers["Retry-After"] = _whole_seconds(self.retry_after)
        return headers

    def _fields(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in _RESULT_FIELDS) + (self.metadata,)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RateLimitResult):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, name) for name in _RESULT_FIELDS))

    def __repr__(self) -> str:
        parts = ", ".join(f"{name}={value!r}" for name, value in
                          zip(_RESULT_FIELDS + ("metadata",), self._fields()))
        return f"RateLimitResult({parts})"

    def __bool__(self) -> bool:
        return bool(self.allowed)

    def __reduce__(self) -> tuple[Any, ...]:
        kwargs = {name: getattr(self, name) for name in _RESULT_FIELDS}
        kwargs["metadata"] = self.metadata
        return (_rebuild_result, (kwargs, self.window))


def _rebuild_result(kwargs: dict[str, Any], window: float) -> RateLimitResult:
    # Pickles name this function by module and name: those written before the class moved
    # here name ratelimiter.algorithms.base._rebuild_result, which re-exports this one.
    return RateLimitResult(**kwargs, window=window)


# Registered before any instance exists: the core then allocates results of this class as
# plain C objects, outside the cyclic GC (it holds no references that could form a cycle).
_core._set_result_class(RateLimitResult)

"""``RetryPolicy``: when to retry a refused HTTP call and how long to wait first.

What the server says wins: ``Retry-After`` (delta-seconds or an HTTP date, RFC 9110
§10.2.3), else the IETF ``RateLimit`` header (``"policy";r=0;t=30`` from the httpapi
ratelimit-headers draft, or the older ``RateLimit-Remaining: 0`` + ``RateLimit-Reset: 30``).
Either is capped at ``backoff_max``. Garbage (``"soon"``, ``"-5"``, ``"1e309"``) is ignored.
Without a usable header the wait is exponential backoff with jitter:
``min(backoff_max, backoff_base * 2**retry)``, drawn uniformly from ``[0, that]`` ("full"
jitter, which spreads retrying clients apart best), ``[that/2, that]`` ("equal") or exactly
that ("none").
"""

from __future__ import annotations

import math
import random as _random
import re
from collections.abc import Iterable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Optional

from ..exceptions import ConfigurationError, ConfigurationTypeError

__all__ = [
    "IDEMPOTENT_METHODS",
    "RetryPolicy",
    "parse_ratelimit_header",
    "parse_retry_after",
]

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
"""Methods retried by default (RFC 9110 §9.2.2); POST/PATCH only if the policy says so."""

_DIGITS = re.compile(r"[0-9]+")
_JITTERS = ("full", "equal", "none")


def parse_retry_after(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """Seconds to wait from a ``Retry-After`` value, or ``None`` if it is not valid.

    ``value`` is delta-seconds (digits only) or an HTTP date (a date in the past means 0).
    ``now`` is the current Unix time for dates (default ``time.time()``). Anything else —
    signs, decimals, exponents, words — is ``None``: the caller falls back to backoff.
    """
    if value is None:
        return None
    text = value.strip()
    if _DIGITS.fullmatch(text):
        return float(min(int(text[:20]), 10**15))  # bounded: the policy caps it anyway
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None or when.tzinfo is None:  # RFC 9110 dates are always GMT
        return None
    if now is None:
        import time

        now = time.time()
    return max(0.0, when.timestamp() - now)


def _items(value: str) -> Iterable[dict[str, str]]:
    """Parameters of each item of a structured-field list (``"a";r=0;t=3, "b";r=5``)."""
    for item in value.split(","):
        params: dict[str, str] = {}
        for part in item.split(";"):
            name, sep, val = part.strip().partition("=")
            if sep:
                params[name.strip().lower()] = val.strip()
        yield params


def _seconds(text: Optional[str]) -> Optional[float]:
    if text is None or not _DIGITS.fullmatch(text.strip()):
        return None
    return float(min(int(text.strip()[:20]), 10**15))


def parse_ratelimit_header(headers: Mapping[str, str]) -> Optional[float]:
    """Seconds until quota returns per the IETF ``RateLimit`` headers, if exhausted.

    ``RateLimit: "default";r=0;t=30`` (draft-07+, one item per policy: the longest ``t``
    among items with ``r=0``), or ``RateLimit-Remaining: 0`` with ``RateLimit-Reset: 30``
    (earlier drafts). ``None`` when quota remains or the headers are missing or malformed.
    """
    combined = _get(headers, "RateLimit")
    if combined is not None:
        items = list(_items(combined))
        # draft-03 wrote one dictionary (limit=10, remaining=0, reset=7): read it as one item
        merged = {k: v for params in items for k, v in params.items()}
        waits = []
        for params in items + [merged]:
            remaining = _seconds(params.get("r", params.get("remaining")))
            reset = _seconds(params.get("t", params.get("reset")))
            if remaining == 0 and reset is not None:
                waits.append(reset)
        if waits:
            return max(waits)
    remaining = _seconds(_get(headers, "RateLimit-Remaining"))
    reset = _seconds(_get(headers, "RateLimit-Reset"))
    if remaining == 0 and reset is not None:
        return reset
    return None


def _get(headers: Mapping[str, str], name: str) -> Optional[str]:
    """A header by case-insensitive name (requests and httpx headers already are)."""
    value = headers.get(name)
    if value is None and not hasattr(headers, "lower_items"):
        lowered = name.lower()
        for key, val in headers.items():
            if key.lower() == lowered:
                return val
    return value


def _number(name: str, value: Any, *, minimum: float, allow_zero: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationTypeError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or value < minimum or (value == minimum and not allow_zero):
        bound = f">= {minimum}" if allow_zero else f"> {minimum}"
        raise ConfigurationError(f"{name} must be a finite number {bound}, got {value!r}")
    return float(value)


class RetryPolicy:
    """How an HTTP adapter retries a refused call.

    Args:
        max_retries: Retries after the first attempt (int >= 0); then ``RetryExhausted``.
        backoff_base: First backoff in seconds (doubles per retry).
        backoff_max: Cap on every wait, including a server's ``Retry-After``.
        budget: Most seconds from the first attempt to the last retry (``None``: no bound);
            a retry whose wait would end after it is not made (``RetryExhausted`` at once).
        jitter: ``"full"`` (default), ``"equal"`` or ``"none"``.
        retry_statuses: Status codes that are retried.
        respect_retry_after: Read ``Retry-After`` / ``RateLimit`` (else always back off).
        methods: Methods retried (default the idempotent ones); ``None`` retries all.
        random: ``() -> float`` in [0, 1) for the jitter (tests pass a fixed one).
    """

    def __init__(
        self,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 60.0,
        budget: Optional[float] = None,
        jitter: str = "full",
        retry_statuses: Iterable[int] = (429, 503),
        respect_retry_after: bool = True,
        *,
        methods: Optional[Iterable[str]] = IDEMPOTENT_METHODS,
        random: Optional[Callable[[], float]] = None,
    ) -> None:
        if isinstance(max_retries, bool) or not isinstance(max_retries, int):
            raise ConfigurationTypeError(
                f"max_retries must be an int, got {type(max_retries).__name__}")
        if max_retries < 0:
            raise ConfigurationError(f"max_retries must be >= 0, got {max_retries}")
        self.max_retries = max_retries
        self.backoff_base = _number("backoff_base", backoff_base, minimum=0, allow_zero=True)
        self.backoff_max = _number("backoff_max", backoff_max, minimum=0, allow_zero=True)
        self.budget = (None if budget is None
                       else _number("budget", budget, minimum=0, allow_zero=True))
        if jitter not in _JITTERS:
            raise ConfigurationError(f"jitter must be one of {_JITTERS}, got {jitter!r}")
        self.jitter = jitter
        statuses = tuple(retry_statuses)
        if not all(isinstance(s, int) and not isinstance(s, bool) for s in statuses):
            raise ConfigurationTypeError(f"retry_statuses must be ints, got {statuses!r}")
        self.retry_statuses = frozenset(statuses)
        self.respect_retry_after = bool(respect_retry_after)
        self.methods = None if methods is None else frozenset(m.upper() for m in methods)
        self._random = random or _random.random

    def retries_method(self, method: str) -> bool:
        """Whether a refused ``method`` call may be sent again."""
        return self.methods is None or method.upper() in self.methods

    def server_wait(self, headers: Mapping[str, str], now: Optional[float] = None) -> \
            Optional[float]:
        """The wait the server asked for (``Retry-After``, else ``RateLimit``), capped at
        ``backoff_max``; ``None`` if it asked for none (or ``respect_retry_after`` is off)."""
        if not self.respect_retry_after:
            return None
        wait = parse_retry_after(_get(headers, "Retry-After"), now)
        if wait is None:
            wait = parse_ratelimit_header(headers)
        return None if wait is None else min(wait, self.backoff_max)

    def backoff(self, retry: int) -> float:
        """The wait before retry number ``retry`` (0-based) when the server named none."""
        ceiling = min(self.backoff_max, self.backoff_base * 2.0 ** min(retry, 1023))
        if self.jitter == "full":
            return ceiling * self._random()
        if self.jitter == "equal":
            return ceiling / 2 + ceiling / 2 * self._random()
        return ceiling

    def __repr__(self) -> str:
        return (f"RetryPolicy(max_retries={self.max_retries}, backoff_base={self.backoff_base}, "
                f"backoff_max={self.backoff_max}, budget={self.budget}, jitter={self.jitter!r}, "
                f"retry_statuses={tuple(sorted(self.retry_statuses))}, "
                f"respect_retry_after={self.respect_retry_after})")


class _Attempts:
    """One logical call's retry bookkeeping, shared by every adapter (sync and async)."""

    def __init__(self, policy: RetryPolicy, now: float) -> None:
        self.policy = policy
        self.start = now
        self.sent = 0

    def remaining_budget(self, now: float) -> Optional[float]:
        if self.policy.budget is None:
            return None
        return max(0.0, self.start + self.policy.budget - now)

    def next_wait(self, server_wait: Optional[float], now: float) -> tuple[Optional[float], str]:
        """``(wait, "")`` before the next retry, or ``(None, reason)`` to give up now."""
        retry = self.sent - 1
        if retry >= self.policy.max_retries:
            return None, "max_retries"
        wait = self.policy.backoff(retry) if server_wait is None else server_wait
        left = self.remaining_budget(now)
        if left is not None and wait > left:
            return None, "budget"
        return wait, ""

"""``CircuitBreaker``: stop calling a service that keeps failing, try again later."""

from __future__ import annotations

import math
import threading
import time
from typing import Callable, Optional

from ..exceptions import CircuitOpen, ConfigurationError, ConfigurationTypeError

__all__ = ["CircuitBreaker"]


class CircuitBreaker:
    """Opens after ``failures`` consecutive failures; half-opens after ``reset_timeout``.

    * closed: calls go through; a success resets the failure count.
    * open: :meth:`before_call` raises :class:`~ratelimiter.exceptions.CircuitOpen` at once
      (with the seconds left) until ``reset_timeout`` has passed since it opened.
    * half-open: exactly one trial call goes through (others still get ``CircuitOpen``); its
      success closes the circuit, its failure opens it for another ``reset_timeout``.

    The HTTP adapters count a transport error or a retryable status (429, 503, any 5xx) as
    a failure. Thread-safe; one breaker may guard many sessions.

    Args:
        failures: Consecutive failures that open the circuit (int >= 1).
        reset_timeout: Seconds the circuit stays open before a trial (finite, > 0).
        clock: Zero-argument callable returning seconds (default ``time.monotonic``).
    """

    def __init__(self, failures: int = 5, reset_timeout: float = 30.0,
                 *, clock: Optional[Callable[[], float]] = None) -> None:
        if isinstance(failures, bool) or not isinstance(failures, int):
            raise ConfigurationTypeError(
                f"failures must be an int, got {type(failures).__name__}")
        if failures < 1:
            raise ConfigurationError(f"failures must be >= 1, got {failures}")
        if isinstance(reset_timeout, bool) or not isinstance(reset_timeout, (int, float)):
            raise ConfigurationTypeError(
                f"reset_timeout must be a number, got {type(reset_timeout).__name__}")
        if not math.isfinite(reset_timeout) or reset_timeout <= 0:
            raise ConfigurationError(
                f"reset_timeout must be a finite number > 0, got {reset_timeout!r}")
        self.failures = failures
        self.reset_timeout = float(reset_timeout)
        self._clock = clock or time.monotonic
        self._lock = threading.Lock()
        self._count = 0
        self._opened_at: Optional[float] = None
        self._trial = False  # a half-open trial call is in flight

    @property
    def state(self) -> str:
        """``"closed"``, ``"open"`` or ``"half-open"``."""
        with self._lock:
            if self._opened_at is None:
                return "closed"
            if self._clock() - self._opened_at >= self.reset_timeout:
                return "half-open"
            return "open"

    def before_call(self) -> None:
        """Raise ``CircuitOpen`` unless a call may go through now."""
        with self._lock:
            if self._opened_at is None:
                return
            left = self._opened_at + self.reset_timeout - self._clock()
            if left > 0:
                raise CircuitOpen(left)
            if self._trial:
                raise CircuitOpen(0.0)
            self._trial = True

    def record_success(self) -> None:
        """A call succeeded: close the circuit."""
        with self._lock:
            self._count = 0
            self._opened_at = None
            self._trial = False

    def record_failure(self) -> None:
        """A call failed: count it; open (or re-open) the circuit at the threshold."""
        with self._lock:
            self._count += 1
            if self._trial or self._count >= self.failures:
                self._opened_at = self._clock()
            self._trial = False

    def __repr__(self) -> str:
        return (f"CircuitBreaker(failures={self.failures}, reset_timeout={self.reset_timeout}, "
                f"state={self.state!r})")

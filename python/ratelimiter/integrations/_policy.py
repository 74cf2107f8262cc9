"""The one answer to a rate-limited request, shared by every integration and the middleware.

:class:`ResponsePolicy` turns a :class:`~ratelimiter.algorithms.base.RateLimitResult` into
the rate-limit headers of an admitted response and into the ``429 Too Many Requests`` of a
rejected one: the JSON body ``{"error": "rate limit exceeded"}``, ``Content-Type``,
``Content-Length``, ``Retry-After`` in whole seconds (omitted when waiting cannot help) and
the same rate-limit headers. The WSGI/ASGI middleware, Flask, FastAPI and Django all build
their responses from it, so a client sees one 429 whatever serves it.

Also here, because every integration needs them: the once-per-process warning that a
memory store is not shared between worker processes, and the once-per-view log of a key
function that failed.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import threading
from dataclasses import dataclass
from typing import Any, Literal

from ..limits import Limit
from ..result import RateLimitResult, _whole_seconds

__all__ = [
    "HEADER_STYLES",
    "REJECTION_BODY",
    "HeaderStyle",
    "KeyFuncError",
    "Rejection",
    "ResponsePolicy",
    "check_header_style",
    "warn_if_memory_in_worker",
]

logger = logging.getLogger("ratelimiter.integrations")

HeaderStyle = Literal["x-ratelimit", "ietf", "both", "none"]
HEADER_STYLES = ("x-ratelimit", "ietf", "both", "none")

REJECTION_BODY = b'{"error": "rate limit exceeded"}'
REJECTION_STATUS = 429
KEY_ERROR_BODY = b'{"error": "rate limit key could not be computed"}'


def check_header_style(style: object, param: str = "header_style") -> HeaderStyle:
    """``style`` if it is one of :data:`HEADER_STYLES`, else ``ValueError`` naming ``param``."""
    if style not in HEADER_STYLES:
        raise ValueError(f"{param} must be one of {', '.join(HEADER_STYLES)}; got {style!r}")
    return style  # type: ignore[return-value]


@dataclass(frozen=True)
class Rejection:
    """A 429 ready to send: ``status``, ``headers`` (name, value) and ``body`` bytes."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


class ResponsePolicy:
    """Which rate-limit headers a response carries and what a rejection looks like.

    Args:
        header_style: ``"x-ratelimit"`` (``X-RateLimit-Limit/Remaining/Reset``), ``"ietf"``
            (``RateLimit``/``RateLimit-Policy``), ``"both"``, or ``"none"`` (no rate-limit
            headers; a 429 still carries ``Retry-After``).

    Immutable and thread-safe.
    """

    __slots__ = ("header_style",)

    def __init__(self, header_style: HeaderStyle = "x-ratelimit") -> None:
        self.header_style: HeaderStyle = check_header_style(header_style)

    def headers(self, result: RateLimitResult) -> dict[str, str]:
        """The rate-limit headers for ``result`` (with ``Retry-After`` when it was rejected)."""
        style = self.header_style
        if style == "x-ratelimit":
            return result.headers
        if style == "ietf":
            return _ietf_headers(result)
        if style == "both":
            return {**result.headers, **_ietf_headers(result)}
        retry = result.headers.get("Retry-After")
        return {} if retry is None else {"Retry-After": retry}

    def rejection_headers(self, result: RateLimitResult) -> list[tuple[str, str]]:
        """``Content-Type``, ``Content-Length`` and the rate-limit headers of a 429."""
        headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(REJECTION_BODY))),
        ]
        headers.extend(self.headers(result).items())
        return headers

    def rejection(self, result: RateLimitResult) -> Rejection:
        """The 429 for a rejected ``result``."""
        return Rejection(REJECTION_STATUS, self.rejection_headers(result), REJECTION_BODY)

    def __repr__(self) -> str:
        return f"ResponsePolicy(header_style={self.header_style!r})"


def _ietf_headers(result: RateLimitResult) -> dict[str, str]:
    """``result.ietf_headers``, except that a several-limits result names each policy by its
    limit (``"5/minute"``), not by the integration's internal dimension names (which hold
    view names: nothing a client needs to see)."""
    entries = result.metadata.get("limits")
    if not entries:
        return result.ietf_headers
    policies, states, seen = [], [], set()
    for entry in entries:
        name = base = str(Limit(int(entry["limit"]), float(entry["window"])))
        n = 1
        while name in seen:
            n += 1
            name = f"{base}#{n}"
        seen.add(name)
        window = max(1, math.ceil(entry["window"]))
        policies.append(f'"{name}";q={entry["limit"]};w={window}')
        states.append(f'"{name}";r={entry["remaining"]};t={_whole_seconds(entry["reset_after"])}')
    headers = {"RateLimit-Policy": ", ".join(policies), "RateLimit": ", ".join(states)}
    retry = result.headers.get("Retry-After")
    if retry is not None:
        headers["Retry-After"] = retry
    return headers


class KeyFuncError(RuntimeError):
    """A key function raised or returned something other than a non-empty ``str``.

    The integrations answer ``500`` with ``{"error": "rate limit key could not be
    computed"}`` and log the cause once per view (see :func:`log_key_error_once`).
    """

    def __init__(self, view: str, cause: str) -> None:
        super().__init__(f"rate limit key function for {view} failed: {cause}")
        self.view = view
        self.cause = cause


def call_key_func(key_func: Any, request: Any, view: str) -> str:
    """``key_func(request)``, checked: a ``KeyFuncError`` naming ``view`` if it raises or
    returns anything but a non-empty ``str``."""
    try:
        key = key_func(request)
    except Exception as exc:
        raise KeyFuncError(view, f"{type(exc).__name__}: {exc}") from exc
    return check_key(key, view)


def check_key(key: object, view: str) -> str:
    """``key`` if it is a non-empty ``str``, else a ``KeyFuncError`` naming ``view``."""
    if not isinstance(key, str) or not key:
        raise KeyFuncError(view, f"returned {key!r} (expected a non-empty str)")
    return key


_logged_views: set[str] = set()
_logged_lock = threading.Lock()


def log_key_error_once(error: KeyFuncError) -> None:
    """Log a key function's failure the first time it happens for its view (a broken key
    function fails on every request; one log line says why, thousands would drown it)."""
    with _logged_lock:
        if error.view in _logged_views:
            return
        _logged_views.add(error.view)
    logger.error("%s; answering 500 (logged once per view)", error, exc_info=error.__cause__)


# --------------------------------------------------------------------- memory in workers

_CREATED_PID = os.getpid()
_forked = False
_checked = False  # this process has been checked (reset in a forked child)
_warned = False


def _after_fork_in_child() -> None:
    global _forked, _checked
    _forked = True
    _checked = False


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _in_prefork_worker() -> bool:
    """Whether this process is (probably) one of several workers of a pre-fork server:
    forked after this module was imported (gunicorn ``--preload``, uvicorn ``--workers``),
    or a gunicorn worker that imported the app itself."""
    return _forked or os.getpid() != _CREATED_PID or "gunicorn.workers.base" in sys.modules


def warn_if_memory_in_worker(backend: object) -> None:
    """Log once per process when a ``MemoryBackend`` serves requests in a pre-fork worker.

    Every worker process has its own memory store, so with N workers a client gets N times
    the limit. Use ``SQLiteBackend`` (one host) or ``RedisBackend`` (a fleet) instead.
    Called on every request: after the first memory-backed call of a process it costs one
    global read.
    """
    global _warned, _checked
    if _checked:
        return
    from ..backends.memory import MemoryBackend

    if not isinstance(backend, MemoryBackend):
        return
    _checked = True
    if _in_prefork_worker() and not _warned:
        _warned = True
        logger.warning(
            "ratelimiter: a MemoryBackend is used in a worker process (pid %d); each worker "
            "counts on its own, so N workers admit N times the limit. Use a shared store "
            "(sqlite:///path.db on one host, redis://... for several) to enforce the limit "
            "across workers.", os.getpid(),
        )

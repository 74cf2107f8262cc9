"""The middleware's usage report: a client's own quotas as JSON, like GitHub's ``/rate_limit``.

Shape of the ``200`` body (one resource per distinct limiter that can decide this client's
requests; the key itself is never included)::

    {"resources": {
        "default": {"limit": 60, "remaining": 57, "used": 3, "reset": 1767225660,
                    "reset_after": 42.0, "retry_after": 0.0, "window": 60.0,
                    "algorithm": "fixed_window", "routes": ["*"]},
        "POST /upload": {..., "routes": ["POST /upload"]}}}

Everything here is pure: the middleware peeks the limiters and hands the results over.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any, Optional

from .algorithms.async_base import AnyLimiter, _sync_limiter
from .metrics import clock_of
from .result import RateLimitResult

__all__ = [
    "METHOD_NOT_ALLOWED_BODY",
    "USAGE_METHODS",
    "check_usage_path",
    "route_groups",
    "usage_body",
    "usage_entry",
    "usage_headers",
]

USAGE_METHODS = ("GET", "HEAD")
METHOD_NOT_ALLOWED_BODY = b'{"error": "method not allowed"}'

# A name a limiter class gives itself in usage reports when it has no native algorithm name.
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def check_usage_path(usage_path: object) -> Optional[str]:
    """``usage_path`` if ``None`` or an absolute path without wildcards; else an error."""
    if usage_path is None:
        return None
    if not isinstance(usage_path, str):
        raise TypeError(f"usage_path must be a str or None, got {type(usage_path).__name__}")
    if not usage_path.startswith("/") or "*" in usage_path or any(
        ch.isspace() for ch in usage_path
    ):
        raise ValueError(
            f"usage_path must be an exact path starting with '/' (no spaces or '*'), "
            f"got {usage_path!r}"
        )
    return usage_path


def route_groups(
    route_limiters: Mapping[str, AnyLimiter], default: AnyLimiter
) -> list[tuple[str, list[str], AnyLimiter]]:
    """Group route patterns by limiter object: ``[(name, patterns, limiter)]``.

    A limiter mapped to several patterns is one quota, reported once under its first
    pattern. Patterns mapped to the default limiter itself are listed with the default,
    which comes first and is left out only when a bare ``"*"`` pattern routes every request
    elsewhere.
    """
    groups: dict[int, tuple[str, list[str], AnyLimiter]] = {}
    default_patterns: list[str] = []
    default_used = True
    for pattern, limiter in route_limiters.items():
        text = " ".join(pattern.split())
        if text == "*":
            default_used = False
        if limiter is default:
            default_patterns.append(text)
            continue
        group = groups.get(id(limiter))
        if group is None:
            groups[id(limiter)] = (text, [text], limiter)
        else:
            group[1].append(text)
    ordered = list(groups.values())
    if default_used or default_patterns:
        ordered.insert(0, ("default", ["*", *default_patterns], default))
    return ordered


def _algorithm(limiter: Any) -> str:
    """The snake_case algorithm name of a limiter (``"token_bucket"``, ...)."""
    limiter = _sync_limiter(limiter)
    name = getattr(getattr(limiter, "_impl", None), "algorithm", None)
    if isinstance(name, str):
        return name
    cls = type(limiter).__name__
    for suffix in ("RateLimiter", "Limiter"):
        if cls.endswith(suffix) and cls != suffix:
            cls = cls[: -len(suffix)]
            break
    return _CAMEL.sub("_", cls).lower()


def _seconds(value: float) -> Optional[float]:
    """Seconds rounded to milliseconds for JSON; ``None`` when infinite."""
    return round(value, 3) if math.isfinite(value) else None


def usage_entry(limiter: AnyLimiter, result: RateLimitResult, routes: list[str]) -> dict[str, Any]:
    """One resource of the report from a ``peek`` result (a cost-1 decision, not consumed).

    ``reset`` is the Unix time (whole seconds, rounded up, on the limiter's clock) at which
    the quota is fully restored; ``reset_after`` the same in seconds from now;
    ``retry_after`` the wait before one more request would be admitted (0: now).
    """
    now = clock_of(limiter)()
    reset_after = result.reset_after
    return {
        "limit": result.limit,
        "remaining": result.remaining,
        "used": result.limit - result.remaining,
        "reset": math.ceil(now + reset_after - 1e-9) if math.isfinite(reset_after) else None,
        "reset_after": _seconds(reset_after),
        "retry_after": 0.0 if result.allowed else _seconds(result.retry_after),
        "window": result.window,
        "algorithm": _algorithm(limiter),
        "routes": list(routes),
    }


def usage_body(resources: dict[str, dict[str, Any]]) -> bytes:
    """The JSON body of a usage report."""
    return json.dumps({"resources": resources}, separators=(", ", ": ")).encode("utf-8")


def usage_headers(body: bytes) -> list[tuple[str, str]]:
    """Headers of a usage (or 405) answer; ``no-store``: it is one client's private data."""
    return [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))),
        ("Cache-Control", "no-store"),
    ]

"""Framework-native rate limits: ``ratelimiter.integrations.{flask,fastapi,django}``.

Each submodule imports its framework, so import the one you use; this package itself
imports none of them. All of them (and :mod:`ratelimiter.middleware`) answer a rejected
request with the same 429, built by :class:`._policy.ResponsePolicy`.
"""

from ._policy import HEADER_STYLES, REJECTION_BODY, HeaderStyle, ResponsePolicy

__all__ = ["HEADER_STYLES", "REJECTION_BODY", "HeaderStyle", "ResponsePolicy"]

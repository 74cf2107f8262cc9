"""The ``cache_rejections`` / ``rejection_cache_size`` arguments both Redis backends take.

The cache itself is C++ (``cpp/include/ratelimiter/store/rejection_cache.hpp``): the native
store uses it directly, AsyncRedisBackend through ``_core.RejectionCache``.
"""

from __future__ import annotations

from ..exceptions import ConfigurationError


def rejection_cache_entries(cache_rejections: bool, rejection_cache_size: int) -> int:
    """The cache's bound (0: no cache), or a ConfigurationError naming the bad argument."""
    if not isinstance(cache_rejections, bool):
        raise ConfigurationError(
            f"cache_rejections must be True or False, got {type(cache_rejections).__name__}")
    if isinstance(rejection_cache_size, bool) or not isinstance(rejection_cache_size, int):
        raise ConfigurationError(
            f"rejection_cache_size must be an int, got {type(rejection_cache_size).__name__}")
    if not 1 <= rejection_cache_size <= 100_000_000:
        raise ConfigurationError(
            f"rejection_cache_size must be in 1..100000000, got {rejection_cache_size}")
    return rejection_cache_size if cache_rejections else 0

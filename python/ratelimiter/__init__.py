"""smart-ratelimiter: production rate limiting with a C++ core.

Seven algorithms behind one API, with state in process memory, a SQLite file or Redis::

    from ratelimiter import MemoryBackend, TokenBucketRateLimiter

    limiter = TokenBucketRateLimiter(MemoryBackend(), limit=100, window=60)
    result = limiter.is_allowed("user:42")
    if not result.allowed:
        print("retry in", result.retry_after)
"""

from .algorithms import (
    AdaptiveRateLimiter,
    AsyncRateLimiter,
    BaseAlgorithm,
    FixedWindowRateLimiter,
    GCRARateLimiter,
    LeakyBucketRateLimiter,
    RateLimitResult,
    SlidingWindowCounterRateLimiter,
    SlidingWindowRateLimiter,
    TokenBucketRateLimiter,
    async_rate_limit,
)
from .backends import (
    AsyncRedisBackend,
    BaseBackend,
    MemoryBackend,
    RedisBackend,
    SQLiteBackend,
)
from .config import ConfigProvider, DynamicConfig
from .decorators import RateLimitContext, rate_limit
from .exceptions import (
    BackendConnectionError,
    BackendError,
    CircuitOpen,
    ConfigurationError,
    RateLimitError,
    RateLimitExceeded,
    RateLimitTimeout,
    RetryExhausted,
)
from .key_funcs import (
    asgi_api_key_func,
    asgi_composite_key_func,
    asgi_ip_func,
    wsgi_api_key_func,
    wsgi_composite_key_func,
    wsgi_ip_func,
)
from .limits import Limit, parse_limits
from .metrics import InMemoryMetricsCollector, MetricsCollector, ObservableRateLimiter
from .multi import MultiRateLimiter
from .storage_uri import backend_from_uri

__version__ = "0.2.0"


def build_info() -> dict[str, object]:
    """What the installed extension was built with, for bug reports and support questions.

    Keys: ``version`` (the package's), ``hiredis`` (bool: whether the native Redis path is
    in; without it :class:`RedisBackend` runs through a ``redis.Redis`` client),
    ``hiredis_linkage`` (``"static"``, ``"dynamic"`` or ``"none"``), ``hiredis_version``,
    ``sqlite_version`` (``sqlite3_libversion()`` of the library actually loaded),
    ``sqlite_linkage``, ``compiler``, ``build_type`` and ``cxx_flags``.
    ``python -m ratelimiter --version`` prints the same.
    """
    from . import _core

    info: dict[str, object] = {"version": __version__}
    info.update(_core.build_info())
    return info


__all__ = [
    "AdaptiveRateLimiter",
    "AsyncRateLimiter",
    "AsyncRedisBackend",
    "BackendConnectionError",
    "BackendError",
    "BaseAlgorithm",
    "BaseBackend",
    "ConfigProvider",
    "ConfigurationError",
    "DynamicConfig",
    "FixedWindowRateLimiter",
    "GCRARateLimiter",
    "InMemoryMetricsCollector",
    "LeakyBucketRateLimiter",
    "MemoryBackend",
    "MetricsCollector",
    "MultiRateLimiter",
    "ObservableRateLimiter",
    "RateLimitContext",
    "RateLimitError",
    "RateLimitExceeded",
    "RateLimitResult",
    "RedisBackend",
    "SQLiteBackend",
    "SlidingWindowCounterRateLimiter",
    "SlidingWindowRateLimiter",
    "TokenBucketRateLimiter",
    "__version__",
    "asgi_api_key_func",
    "asgi_composite_key_func",
    "asgi_ip_func",
    "async_rate_limit",
    "build_info",
    "rate_limit",
    "wsgi_api_key_func",
    "wsgi_composite_key_func",
    "wsgi_ip_func",
    # Limit strings and storage URIs
    "Limit",
    "backend_from_uri",
    "parse_limits",
    # Client side (the rest is in ratelimiter.client)
    "CircuitOpen",
    "RateLimitTimeout",
    "RetryExhausted",
]

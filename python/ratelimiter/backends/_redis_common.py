"""What RedisBackend and AsyncRedisBackend share: scripts, error translation, key names.

Both backends run the scripts ``_core`` embeds from ``cpp/lua/``, so their SHAs are computed
once per process here; both turn a redis-py error into the same ``BackendError`` /
``BackendConnectionError``; both name keys as the C++ ``RedisStore`` does (one binding, so
the sync, async and native paths can never disagree on a key).
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any, NamedTuple

from .. import _core
from ..exceptions import BackendConnectionError, BackendError, ConfigurationError

ON_ERROR = ("raise", "allow", "deny")


class Scripts(NamedTuple):
    """Script sources and their SHA1s (for ``EVALSHA``), by algorithm name."""

    sources: dict[str, str]
    shas: dict[str, str]


def _with_shas(sources: dict[str, str]) -> Scripts:
    return Scripts(sources, {name: hashlib.sha1(source.encode()).hexdigest()
                             for name, source in sources.items()})


@functools.cache
def single_scripts() -> Scripts:
    """The one-limit script of each algorithm (``_core.lua_scripts()``)."""
    return _with_shas(_core.lua_scripts())


@functools.cache
def multi_scripts() -> Scripts:
    """The multi-limit script of each algorithm (MultiRateLimiter)."""
    return _with_shas(_core.lua_multi_scripts())


def is_noscript(exc: BaseException) -> bool:
    """Whether ``exc`` is Redis's NOSCRIPT (the script cache was flushed): answer with EVAL."""
    return "NOSCRIPT" in str(exc) or type(exc).__name__ == "NoScriptError"


def check_on_error(on_error: str) -> str:
    """``on_error`` itself if it names a policy, else a ``ConfigurationError``."""
    if on_error not in ON_ERROR:
        raise ConfigurationError(
            f"on_error must be 'raise', 'allow' or 'deny', got {on_error!r}")
    return on_error


def translate(exc: Exception) -> Exception:
    """The library's exception for a failure of a Redis client call.

    Timeouts are ``BackendError``; refused, reset or unreachable connections are
    ``BackendConnectionError``; the library's own errors pass through unchanged.
    """
    if isinstance(exc, (BackendError, ConfigurationError)):
        return exc
    try:
        import redis.exceptions as errors  # optional dependency
    except ImportError:
        return BackendError(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, errors.TimeoutError):
        return BackendError(f"redis timed out: {exc}")
    if isinstance(exc, errors.ConnectionError):
        return BackendConnectionError(f"redis unreachable: {exc}")
    return BackendError(f"{type(exc).__name__}: {exc}")


class _NoTransport:
    """The ops of a RedisStore used only to name keys: it never runs a command."""


def key_namer(key_prefix: str) -> Any:
    """A ``_core.RedisStore`` that only names keys (``storage_key``), for the async backend,
    which has no native store of its own but must name keys exactly as one does."""
    return _core.RedisStore.with_client_ops(_NoTransport(), key_prefix=key_prefix)

"""Storage URIs: choose a backend with one string in configuration, no code change.

=====================================================  ==========================================
``memory://``                                          :class:`~ratelimiter.MemoryBackend`
``sqlite:///abs/path.db``                              :class:`~ratelimiter.SQLiteBackend` (file)
``sqlite://:memory:``                                  a private in-memory SQLite database
``redis://[[user]:password@]host[:port][/db]``         :class:`~ratelimiter.RedisBackend` (native)
``rediss://…``                                         the same over TLS (through redis-py)
``unix:///path/redis.sock[?db=N]``                     Redis on a unix socket (native)
``redis+cluster://host:port[,host:port]``              Redis Cluster (through redis-py)
=====================================================  ==========================================

Query options are the backend constructor's keyword names, e.g.
``redis://127.0.0.1:6379/0?timeout=0.2&on_error=allow`` or ``memory://?max_keys=10000``;
keyword arguments to :func:`backend_from_uri` override them with typed values.

The path of ``sqlite://`` is the text after ``sqlite://``, so ``sqlite:///var/rl.db`` is
the absolute ``/var/rl.db`` (SQLAlchemy's four-slash form ``sqlite:////var/rl.db`` names the
same file). Relative paths (``sqlite://rl.db``) are refused: they would depend on each
process's working directory, so two workers could silently count in two different files.
"""

from __future__ import annotations

import math
from typing import Any, Callable
from urllib.parse import SplitResult, unquote, unquote_plus, urlencode, urlsplit, urlunsplit

from .backends.base import BaseBackend
from .backends.memory import MemoryBackend
from .backends.redis_backend import RedisBackend
from .backends.sqlite_backend import SQLiteBackend
from .exceptions import ConfigurationError, ConfigurationTypeError

__all__ = ["backend_from_uri"]

_ON_ERROR = ("raise", "allow", "deny")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _positive_int(name: str, text: str) -> int:
    if not text.isascii() or not text.isdigit() or int(text) < 1:
        raise ValueError(f"{name} must be a positive integer, got {text!r}")
    return int(text)


def _seconds(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number of seconds > 0, got {text!r}")
    return value


def _bool(name: str, text: str) -> bool:
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise ValueError(f"{name} must be true or false, got {text!r}")


def _on_error(name: str, text: str) -> str:
    if text not in _ON_ERROR:
        raise ValueError(f"{name} must be 'raise', 'allow' or 'deny', got {text!r}")
    return text


def _text(name: str, text: str) -> str:
    return text


def _synchronous(name: str, text: str) -> str:
    return text.upper()


# Per backend: query option -> parser of its text (the constructor's keyword names).
_Parser = Callable[[str, str], Any]
_MEMORY_OPTIONS: dict[str, _Parser] = {"max_keys": _positive_int}
_SQLITE_OPTIONS: dict[str, _Parser] = {
    "busy_timeout": _seconds,
    "timeout": _seconds,  # alias of busy_timeout, as in sqlite3.connect(timeout=)
    "wal_mode": _bool,
    "synchronous": _synchronous,
    "on_error": _on_error,
}
_REDIS_OPTIONS: dict[str, _Parser] = {
    "timeout": _seconds,
    "connect_timeout": _seconds,
    "on_error": _on_error,
    "use_server_time": _bool,
    "key_prefix": _text,
    "cache_rejections": _bool,
    "rejection_cache_size": _positive_int,
}
# Left in the URL for the Redis connection itself (db and password are read natively;
# the ssl_* ones by redis-py for rediss://).
_REDIS_URL_OPTIONS = ("db", "password")
_TLS_URL_OPTIONS = ("ssl_cert_reqs", "ssl_ca_certs", "ssl_certfile", "ssl_keyfile")
_SCHEMES = ("memory://, sqlite://, redis://, rediss://, unix://, redis+unix:// or "
            "redis+cluster://")


def backend_from_uri(uri: str, **overrides: Any) -> BaseBackend:
    """The backend a storage URI names (see the module docstring for the forms).

    Args:
        uri: e.g. ``"redis://:secret@127.0.0.1:6379/0?timeout=0.2&on_error=deny"``.
        overrides: Constructor keywords that win over the URI's query options (typed
            values, e.g. ``on_error="allow"``, ``timeout=0.1``).

    Raises:
        ConfigurationError: naming what is wrong: an unknown scheme or option, a bad port,
            db or option value, a missing host or path, a relative SQLite path, or a
            ``redis+cluster://`` URL naming a node not in cluster mode. Passwords are masked
            in messages.
    """
    if not isinstance(uri, str):
        raise ConfigurationTypeError(f"storage uri must be a str, got {type(uri).__name__}")
    uri = uri.strip()  # a value read from a file or the environment may end in a newline
    scheme, sep, rest = uri.partition("://")
    scheme = scheme.lower()
    if not sep:
        raise ConfigurationError(
            f"storage uri {_mask(uri)!r} has no scheme; expected {_SCHEMES}")
    # Known schemes we cannot serve say so before any detail of the URI is judged.
    if scheme in ("redis+sentinel", "rediss+sentinel"):
        raise ConfigurationError(
            f"storage uri {_mask(uri)!r}: Redis Sentinel URIs are not supported; pass a "
            f"redis.sentinel master client to RedisBackend(client) instead")
    if "#" in rest:
        raise ConfigurationError(f"storage uri {_mask(uri)!r}: a fragment ('#') is not allowed")
    target, _, query_text = rest.partition("?")
    query = _query(uri, query_text)
    if scheme == "memory":
        if target:
            raise ConfigurationError(
                f"storage uri {uri!r}: memory:// takes no host or path, got {target!r}")
        _check_overrides(uri, "MemoryBackend", overrides, _MEMORY_OPTIONS)
        return MemoryBackend(**{**_options(uri, query, _MEMORY_OPTIONS), **overrides})
    if scheme == "sqlite":
        return _sqlite(uri, unquote(target), query, overrides)
    if scheme in ("redis", "rediss", "unix", "redis+unix"):
        return _redis(uri, scheme, query, overrides)
    if scheme in ("redis+cluster", "rediss+cluster"):
        return _redis_cluster(uri, scheme, target, query, overrides)
    raise ConfigurationError(
        f"storage uri {_mask(uri)!r}: unknown scheme {scheme + '://'!r}; expected {_SCHEMES}")


def _query(uri: str, text: str) -> dict[str, str]:
    """``?a=1&b=2`` as a dict; a repeated, nameless or valueless option is an error."""
    query: dict[str, str] = {}
    for pair in text.split("&") if text else ():
        name, _, value = (unquote_plus(part) for part in pair.partition("="))
        if not name:
            raise ConfigurationError(
                f"storage uri {_mask(uri)!r}: malformed query (an option without a name)")
        if name in query:
            raise ConfigurationError(f"storage uri {_mask(uri)!r}: option {name!r} given twice")
        if not value:
            raise ConfigurationError(f"storage uri {_mask(uri)!r}: option {name!r} has no value")
        query[name] = value
    return query


def _options(uri: str, query: dict[str, str], known: dict[str, _Parser],
             also_known: tuple[str, ...] = ()) -> dict[str, Any]:
    """Parse the constructor options of ``query``; any other name is an error
    (``also_known``: names consumed elsewhere, listed in that error)."""
    options: dict[str, Any] = {}
    for name, text in query.items():
        parser = known.get(name)
        if parser is None:
            raise ConfigurationError(
                f"storage uri {_mask(uri)!r}: unknown option {name!r} (known: "
                f"{', '.join(sorted((*known, *also_known)))})")
        try:
            options[name] = parser(name, text)
        except ValueError as exc:
            raise ConfigurationError(f"storage uri {_mask(uri)!r}: {exc}") from None
    return options


def _check_overrides(uri: str, backend: str, overrides: dict[str, Any],
                     known: dict[str, _Parser]) -> None:
    """Refuse keyword names not in ``known``, so a typo is a ConfigurationError naming it
    (not a TypeError from deep inside a constructor)."""
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        raise ConfigurationError(
            f"backend_from_uri({_mask(uri)!r}): unknown keyword(s) {', '.join(unknown)} for "
            f"{backend} (known: {', '.join(sorted(known))})")


def _sqlite(uri: str, path: str, query: dict[str, str],
            overrides: dict[str, Any]) -> BaseBackend:
    if not path:
        raise ConfigurationError(
            f"storage uri {uri!r}: sqlite:// needs a path, e.g. sqlite:///var/lib/app/rl.db "
            f"or sqlite://:memory:")
    if path != ":memory:" and not path.startswith("/"):
        raise ConfigurationError(
            f"storage uri {uri!r}: the SQLite path {path!r} is relative; write an absolute "
            f"path (sqlite:///abs/path.db) so every process opens the same file")
    _check_overrides(uri, "SQLiteBackend", overrides, _SQLITE_OPTIONS)
    options = _options(uri, query, _SQLITE_OPTIONS)
    overrides = dict(overrides)
    if "timeout" in options or "timeout" in overrides:
        if "busy_timeout" in options or "busy_timeout" in overrides:
            raise ConfigurationError(
                f"storage uri {uri!r}: give timeout or busy_timeout, not both")
        for source in (options, overrides):
            if "timeout" in source:
                source["busy_timeout"] = source.pop("timeout")
    return SQLiteBackend(path, **{**options, **overrides})


def _redis(uri: str, scheme: str, query: dict[str, str],
           overrides: dict[str, Any]) -> BaseBackend:
    url_options = _REDIS_URL_OPTIONS + (_TLS_URL_OPTIONS if scheme == "rediss" else ())
    kept = {name: value for name, value in query.items() if name in url_options}
    options = _options(
        uri, {k: v for k, v in query.items() if k not in kept}, _REDIS_OPTIONS, url_options)
    if scheme == "redis+unix":  # the limits library's spelling of unix://
        scheme = "unix"
    parts = urlsplit(scheme + "://" + uri.partition("://")[2].partition("?")[0])
    if scheme == "unix":
        if parts.netloc and "@" not in parts.netloc:
            raise ConfigurationError(
                f"storage uri {_mask(uri)!r}: unix:// takes an absolute socket path "
                f"(unix:///path/redis.sock), got host {parts.netloc!r}")
        if not parts.path or parts.path == "/":
            raise ConfigurationError(f"storage uri {_mask(uri)!r}: unix:// needs a socket path")
        _check_db(uri, kept.get("db", "0"))
    else:
        _check_host(uri, parts)
        path_db = parts.path.strip("/") if parts.path else ""
        if path_db and "db" in kept:
            raise ConfigurationError(
                f"storage uri {_mask(uri)!r}: db given both in the path and as ?db=")
        _check_db(uri, path_db or kept.get("db", "0"))
    url = urlunsplit((scheme, parts.netloc, parts.path, urlencode(kept), ""))
    _check_overrides(uri, "RedisBackend", overrides, _REDIS_OPTIONS)
    options.update(overrides)
    if scheme == "rediss":
        # TLS runs through redis-py; the client carries the timeouts itself.
        client = _redis_client_from_url(url, options)
        return RedisBackend(client, **options)
    return RedisBackend(url=url, **options)


def _redis_cluster(uri: str, scheme: str, target: str, query: dict[str, str],
                   overrides: dict[str, Any]) -> BaseBackend:
    """``redis+cluster://[user:password@]host:port[,host:port...]``: a RedisBackend over
    redis-py's RedisCluster (slot map, MOVED/ASK and failover handled by the client)."""
    kept = {name: value for name, value in query.items() if name == "password"}
    options = _options(uri, {k: v for k, v in query.items() if k not in kept},
                       _REDIS_OPTIONS, ("password",))
    netloc, _, path = target.partition("/")
    if not netloc.rpartition("@")[2]:
        raise ConfigurationError(f"storage uri {_mask(uri)!r} has no host")
    if path.strip("/") not in ("", "0"):
        raise ConfigurationError(f"storage uri {_mask(uri)!r}: Redis Cluster has only db 0")
    _check_overrides(uri, "RedisBackend", overrides, _REDIS_OPTIONS)
    options.update(overrides)
    url = urlunsplit((scheme, netloc, "", urlencode(kept), ""))
    return RedisBackend(url=url, **options)


def _redis_client_from_url(url: str, options: dict[str, Any]) -> Any:
    import redis  # optional dependency, as for RedisBackend

    timeout = options.pop("timeout", 0.5)
    connect_timeout = options.pop("connect_timeout", 0.25)
    return redis.Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=connect_timeout)


def _check_host(uri: str, parts: SplitResult) -> None:
    if not parts.hostname:
        raise ConfigurationError(f"storage uri {_mask(uri)!r} has no host")
    try:
        port = parts.port
    except ValueError:
        raise ConfigurationError(
            f"storage uri {_mask(uri)!r}: bad port (expected 1-65535)") from None
    if port == 0:
        raise ConfigurationError(f"storage uri {_mask(uri)!r}: bad port 0 (expected 1-65535)")


def _check_db(uri: str, text: str) -> None:
    if not text.isascii() or not text.isdigit():
        raise ConfigurationError(
            f"storage uri {_mask(uri)!r}: db must be a non-negative integer, got {text!r}")


def _mask(uri: str) -> str:
    """``uri`` with any password replaced by ``***`` (error messages end up in logs)."""
    scheme, sep, rest = uri.partition("://")
    rest, question, query = rest.partition("?")
    netloc, slash, path = rest.partition("/")
    if "@" in netloc:
        credentials, _, host = netloc.rpartition("@")
        user, colon, _password = credentials.partition(":")
        netloc = f"{user}{colon}{'***' if colon else ''}@{host}"
    query = "&".join("password=***" if pair.startswith("password=") else pair
                     for pair in query.split("&"))
    return f"{scheme}{sep}{netloc}{slash}{path}{question}{query}"

"""Redis backend: limiter state in Redis, one EVALSHA of the algorithm's Lua script per decision."""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any, Optional
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit

from .. import _core
from ..exceptions import BackendConnectionError, BackendError, ConfigurationError
from ._dict_primitives import validate_amount, validate_ttl
from .base import BaseBackend

__all__ = ["RedisBackend"]

_ON_ERROR = ("raise", "allow", "deny")


class RedisBackend(BaseBackend):
    """Limiter state in Redis, shared by every thread, process and host using that server.

    Each decision is one ``EVALSHA`` of the algorithm's Lua script (``cpp/lua/``), which runs
    the same arithmetic as the in-memory store atomically inside Redis; ``NOSCRIPT`` (after a
    ``SCRIPT FLUSH`` or a restart) is handled without the caller noticing.

    Connection: pass a ``redis.Redis`` client (its host/port/db/username/password or unix
    socket are used), or ``url="redis://[[user]:password@]host[:port][/db]"`` /
    ``"unix:///path/to/socket?db=0"``, or nothing for ``127.0.0.1:6379``. A plain TCP or unix
    socket client runs decisions on a native hiredis connection pool with the GIL released;
    any other client (SSL, Sentinel, cluster, fakeredis, a custom connection class) runs the
    same scripts through the client object itself.

    Keys are ``<key_prefix>{<limiter key>}:<algorithm>`` (a Redis Cluster hash tag); every
    key written expires once its state is fresh again (plus one second).

    ``use_server_time=True`` takes the time from Redis ``TIME`` so app servers with skewed
    clocks agree (the limiter's ``clock`` is then ignored); ``False`` uses the limiter's clock.
    ``timeout`` bounds each round trip and ``connect_timeout`` each connection attempt (native
    path; a client keeps its own timeouts). ``on_error`` decides what a call returns when Redis
    is unreachable, slow or fails: ``"raise"`` (``BackendError``/``BackendConnectionError``),
    ``"allow"`` (fail open) or ``"deny"`` (fail closed); :attr:`counters` counts such decisions.
    """

    def __init__(
        self,
        client: Any = None,
        key_prefix: str = "rl:",
        *,
        url: Optional[str] = None,
        timeout: float = 0.5,
        connect_timeout: float = 0.25,
        on_error: str = "raise",
        use_server_time: bool = True,
    ) -> None:
        if not isinstance(key_prefix, str):
            raise ConfigurationError(f"key_prefix must be a str, got {type(key_prefix).__name__}")
        if on_error not in _ON_ERROR:
            raise ConfigurationError(
                f"on_error must be 'raise', 'allow' or 'deny', got {on_error!r}")
        if client is not None and url is not None:
            raise ConfigurationError("pass either client or url, not both")
        if url is not None:
            params = _params_from_url(url)
            if params is None:  # rediss:// and friends: let redis-py build the client
                client = _redis_module().Redis.from_url(url)
        else:
            params = {} if client is None else _native_params(client)
        if params is not None and not _NATIVE_REDIS:
            client = _fallback_client(client, url, timeout, connect_timeout)
            params = None
        self.key_prefix = key_prefix
        self.on_error = on_error
        self.use_server_time = bool(use_server_time)
        self._client = client if params is None else None
        if params is not None:
            self._native = _core.RedisStore(
                **params,
                timeout=timeout,
                connect_timeout=connect_timeout,
                key_prefix=key_prefix,
                use_server_time=self.use_server_time,
                on_error=on_error,
            )
        else:
            self._native = _core.RedisStore.with_client_ops(
                _ClientOps(client),
                key_prefix=key_prefix,
                use_server_time=self.use_server_time,
                on_error=on_error,
            )

    @property
    def is_native(self) -> bool:
        """Whether decisions run on the native hiredis connections (else through the client)."""
        return self._client is None

    @property
    def counters(self) -> dict[str, int]:
        """``errors`` (failed attempts to decide), ``fallback_allowed``, ``fallback_denied``."""
        counters: dict[str, int] = self._native.counters
        return counters

    def storage_key(self, key: str, algorithm: str) -> str:
        """The Redis key holding ``algorithm``'s state for a limiter key (prefix included)."""
        return f"{self.key_prefix}{{{key}}}:{algorithm}"

    # --- BaseBackend primitives (values stored as JSON under key_prefix + key) ----------

    def _command(self, *args: Any) -> Any:
        try:
            if self._client is None:
                return self._native.command(*args)
            try:
                return self._client.execute_command(*args)
            except Exception as exc:  # the client's own error types, whatever library it is
                raise _translate(exc) from exc
        except BackendError as exc:
            # A key used as the wrong kind is the caller's mistake, as on every other
            # backend (TypeError), not a failing server.
            text = str(exc)
            if "WRONGTYPE" in text or "not an integer" in text:
                raise TypeError(f"value at {args[1]!r} is the wrong kind for {args[0]}: "
                                f"{text}") from exc
            raise

    def _key(self, key: str) -> str:
        return self.key_prefix + key

    def get(self, key: str) -> Optional[Any]:
        raw = self._command("GET", self._key(key))
        return None if raw is None else json.loads(raw)

    def set(self, key: str, value: Any, ttl: Optional[float] = None) -> None:
        args: list[Any] = ["SET", self._key(key), json.dumps(value)]
        if ttl is not None:
            args += ["PX", _milliseconds(ttl)]
        self._command(*args)

    def delete(self, key: str) -> None:
        self._command("DEL", self._key(key))

    def incr(self, key: str, amount: int = 1) -> int:
        return int(self._command("INCRBY", self._key(key), validate_amount(amount)))

    def expire(self, key: str, ttl: float) -> None:
        self._command("PEXPIRE", self._key(key), _milliseconds(ttl))

    def zadd(self, key: str, score: float, member: str) -> None:
        self._command("ZADD", self._key(key), float(score), member)

    def zremrangebyscore(self, key: str, min_score: float, max_score: float) -> int:
        return int(
            self._command("ZREMRANGEBYSCORE", self._key(key), float(min_score), float(max_score))
        )

    def zcard(self, key: str) -> int:
        return int(self._command("ZCARD", self._key(key)))

    def zrange_by_score(
        self, key: str, min_score: float, max_score: float
    ) -> list[tuple[str, float]]:
        reply = self._command(
            "ZRANGEBYSCORE", self._key(key), float(min_score), float(max_score), "WITHSCORES"
        )
        if reply and isinstance(reply[0], (list, tuple)):  # RESP3 clients: [[member, score]]
            return [(_text(m), float(s)) for m, s in reply]
        return [(_text(reply[i]), float(reply[i + 1])) for i in range(0, len(reply), 2)]

    def ping(self) -> bool:
        if self._client is None:
            return bool(self._native.ping())
        try:
            return bool(self._client.ping())
        except Exception:
            return False

    def close(self) -> None:
        """Close the native connections (the next call reconnects); a client is left open."""
        self._native.close()

    def __repr__(self) -> str:
        path = "native" if self.is_native else type(self._client).__name__
        return f"RedisBackend({path}, key_prefix={self.key_prefix!r}, on_error={self.on_error!r})"


# Whether this build has the native hiredis path (cmake/Dependencies.cmake builds without it
# when hiredis is missing). Without it every RedisBackend runs through a redis.Redis client.
_NATIVE_REDIS = bool(_core.build_info()["hiredis"])


def _fallback_client(client: Any, url: Optional[str], timeout: float,
                     connect_timeout: float) -> Any:
    """The client a build without hiredis runs through: the caller's, or one redis-py
    builds from ``url`` (default ``redis://127.0.0.1:6379/0``) with the same timeouts."""
    if client is not None:
        return client
    try:
        redis = _redis_module()
    except ImportError:
        raise ConfigurationError(
            "this build of smart-ratelimiter has no native Redis path (built without "
            "hiredis): RedisBackend needs redis-py, pip install 'smart-ratelimiter[redis]'"
        ) from None
    return redis.Redis.from_url(url or "redis://127.0.0.1:6379/0", socket_timeout=timeout,
                                socket_connect_timeout=connect_timeout)


class _ClientOps:
    """Runs the scripts and commands through a user's client (the non-native path).

    Called by the C++ RedisStore (which owns on_error and the reply decoding); errors are
    translated to BackendConnectionError / BackendError here.
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self._sources = _core.lua_scripts()
        self._shas = {name: hashlib.sha1(source.encode()).hexdigest()
                      for name, source in self._sources.items()}
        try:
            self._noscript: type[BaseException] = _redis_module().exceptions.NoScriptError
        except ImportError:  # a non-redis-py client: recognise NOSCRIPT by its message
            self._noscript = _NeverRaised

    def eval(self, name: str, key: str, args: list[str]) -> Any:
        return self._run(self._sources[name], self._shas[name], [key], args)

    def eval_multi(self, name: str, keys: list[str], args: list[str]) -> Any:
        """The algorithm's multi-limit script (MultiRateLimiter) over ``keys``."""
        if not hasattr(self, "_multi_sources"):
            self._multi_sources = _core.lua_multi_scripts()
            self._multi_shas = {n: hashlib.sha1(source.encode()).hexdigest()
                                for n, source in self._multi_sources.items()}
        return self._run(self._multi_sources[name], self._multi_shas[name], keys, args)

    def _run(self, source: str, sha: str, keys: list[str], args: list[str]) -> Any:
        try:
            try:
                return self._client.evalsha(sha, len(keys), *keys, *args)
            except self._noscript:
                return self._client.eval(source, len(keys), *keys, *args)
            except Exception as exc:
                if "NOSCRIPT" not in str(exc):
                    raise
                return self._client.eval(source, len(keys), *keys, *args)
        except Exception as exc:
            raise _translate(exc) from exc

    def delete(self, key: str) -> None:
        try:
            self._client.delete(key)
        except Exception as exc:
            raise _translate(exc) from exc

    def command(self, *argv: bytes) -> Any:
        try:
            return self._client.execute_command(*argv)
        except Exception as exc:
            raise _translate(exc) from exc


class _NeverRaised(Exception):
    pass


def _translate(exc: Exception) -> Exception:
    if isinstance(exc, BackendError):
        return exc
    try:
        errors = _redis_module().exceptions
    except ImportError:
        return BackendError(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, errors.TimeoutError):
        return BackendError(f"redis timed out: {exc}")
    if isinstance(exc, errors.ConnectionError):
        return BackendConnectionError(f"redis unreachable: {exc}")
    return BackendError(f"{type(exc).__name__}: {exc}")


def _redis_module() -> Any:
    import redis  # optional dependency: pip install smart-ratelimiter[redis]

    return redis


def _native_params(client: Any) -> Optional[dict[str, Any]]:
    """hiredis connection parameters of a plain redis.Redis client; None for anything else."""
    try:
        redis = _redis_module()
    except ImportError:
        return None
    if type(client) is not redis.Redis:
        return None
    pool: Any = getattr(client, "connection_pool", None)
    if type(pool) not in (redis.ConnectionPool, redis.BlockingConnectionPool):
        return None
    kwargs = pool.connection_kwargs
    if kwargs.get("credential_provider") is not None:
        return None
    params: dict[str, Any] = {
        "db": int(kwargs.get("db") or 0),
        "username": kwargs.get("username") or "",
        "password": kwargs.get("password") or "",
    }
    if pool.connection_class is redis.Connection:
        params["host"] = kwargs.get("host") or "localhost"
        params["port"] = int(kwargs.get("port") or 6379)
    elif pool.connection_class is redis.UnixDomainSocketConnection:
        params["unix_socket"] = kwargs["path"]
    else:
        return None
    return params


def _params_from_url(url: str) -> Optional[dict[str, Any]]:
    """hiredis parameters of a redis:// or unix:// URL; None for schemes redis-py must handle."""
    if not isinstance(url, str):
        raise ConfigurationError(f"url must be a str, got {type(url).__name__}")
    parts = _split_url(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    params: dict[str, Any] = {
        "username": unquote(parts.username or ""),
        "password": unquote(parts.password or query.get("password", "")),
    }
    db_text = query.get("db", "")
    if parts.scheme == "redis":
        params["host"], params["port"] = _host_and_port(url, parts)
        path_db = parts.path.lstrip("/")
        db_text = path_db or db_text
    elif parts.scheme == "unix":
        if not parts.path:
            raise ConfigurationError(f"url {url!r} has no socket path")
        params["unix_socket"] = unquote(parts.path)
    elif parts.scheme == "rediss":  # TLS: not on the native path (redis-py connects)
        _host_and_port(url, parts)  # the same checks, so both schemes fail alike
        return None
    else:
        raise ConfigurationError(f"url must start with redis://, rediss:// or unix://, got {url!r}")
    try:
        params["db"] = int(db_text or 0)
    except ValueError:
        raise ConfigurationError(f"url {url!r} has an invalid db number") from None
    return params


def _split_url(url: str) -> SplitResult:
    """``urlsplit(url)``, with urllib's bare ``ValueError`` (e.g. a bad IPv6 literal) turned
    into a ``ConfigurationError`` naming the url."""
    try:
        return urlsplit(url)
    except ValueError as exc:
        raise ConfigurationError(f"url {url!r} is not a valid URL: {exc}") from None


def _host_and_port(url: str, parts: SplitResult) -> tuple[str, int]:
    """The host and port of a redis:// or rediss:// URL (port 6379 if omitted).

    urllib reports a bad port as a bare ``ValueError`` ("Port out of range 0-65535") only
    when ``.port`` is read, and an empty host would silently mean localhost: both are
    configuration mistakes, so both raise ``ConfigurationError`` naming the url.
    """
    if not parts.hostname:
        raise ConfigurationError(
            f"url {url!r} has no host: write redis://host[:port][/db], e.g. redis://127.0.0.1:6379/0"
        )
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None:
        text = parts.netloc.rpartition("@")[2]
        text = text.rpartition("]")[2] if text.startswith("[") else text
        port_text = text.partition(":")[2]
        if not port_text:
            return parts.hostname, 6379
    if port is None or not 1 <= port <= 65535:
        shown = port_text if port is None else str(port)
        raise ConfigurationError(
            f"url {url!r} has an invalid port {shown!r}: it must be an integer in 1-65535"
        )
    return parts.hostname, port


def _milliseconds(ttl: float) -> int:
    """A TTL in whole milliseconds, rounded up (a fractional ttl never expires early)."""
    return max(1, math.ceil(validate_ttl(ttl) * 1000))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)

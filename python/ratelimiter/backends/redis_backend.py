"""Redis backend: limiter state in Redis, one EVALSHA of the algorithm's Lua script per decision."""

from __future__ import annotations

import json
import math
from typing import Any, Optional
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit

from .. import _core
from ..exceptions import BackendConnectionError, BackendError, ConfigurationError
from ._dict_primitives import validate_amount, validate_ttl
from ._redis_common import check_on_error, is_noscript, multi_scripts, single_scripts, translate
from ._rejection_cache import rejection_cache_entries
from .base import BaseBackend

__all__ = ["RedisBackend"]


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

    Redis Cluster: ``url="redis+cluster://host:port[,host:port...]"`` runs on a native
    cluster transport (the slot map from ``CLUSTER SLOTS``, a hiredis pool per master,
    ``MOVED``/``ASK`` followed within ``timeout``); a ``redis.cluster.RedisCluster`` client
    (or ``rediss+cluster://``) runs through redis-py. A node not in cluster mode is a
    ``ConfigurationError``; on a cluster ``key_prefix`` may not contain braces.

    Keys are ``<key_prefix>{<limiter key>}:<algorithm>`` (a Redis Cluster hash tag); every
    key written expires once its state is fresh again (plus one second).
    ``is_allowed_many`` sends all its keys' scripts in one pipeline (one round trip per
    Redis node touched).

    ``use_server_time=True`` takes the time from Redis ``TIME`` so app servers with skewed
    clocks agree (the limiter's ``clock`` is then ignored); ``False`` uses the limiter's clock.
    ``timeout`` bounds each round trip and ``connect_timeout`` each connection attempt (native
    path; a client keeps its own timeouts). ``on_error`` decides what a call returns when Redis
    is unreachable, slow or fails: ``"raise"`` (``BackendError``/``BackendConnectionError``),
    ``"allow"`` (fail open) or ``"deny"`` (fail closed); :attr:`counters` counts such decisions.

    ``cache_rejections=True`` answers known rejections in this process, without a round
    trip: once Redis rejects a request of cost ``c`` on a key, requests of cost ``>= c`` on
    that key (same algorithm and parameters) are rejected locally until the instant Redis
    said cost ``c`` could next be admitted (measured on the monotonic clock; a wall clock
    going backwards never extends it). Such results carry ``metadata["cached"] = True``;
    ``retry_after``/``reset_after`` are Redis's, reduced by the time since, while
    ``remaining`` and the algorithm's metadata are as of Redis's rejection. Every cached
    answer is one Redis would also give — except after a ``reset`` of the key by *another*
    process, which this process does not see: it keeps rejecting that key for at most the
    ``retry_after`` it was told (a ``reset`` in this process takes effect at once). Hence
    off by default. At most ``rejection_cache_size`` keys are remembered (oldest dropped).
    ``peek``, multi-limit decisions (:class:`~ratelimiter.MultiRateLimiter`) and the adaptive
    algorithm (whose ``retry_after`` may exceed the real wait) bypass the cache;
    ``is_allowed_many`` uses it. :attr:`counters` then adds ``cache_hits``,
    ``rejections_cached``, ``cache_evictions`` and ``cache_entries``.
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
        cache_rejections: bool = False,
        rejection_cache_size: int = 10_000,
    ) -> None:
        if not isinstance(key_prefix, str):
            raise ConfigurationError(f"key_prefix must be a str, got {type(key_prefix).__name__}")
        check_on_error(on_error)
        cache_entries = rejection_cache_entries(cache_rejections, rejection_cache_size)
        if client is not None and url is not None:
            raise ConfigurationError("pass either client or url, not both")
        cluster = url is not None and _is_cluster_url(url) or _is_cluster_client(client)
        if url is not None:
            params = _params_from_url(url)
            if cluster and (params is None or not _NATIVE_REDIS):  # TLS, or no hiredis
                client, params = _cluster_client(url, timeout, connect_timeout), None
            elif params is None:  # rediss:// and friends: let redis-py build the client
                client = _redis_module().Redis.from_url(url)
        else:
            params = {} if client is None else _native_params(client)
        if params is not None and not _NATIVE_REDIS:
            client = _fallback_client(client, url, timeout, connect_timeout)
            params = None
        if cluster and ("{" in key_prefix or "}" in key_prefix):
            raise ConfigurationError(
                f"key_prefix {key_prefix!r} contains a brace: on Redis Cluster the keys' hash "
                f"tag must be the limiter key ({{key}}), so a prefix may not add or break one")
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
                rejection_cache_entries=cache_entries,
            )
        else:
            self._native = _core.RedisStore.with_client_ops(
                _ClientOps(client),
                key_prefix=key_prefix,
                use_server_time=self.use_server_time,
                on_error=on_error,
                rejection_cache_entries=cache_entries,
            )
        #: Whether known rejections are answered locally (see the class docstring).
        self.cache_rejections = cache_entries > 0

    @property
    def is_native(self) -> bool:
        """Whether decisions run on the native hiredis connections (else through the client)."""
        return self._client is None

    @property
    def counters(self) -> dict[str, int]:
        """``errors`` (failed attempts to decide), ``fallback_allowed``, ``fallback_denied``;
        with ``cache_rejections`` also ``cache_hits`` (answered locally), ``rejections_cached``
        (rejections remembered), ``cache_evictions`` (dropped for room), ``cache_entries``."""
        counters: dict[str, int] = self._native.counters
        return counters

    def storage_key(self, key: str, algorithm: str) -> str:
        """The Redis key holding ``algorithm``'s state for a limiter key (prefix included)."""
        key_bytes: bytes = self._native.storage_key(key, algorithm)
        return key_bytes.decode()

    # --- BaseBackend primitives (values stored as JSON under key_prefix + key) ----------

    def _command(self, *args: Any) -> Any:
        try:
            if self._client is None:
                return self._native.command(*args)
            try:
                return self._client.execute_command(*args)
            except Exception as exc:  # the client's own error types, whatever library it is
                raise translate(exc) from exc
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

    def eval(self, name: str, key: str, args: list[str]) -> Any:
        scripts = single_scripts()
        return self._run(scripts.sources[name], scripts.shas[name], [key], args)

    def eval_multi(self, name: str, keys: list[str], args: list[str]) -> Any:
        """The algorithm's multi-limit script (MultiRateLimiter) over ``keys``."""
        scripts = multi_scripts()
        return self._run(scripts.sources[name], scripts.shas[name], keys, args)

    def eval_many(self, name: str, keys: list[str], args: list[str]) -> list[Any]:
        """The single-key script on each of ``keys`` in one pipeline (``transaction=False``):
        one round trip for a single Redis, one per node touched for a RedisCluster pipeline.
        Returns one item per key: its reply, or the exception its call raised."""
        scripts = single_scripts()
        source, sha = scripts.sources[name], scripts.shas[name]
        if not hasattr(self._client, "pipeline"):  # a client without pipelines: key by key
            return [self._eval_or_error(source, sha, key, args) for key in keys]
        try:
            pipe = self._client.pipeline(transaction=False)
            # execute_command: RedisCluster's pipeline blocks its evalsha() method, yet
            # routes a queued EVALSHA by its key's slot like any other command.
            for key in keys:
                pipe.execute_command("EVALSHA", sha, 1, key, *args)
            replies: list[Any] = pipe.execute(raise_on_error=False)
            missing = [i for i, reply in enumerate(replies)
                       if isinstance(reply, Exception) and is_noscript(reply)]
            if missing:  # a node's script cache was flushed: EVAL loads it again
                pipe = self._client.pipeline(transaction=False)
                for i in missing:
                    pipe.execute_command("EVAL", source, 1, keys[i], *args)
                for i, reply in zip(missing, pipe.execute(raise_on_error=False)):
                    replies[i] = reply
        except Exception as exc:
            raise translate(exc) from exc
        return [translate(r) if isinstance(r, Exception) else r for r in replies]

    def _eval_or_error(self, source: str, sha: str, key: str, args: list[str]) -> Any:
        try:
            return self._run(source, sha, [key], args)
        except BackendError as exc:
            return exc

    def _run(self, source: str, sha: str, keys: list[str], args: list[str]) -> Any:
        try:
            try:
                return self._client.evalsha(sha, len(keys), *keys, *args)
            except Exception as exc:
                if not is_noscript(exc):
                    raise
                return self._client.eval(source, len(keys), *keys, *args)
        except Exception as exc:
            if _is_cross_slot(exc):
                raise _cross_slot_error(keys) from exc
            raise translate(exc) from exc

    def delete(self, key: str) -> None:
        try:
            self._client.delete(key)
        except Exception as exc:
            raise translate(exc) from exc

    def command(self, *argv: bytes) -> Any:
        try:
            return self._client.execute_command(*argv)
        except Exception as exc:
            raise translate(exc) from exc


def _is_cross_slot(exc: BaseException) -> bool:
    """A server's CROSSSLOT reply, or redis-py's RedisCluster refusing keys of several slots."""
    text = str(exc)
    return "CROSSSLOT" in text or "must map to the same key slot" in text


def _cross_slot_error(keys: list[str]) -> ConfigurationError:
    """What a decision over keys of different cluster slots raises, whatever ``on_error``:
    it is a configuration mistake, and no policy answer would be a right decision."""
    return ConfigurationError(
        f"the Redis keys of one decision ({', '.join(map(repr, keys))}) hash to different "
        f"Redis Cluster slots (CROSSSLOT): their {{hash tag}} is broken by a '{{' or '}}' in "
        f"the limiter key or key_prefix; keep braces out of keys and prefixes on a cluster")


def _is_cluster_url(url: str) -> bool:
    return url.partition("://")[0].lower() in ("redis+cluster", "rediss+cluster")


def _is_cluster_client(client: Any) -> bool:
    """Whether ``client`` is redis-py's (sync or asyncio) RedisCluster."""
    names = {cls.__module__ + "." + cls.__name__ for cls in type(client).__mro__}
    return bool(names & {"redis.cluster.RedisCluster", "redis.asyncio.cluster.RedisCluster"})


def _cluster_nodes(url: str, parts: SplitResult) -> list[SplitResult]:
    """Each startup node of ``redis+cluster://[user:pass@]host:port[,host:port...]``."""
    userinfo, at, hosts = parts.netloc.rpartition("@")
    if not hosts:
        raise ConfigurationError(f"url {_masked(url)!r} has no host: write "
                                 f"redis+cluster://host:port[,host:port...]")
    return [_split_url(f"redis://{userinfo}{at}{host}") for host in hosts.split(",")]


def _cluster_client(url: str, timeout: float, connect_timeout: float) -> Any:
    """redis-py's RedisCluster for a ``redis+cluster://`` URL: it loads the slot map, routes
    each script call to the master of its key's slot and follows MOVED/ASK.

    A node that is not in cluster mode is a configuration mistake (ConfigurationError);
    no reachable node at all is a BackendConnectionError.
    """
    redis = _redis_module()
    from redis.cluster import ClusterNode, RedisCluster

    parts = _split_url(url)
    nodes = [ClusterNode(*_host_and_port(_masked(url), node))  # type: ignore[no-untyped-call]
             for node in _cluster_nodes(url, parts)]
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    try:
        return RedisCluster(
            startup_nodes=nodes,
            username=unquote(parts.username or "") or None,
            password=unquote(parts.password or query.get("password", "")) or None,
            ssl=parts.scheme.lower() == "rediss+cluster",
            socket_timeout=timeout,
            socket_connect_timeout=connect_timeout,
        )
    except redis.exceptions.RedisClusterException as exc:
        if "cluster mode is not enabled" in str(exc).lower():
            raise ConfigurationError(
                f"url {_masked(url)!r} names a Redis that is not in cluster mode "
                f"(cluster_enabled:0): use redis://host:port for a single server") from None
        raise BackendConnectionError(
            f"redis cluster at {_masked(url)!r} unreachable: {exc}") from exc


def _masked(url: str) -> str:
    """``url`` without its password (error messages end up in logs)."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, hosts = rest.rpartition("@")
    if at and ":" in userinfo:
        userinfo = userinfo.partition(":")[0] + ":***"
    return f"{scheme}{sep}{userinfo}{at}{hosts}"


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
    elif parts.scheme in ("redis+cluster", "rediss+cluster"):
        if parts.path.strip("/") not in ("", "0") or query.get("db", "0") != "0":
            raise ConfigurationError(
                f"url {_masked(url)!r}: Redis Cluster has only db 0")
        nodes = [_host_and_port(_masked(url), host) for host in _cluster_nodes(url, parts)]
        if parts.scheme == "rediss+cluster":  # TLS: through redis-py's RedisCluster
            return None
        params["cluster_nodes"] = nodes  # the native cluster transport (slot map, MOVED/ASK)
        return params
    elif parts.scheme == "rediss":  # TLS: not on the native path (redis-py connects)
        _host_and_port(url, parts)  # the same checks, so both schemes fail alike
        return None
    else:
        raise ConfigurationError(
            f"url must start with redis://, rediss://, unix:// or redis+cluster://, got {url!r}")
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

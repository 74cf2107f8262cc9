"""The web side under attack and outage: forged X-Forwarded-For from public peers, API-key
guessing, and AsyncRedisBackend against a hung or dead Redis.

Real servers throughout: werkzeug and uvicorn on 127.0.0.1, a real redis-server that the
tests SIGSTOP, SIGCONT, SIGKILL and restart. Every peer a real socket can have here is
loopback, so the public-peer cases rewrite the peer address in a one-line wrapper in front
of the middleware — exactly what the server would report for a client at 203.0.113.9.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from typing import Any, Callable

import httpx
import pytest
import redis.asyncio
from http_servers import serve_asgi, serve_wsgi
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis_server import RedisServer

from ratelimiter import (
    AsyncRateLimiter,
    AsyncRedisBackend,
    FixedWindowRateLimiter,
    MemoryBackend,
    TokenBucketRateLimiter,
)
from ratelimiter.exceptions import BackendConnectionError, BackendError, ConfigurationError
from ratelimiter.key_funcs import (
    asgi_api_key_func,
    asgi_ip_func,
    hash_api_key,
    wsgi_api_key_func,
    wsgi_ip_func,
)
from ratelimiter.middleware import AsyncRateLimitMiddleware, RateLimitMiddleware

PUBLIC_PEER = "203.0.113.9"


# --------------------------------------------------------------------------------------------- apps


def wsgi_ok(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]


async def asgi_ok(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


def wsgi_peer_is(peer: str, app: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        environ["REMOTE_ADDR"] = peer
        return app(environ, start_response)
    return wrapper


def asgi_peer_is(peer: str, app: Any) -> Any:
    async def wrapper(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope = dict(scope, client=(peer, 40000))
        await app(scope, receive, send)
    return wrapper


def limiter_2_per_min() -> FixedWindowRateLimiter:
    return FixedWindowRateLimiter(MemoryBackend(), limit=2, window=60)


def statuses(url: str, headers: list[dict[str, str]]) -> list[int]:
    with httpx.Client(base_url=url, timeout=10.0) as client:
        return [client.get("/", headers=h).status_code for h in headers]


def forged(n: int) -> list[dict[str, str]]:
    return [{"X-Forwarded-For": f"198.51.100.{i}"} for i in range(n)]


# --------------------------------------------------------------------------- forged X-Forwarded-For


@pytest.mark.parametrize(("peer", "expected"), [
    (PUBLIC_PEER, PUBLIC_PEER),              # public IPv4: the header is the client's own
    ("2001:db8:5::9", "2001:db8:5::9"),     # public-looking IPv6
    ("100.64.0.1", "100.64.0.1"),            # carrier-grade NAT is not "your proxy"
    ("127.0.0.1", "198.51.100.7"),           # loopback proxy: believed
    ("10.1.2.3", "198.51.100.7"),            # RFC 1918
    ("172.31.0.1", "198.51.100.7"),
    ("192.168.1.1", "198.51.100.7"),
    ("::1", "198.51.100.7"),                 # IPv6 loopback
    ("fd00::1", "198.51.100.7"),             # IPv6 unique local
    ("::ffff:10.0.0.1", "198.51.100.7"),     # IPv4-mapped private
    ("::ffff:203.0.113.9", PUBLIC_PEER),     # IPv4-mapped public
])
def test_default_ip_funcs_believe_the_header_only_from_private_peers(
    peer: str, expected: str
) -> None:
    header = "6.6.6.6, 198.51.100.7"
    environ = {"REMOTE_ADDR": peer, "HTTP_X_FORWARDED_FOR": header}
    scope = {"type": "http", "client": (peer, 1234),
             "headers": [(b"x-forwarded-for", header.encode())]}
    assert wsgi_ip_func()(environ) == expected
    assert asgi_ip_func()(scope) == expected
    # The API-key functions fall back to the same safe default.
    assert wsgi_api_key_func()(environ) == expected
    assert asgi_api_key_func()(scope) == expected


def test_explicit_trusted_proxies_still_decide_alone() -> None:
    environ = {"REMOTE_ADDR": PUBLIC_PEER, "HTTP_X_FORWARDED_FOR": "198.51.100.7"}
    assert wsgi_ip_func(trusted_proxies=["203.0.113.0/24"])(environ) == "198.51.100.7"
    private = {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "198.51.100.7"}
    assert wsgi_ip_func(trusted_proxies=["203.0.113.0/24"])(private) == "10.0.0.1"
    assert wsgi_ip_func(trusted_proxies=[])(private) == "10.0.0.1"


@pytest.mark.slow
def test_forged_header_from_public_peer_is_limited_through_werkzeug() -> None:
    app = wsgi_peer_is(PUBLIC_PEER, RateLimitMiddleware(
        wsgi_ok, limiter_2_per_min(), key_func=wsgi_ip_func()))
    with serve_wsgi(app) as url:
        got = statuses(url, forged(20))
    assert got == [200, 200] + [429] * 18


@pytest.mark.slow
def test_forged_header_from_public_peer_is_limited_through_uvicorn() -> None:
    limiter = AsyncRateLimiter(limiter_2_per_min())
    app = asgi_peer_is(PUBLIC_PEER, AsyncRateLimitMiddleware(
        asgi_ok, limiter, key_func=asgi_ip_func()))
    with serve_asgi(app, lifespan="off") as url:
        got = statuses(url, forged(20))
    assert got == [200, 200] + [429] * 18


@pytest.mark.slow
def test_loopback_proxy_header_is_honoured_through_werkzeug_and_uvicorn() -> None:
    # Three clients behind a proxy on 127.0.0.1, three requests each: each its own quota.
    clients = [{"X-Forwarded-For": f"6.6.6.6, 198.51.100.{i}"} for i in (1, 2, 3) for _ in "abc"]
    expected = [200, 200, 429] * 3
    wsgi = RateLimitMiddleware(wsgi_ok, limiter_2_per_min(), key_func=wsgi_ip_func())
    with serve_wsgi(wsgi) as url:
        assert statuses(url, clients) == expected
    asgi = AsyncRateLimitMiddleware(asgi_ok, AsyncRateLimiter(limiter_2_per_min()),
                                    key_func=asgi_ip_func())
    with serve_asgi(asgi, lifespan="off") as url:
        assert statuses(url, clients) == expected


# --------------------------------------------------------------------------------- API-key guessing

ISSUED = {"live-key-1"}


@pytest.mark.slow
def test_guessed_api_keys_share_the_client_bucket_through_werkzeug() -> None:
    key_func = wsgi_api_key_func(verify=ISSUED.__contains__)
    app = wsgi_peer_is(PUBLIC_PEER, RateLimitMiddleware(
        wsgi_ok, limiter_2_per_min(), key_func=key_func))
    with serve_wsgi(app) as url:
        guesses = statuses(url, [{"X-API-Key": f"guess-{i}"} for i in range(20)])
        issued = statuses(url, [{"X-API-Key": "live-key-1"}] * 3)
    assert guesses == [200, 200] + [429] * 18
    assert issued == [200, 200, 429]  # a real key has its own quota


@pytest.mark.slow
def test_guessed_api_keys_share_the_client_bucket_through_uvicorn() -> None:
    key_func = asgi_api_key_func(verify=ISSUED.__contains__)
    app = asgi_peer_is(PUBLIC_PEER, AsyncRateLimitMiddleware(
        asgi_ok, AsyncRateLimiter(limiter_2_per_min()), key_func=key_func))
    with serve_asgi(app, lifespan="off") as url:
        guesses = statuses(url, [{"X-API-Key": f"guess-{i}"} for i in range(20)])
    assert guesses == [200, 200] + [429] * 18


def test_verify_keys_and_fallbacks() -> None:
    seen: list[str] = []

    def verify(key: str) -> bool:
        seen.append(key)
        return key == "live-key-1"

    f = wsgi_api_key_func(verify=verify, fallback=lambda env: "anon")
    assert f({"HTTP_X_API_KEY": " live-key-1 "}) == hash_api_key("live-key-1")
    assert f({"HTTP_X_API_KEY": "guess"}) == "anon"
    assert f({}) == "anon"  # no key: verify is not consulted
    assert seen == ["live-key-1", "guess"]
    g = asgi_api_key_func(verify=verify)
    scope = {"type": "http", "client": (PUBLIC_PEER, 1), "headers": [(b"x-api-key", b"guess")]}
    assert g(scope) == PUBLIC_PEER


async def _async_verify(key: str) -> bool:
    return True


@pytest.mark.parametrize("factory", [wsgi_api_key_func, asgi_api_key_func])
def test_bad_verify_is_a_type_error(factory: Callable[..., Any]) -> None:
    with pytest.raises(TypeError, match="verify"):
        factory(verify="not callable")
    with pytest.raises(TypeError, match="verify"):
        factory(verify=_async_verify)  # a coroutine is truthy: would admit every key
    f = factory(verify=lambda key: "yes")
    request: Any = (
        {"HTTP_X_API_KEY": "k"} if factory is wsgi_api_key_func
        else {"type": "http", "headers": [(b"x-api-key", b"k")]}
    )
    with pytest.raises(TypeError, match="verify must return a bool"):
        f(request)


# ------------------------------------------------------------ AsyncRedisBackend: hung or dead Redis


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


def _limiter(server: RedisServer, **backend_kwargs: Any) -> TokenBucketRateLimiter:
    # A plain client: no socket timeout, redis-py's default retries -- the setup that hung.
    client = redis.asyncio.Redis(host="127.0.0.1", port=server.port)
    return TokenBucketRateLimiter(AsyncRedisBackend(client, **backend_kwargs),
                                  limit=3, window=3600)


async def _admitted(limiter: TokenBucketRateLimiter, key: str, n: int) -> int:
    return sum([(await limiter.is_allowed_async(key)).allowed for _ in range(n)])


def _signal(server: RedisServer, sig: signal.Signals) -> None:
    assert server.process is not None
    server.process.send_signal(sig)


async def _guarded(coro: Any) -> Any:
    # Hang guard only (main hung > 8 s); the behaviour is asserted by the caller.
    return await asyncio.wait_for(coro, 5.0)


@pytest.mark.slow
def test_async_backend_bounds_a_stopped_redis_then_resumes(redis_server: RedisServer) -> None:
    async def scenario() -> None:
        limiter = _limiter(redis_server, timeout=1.0)
        assert await _admitted(limiter, "before", 1) == 1  # connection pool warm
        _signal(redis_server, signal.SIGSTOP)
        try:
            start = time.monotonic()
            with pytest.raises(BackendError, match="timed out"):
                await _guarded(limiter.is_allowed_async("stuck"))
            assert time.monotonic() - start < 5.0
            with pytest.raises(BackendError, match="timed out"):
                await _guarded(limiter.peek_async("stuck"))
        finally:
            _signal(redis_server, signal.SIGCONT)
        # Redis may still run the cancelled scripts on "stuck"; a fresh key is exact.
        assert await _guarded(_admitted(limiter, "after", 5)) == 3
        assert limiter.backend.counters == {  # type: ignore[attr-defined]
            "errors": 2, "fallback_allowed": 0, "fallback_denied": 0}

    asyncio.run(scenario())


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["allow", "deny"])
def test_async_backend_on_error_answers_for_a_stopped_redis(
    redis_server: RedisServer, policy: str
) -> None:
    async def scenario() -> None:
        limiter = _limiter(redis_server, timeout=1.0, on_error=policy)
        assert await _admitted(limiter, "before", 1) == 1
        _signal(redis_server, signal.SIGSTOP)
        try:
            results = [await _guarded(limiter.is_allowed_async("stuck")) for _ in range(2)]
        finally:
            _signal(redis_server, signal.SIGCONT)
        for result in results:
            assert result.allowed is (policy == "allow")
            assert result.metadata == {"on_error": policy}
            assert result.limit == 3
            assert result.window == 3600.0
            assert result.remaining == 0
            assert result.retry_after == (0.0 if policy == "allow" else 1.0)
        assert limiter.backend.counters == {  # type: ignore[attr-defined]
            "errors": 2,
            "fallback_allowed": 2 if policy == "allow" else 0,
            "fallback_denied": 2 if policy == "deny" else 0,
        }
        assert await _guarded(_admitted(limiter, "after", 5)) == 3  # decided by Redis again

    asyncio.run(scenario())


@pytest.mark.slow
def test_async_backend_killed_redis_raises_then_recovers_on_restart(
    redis_server: RedisServer,
) -> None:
    async def scenario() -> None:
        raising = _limiter(redis_server, timeout=1.0)
        failing_open = _limiter(redis_server, timeout=1.0, on_error="allow")
        assert await _admitted(raising, "before", 1) == 1
        assert await _admitted(failing_open, "before", 1) == 1
        redis_server.kill()
        with pytest.raises(BackendError):  # BackendConnectionError, or timed out retrying
            await _guarded(raising.is_allowed_async("k"))
        result = await _guarded(failing_open.is_allowed_async("k"))
        assert result.allowed is True
        assert result.metadata == {"on_error": "allow"}
        # reset follows on_error like RedisBackend's: raises only under "raise".
        with pytest.raises(BackendError):
            await _guarded(raising.reset_async("k"))
        await _guarded(failing_open.reset_async("k"))
        assert failing_open.backend.counters == {  # type: ignore[attr-defined]
            "errors": 2, "fallback_allowed": 1, "fallback_denied": 0}
        redis_server.start()  # same port
        assert await _guarded(_admitted(raising, "after", 5)) == 3
        assert await _guarded(_admitted(failing_open, "after2", 5)) == 3

    asyncio.run(scenario())


def test_async_backend_refused_connection_is_a_connection_error(
    redis_server: RedisServer,
) -> None:
    port = redis_server.port
    redis_server.kill()

    async def scenario() -> None:
        # A client that fails fast (no retries): the refusal itself reaches the caller.
        client = redis.asyncio.Redis(host="127.0.0.1", port=port, retry=Retry(NoBackoff(), 0))
        backend = AsyncRedisBackend(client, timeout=1.0)
        limiter = TokenBucketRateLimiter(backend, limit=3, window=3600)
        with pytest.raises(BackendConnectionError):
            await _guarded(limiter.is_allowed_async("k"))
        assert backend.counters["errors"] == 1

    asyncio.run(scenario())


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"timeout": 0}, "timeout"), ({"timeout": -1.0}, "timeout"),
    ({"timeout": float("nan")}, "timeout"), ({"timeout": float("inf")}, "timeout"),
    ({"timeout": True}, "timeout"), ({"timeout": "1"}, "timeout"),
    ({"on_error": "ignore"}, "on_error"),
])
def test_async_backend_bad_options(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        AsyncRedisBackend(redis.asyncio.Redis(), **kwargs)


def test_async_backend_defaults_match_redis_backend() -> None:
    backend = AsyncRedisBackend(redis.asyncio.Redis())
    assert backend.timeout == 0.5
    assert backend.on_error == "raise"
    assert backend.counters == {"errors": 0, "fallback_allowed": 0, "fallback_denied": 0}

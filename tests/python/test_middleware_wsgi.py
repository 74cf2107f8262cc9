"""RateLimitMiddleware on a real Flask app served by werkzeug, driven over HTTP with httpx."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import FakeClock
from flask import Flask, Response
from http_servers import serve_wsgi

from ratelimiter import (
    AsyncRateLimiter,
    FixedWindowRateLimiter,
    MemoryBackend,
    TokenBucketRateLimiter,
)
from ratelimiter.key_funcs import wsgi_api_key_func, wsgi_ip_func
from ratelimiter.middleware import RateLimitMiddleware

BODY_429 = {"error": "rate limit exceeded"}


def make_flask() -> Flask:
    app = Flask(__name__)

    @app.route("/")
    def index() -> str:
        return "ok"

    @app.route("/health")
    def health() -> str:
        return "healthy"

    @app.route("/api/search")
    def search() -> str:
        return "results"

    @app.route("/api/items", methods=["GET", "POST", "OPTIONS"])
    def items() -> str:
        return "items"

    @app.route("/login", methods=["POST"])
    def login() -> str:
        return "welcome"

    @app.route("/own-headers")
    def own_headers() -> Response:
        response = Response("custom")
        response.headers["X-RateLimit-Limit"] = "app-set"
        return response

    return app


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


def fixed(
    limit: int, clock: FakeClock, window: float = 60, **kwargs: Any
) -> FixedWindowRateLimiter:
    return FixedWindowRateLimiter(MemoryBackend(), limit=limit, window=window, clock=clock,
                                  **kwargs)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as c:
        yield c


def test_limit_5_admits_exactly_5_then_429_with_headers_and_body(
    fake_clock: FakeClock, client: httpx.Client
) -> None:
    app = RateLimitMiddleware(make_flask(), fixed(5, fake_clock))
    with serve_wsgi(app) as url:
        for i in range(5):
            r = client.get(url + "/")
            assert r.status_code == 200
            assert r.text == "ok"
            assert r.headers["X-RateLimit-Limit"] == "5"
            assert r.headers["X-RateLimit-Remaining"] == str(4 - i)
            # fixed windows start at multiples of 60: 960 -> reset at 1020, 20 s away
            assert r.headers["X-RateLimit-Reset"] == "20"
            assert "Retry-After" not in r.headers
        for _ in range(3):
            r = client.get(url + "/")
            assert r.status_code == 429
            assert r.json() == BODY_429
            assert r.content == b'{"error": "rate limit exceeded"}'
            assert r.headers["Content-Type"] == "application/json"
            assert r.headers["Content-Length"] == str(len(r.content))
            assert r.headers["Retry-After"] == "20"
            assert r.headers["X-RateLimit-Limit"] == "5"
            assert r.headers["X-RateLimit-Remaining"] == "0"
            assert r.headers["X-RateLimit-Reset"] == "20"

        fake_clock.now += 15.5  # 4.5 s left: Retry-After rounds up
        r = client.get(url + "/")
        assert r.status_code == 429
        assert r.headers["Retry-After"] == "5"
        fake_clock.now += 4.5  # the next window
        r = client.get(url + "/")
        assert r.status_code == 200
        assert r.headers["X-RateLimit-Remaining"] == "4"


def test_exempt_paths_and_methods_are_never_limited(
    fake_clock: FakeClock, client: httpx.Client
) -> None:
    app = RateLimitMiddleware(make_flask(), fixed(2, fake_clock), exempt_paths=["/health"])
    with serve_wsgi(app) as url:
        for _ in range(20):
            r = client.get(url + "/health")
            assert r.status_code == 200
            assert "X-RateLimit-Limit" not in r.headers
        for _ in range(20):  # CORS preflight: OPTIONS exempt by default
            assert client.options(url + "/api/items").status_code == 200
        assert [client.get(url + "/").status_code for _ in range(3)] == [200, 200, 429]
        assert client.get(url + "/health").status_code == 200


def test_exempt_prefix_and_no_exempt_methods(fake_clock: FakeClock, client: httpx.Client) -> None:
    app = RateLimitMiddleware(
        make_flask(), fixed(1, fake_clock), exempt_paths=["/api/*"], exempt_methods=()
    )
    with serve_wsgi(app) as url:
        assert [client.get(url + "/api/search").status_code for _ in range(5)] == [200] * 5
        assert client.options(url + "/").status_code in (200, 405)  # counted: first request
        assert client.get(url + "/").status_code == 429


def test_per_route_cost_mapping(fake_clock: FakeClock, client: httpx.Client) -> None:
    app = RateLimitMiddleware(make_flask(), fixed(10, fake_clock), cost={"/api/search": 5})
    with serve_wsgi(app) as url:
        r = client.get(url + "/api/search")
        assert (r.status_code, r.headers["X-RateLimit-Remaining"]) == (200, "5")
        r = client.get(url + "/")
        assert (r.status_code, r.headers["X-RateLimit-Remaining"]) == (200, "4")
        r = client.get(url + "/api/search")  # needs 5, only 4 left; not consumed
        assert r.status_code == 429
        assert r.headers["X-RateLimit-Remaining"] == "4"
        assert [client.get(url + "/").status_code for _ in range(5)] == [200] * 4 + [429]


def test_per_route_cost_callable(fake_clock: FakeClock, client: httpx.Client) -> None:
    def cost(environ: dict[str, Any]) -> int:
        return 3 if environ["REQUEST_METHOD"] == "POST" else 1

    app = RateLimitMiddleware(make_flask(), fixed(4, fake_clock), cost=cost)
    with serve_wsgi(app) as url:
        assert client.post(url + "/api/items").status_code == 200
        assert client.post(url + "/api/items").status_code == 429
        assert client.get(url + "/api/items").status_code == 200
        assert client.get(url + "/api/items").status_code == 429


def test_cost_larger_than_capacity_rejected_without_retry_after(
    fake_clock: FakeClock, client: httpx.Client
) -> None:
    app = RateLimitMiddleware(make_flask(), fixed(3, fake_clock), cost={"/api/search": 5})
    with serve_wsgi(app) as url:
        r = client.get(url + "/api/search")
        assert r.status_code == 429
        assert r.json() == BODY_429
        assert "Retry-After" not in r.headers  # waiting cannot help
        assert r.headers["X-RateLimit-Remaining"] == "3"
        assert client.get(url + "/").status_code == 200


def test_per_route_limiter_mapping(fake_clock: FakeClock, client: httpx.Client) -> None:
    login = fixed(1, fake_clock, key_prefix="login:")
    app = RateLimitMiddleware(
        make_flask(), fixed(100, fake_clock), route_limiters={"POST /login": login}
    )
    with serve_wsgi(app) as url:
        r = client.post(url + "/login")
        assert (r.status_code, r.headers["X-RateLimit-Limit"]) == (200, "1")
        assert client.post(url + "/login").status_code == 429
        r = client.get(url + "/")
        assert (r.status_code, r.headers["X-RateLimit-Limit"]) == (200, "100")


def test_per_route_limiter_callable_and_async_limiter(
    fake_clock: FakeClock, client: httpx.Client
) -> None:
    premium = AsyncRateLimiter(fixed(3, fake_clock, key_prefix="premium:"))

    def pick(environ: dict[str, Any]) -> Any:
        return premium if environ.get("HTTP_X_PLAN") == "premium" else None

    app = RateLimitMiddleware(make_flask(), fixed(1, fake_clock), route_limiters=pick)
    with serve_wsgi(app) as url:
        codes = [client.get(url + "/", headers={"X-Plan": "premium"}).status_code
                 for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        assert [client.get(url + "/").status_code for _ in range(2)] == [200, 429]


@pytest.mark.parametrize("style", ["ietf", "both"])
def test_header_styles(style: str, fake_clock: FakeClock, client: httpx.Client) -> None:
    app = RateLimitMiddleware(make_flask(), fixed(1, fake_clock), header_style=style)  # type: ignore[arg-type]
    with serve_wsgi(app) as url:
        r = client.get(url + "/")
        assert r.headers["RateLimit-Policy"] == '"default";q=1;w=60'
        assert r.headers["RateLimit"] == '"default";r=0;t=20'
        assert ("X-RateLimit-Limit" in r.headers) is (style == "both")
        r = client.get(url + "/")
        assert r.status_code == 429
        assert r.headers["Retry-After"] == "20"
        assert r.headers["RateLimit"] == '"default";r=0;t=20'
        assert r.headers["Content-Length"] == "32"


def test_app_headers_are_not_overwritten(fake_clock: FakeClock, client: httpx.Client) -> None:
    app = RateLimitMiddleware(make_flask(), fixed(5, fake_clock))
    with serve_wsgi(app) as url:
        r = client.get(url + "/own-headers")
        assert r.headers.get_list("X-RateLimit-Limit") == ["app-set"]
        assert r.headers["X-RateLimit-Remaining"] == "4"


@pytest.mark.slow
def test_spoofed_forwarded_for_from_untrusted_peer_default_key(
    fake_clock: FakeClock, client: httpx.Client
) -> None:
    app = RateLimitMiddleware(make_flask(), fixed(7, fake_clock))
    with serve_wsgi(app) as url:
        codes = [
            client.get(url + "/", headers={"X-Forwarded-For": f"10.{i // 256}.{i % 256}.1"})
            .status_code
            for i in range(1000)
        ]
    assert codes.count(200) == 7
    assert codes[:7] == [200] * 7


@pytest.mark.slow
def test_spoofed_forwarded_for_untrusted_peer_with_trusted_proxies(
    fake_clock: FakeClock, client: httpx.Client
) -> None:
    key_func = wsgi_ip_func(trusted_proxies=["10.0.0.0/8", "192.168.0.0/16"])
    app = RateLimitMiddleware(make_flask(), fixed(7, fake_clock), key_func=key_func)
    with serve_wsgi(app) as url:
        codes = [
            client.get(url + "/", headers={"X-Forwarded-For": f"203.0.{i // 256}.{i % 256}"})
            .status_code
            for i in range(1000)
        ]
    assert codes.count(200) == 7


def test_behind_trusted_proxy_keyed_by_real_client(
    fake_clock: FakeClock, client: httpx.Client
) -> None:
    # The test client plays the proxy (127.0.0.1): it appends the real client's address.
    seen: list[str] = []
    key_func = wsgi_ip_func(trusted_proxies=["127.0.0.0/8"])

    def recording_key(environ: dict[str, Any]) -> str:
        key = key_func(environ)
        seen.append(key)
        return key

    app = RateLimitMiddleware(make_flask(), fixed(3, fake_clock), key_func=recording_key)
    with serve_wsgi(app) as url:
        spoofed = [
            client.get(url + "/", headers={"X-Forwarded-For": f"1.1.1.{i}, 198.51.100.7"})
            .status_code
            for i in range(50)
        ]
        other = [
            client.get(url + "/", headers={"X-Forwarded-For": "198.51.100.8"}).status_code
            for _ in range(4)
        ]
    assert spoofed.count(200) == 3
    assert other == [200, 200, 200, 429]
    assert set(seen) == {"198.51.100.7", "198.51.100.8"}


def test_api_key_func_keys_by_hashed_key(fake_clock: FakeClock, client: httpx.Client) -> None:
    keys: list[str] = []
    key_func = wsgi_api_key_func("X-API-Key")

    def recording_key(environ: dict[str, Any]) -> str:
        keys.append(key_func(environ))
        return keys[-1]

    app = RateLimitMiddleware(make_flask(), fixed(2, fake_clock), key_func=recording_key)
    with serve_wsgi(app) as url:
        a = [client.get(url + "/", headers={"X-API-Key": "secret-a"}).status_code
             for _ in range(3)]
        b = [client.get(url + "/", headers={"X-API-Key": "secret-b"}).status_code
             for _ in range(3)]
    assert a == b == [200, 200, 429]
    assert all(k.startswith("apikey:") and "secret" not in k for k in keys)


def test_token_bucket_retry_after_is_exact(client: httpx.Client) -> None:
    clock = FakeClock()
    limiter = TokenBucketRateLimiter(MemoryBackend(), limit=2, window=10, clock=clock)
    app = RateLimitMiddleware(make_flask(), limiter)
    with serve_wsgi(app) as url:
        assert [client.get(url + "/").status_code for _ in range(2)] == [200, 200]
        r = client.get(url + "/")
        assert r.status_code == 429
        assert r.headers["Retry-After"] == "5"  # one token per 5 s
        clock.now += 5
        assert client.get(url + "/").status_code == 200


def test_plain_wsgi_app_without_framework(fake_clock: FakeClock, client: httpx.Client) -> None:
    def raw_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"hi"]

    app = RateLimitMiddleware(raw_app, fixed(1, fake_clock))
    with serve_wsgi(app) as url:
        r = client.get(url + "/x")
        assert (r.status_code, r.text, r.headers["X-RateLimit-Remaining"]) == (200, "hi", "0")
        r = client.get(url + "/x")
        assert r.status_code == 429
        assert json.loads(r.content) == BODY_429


@pytest.mark.parametrize(
    "kwargs",
    [
        {"cost": 0},
        {"cost": True},
        {"cost": {"/x": -1}},
        {"header_style": "fancy"},
        {"exempt_paths": ["health"]},
        {"route_limiters": {"nope": None}},
    ],
)
def test_invalid_configuration_raises_value_error(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        RateLimitMiddleware(make_flask(), fixed(1, FakeClock()), **kwargs)


def test_limiter_must_have_is_allowed() -> None:
    with pytest.raises(TypeError):
        RateLimitMiddleware(make_flask(), object())  # type: ignore[arg-type]

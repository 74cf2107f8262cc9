"""AsyncRateLimitMiddleware on a real FastAPI app served by uvicorn, driven over HTTP."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any, Optional

import httpx
import pytest
import websockets.sync.client
from conftest import DictBackend, FakeClock
from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import PlainTextResponse
from http_servers import serve_asgi

from ratelimiter import (
    AsyncRateLimiter,
    FixedWindowRateLimiter,
    MemoryBackend,
)
from ratelimiter.key_funcs import asgi_ip_func
from ratelimiter.middleware import AsyncRateLimitMiddleware

BODY_429 = {"error": "rate limit exceeded"}


def make_fastapi() -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.started = True
        yield

    app = FastAPI(lifespan=lifespan)

    @app.get("/")
    async def index() -> PlainTextResponse:
        return PlainTextResponse("ok")

    @app.get("/health")
    async def health() -> PlainTextResponse:
        return PlainTextResponse("healthy")

    @app.get("/started")
    async def started(request: Request) -> dict[str, bool]:
        return {"started": bool(getattr(request.app.state, "started", False))}

    @app.get("/api/search")
    async def search() -> dict[str, list[str]]:
        return {"results": []}

    @app.api_route("/api/items", methods=["GET", "POST", "OPTIONS"])
    async def items() -> PlainTextResponse:
        return PlainTextResponse("items")

    @app.get("/own-headers")
    async def own_headers() -> PlainTextResponse:
        return PlainTextResponse("custom", headers={"X-RateLimit-Limit": "app-set"})

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        message = await websocket.receive_text()
        await websocket.send_text("echo:" + message)
        await websocket.close()

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


def added(limiter: Any, **kwargs: Any) -> FastAPI:
    app = make_fastapi()
    app.add_middleware(AsyncRateLimitMiddleware, limiter=limiter, **kwargs)
    return app


def test_limit_5_exactly_then_429_add_middleware(
    fake_clock: FakeClock, client: httpx.Client
) -> None:
    with serve_asgi(added(fixed(5, fake_clock))) as url:
        for i in range(5):
            r = client.get(url + "/")
            assert (r.status_code, r.text) == (200, "ok")
            assert r.headers["x-ratelimit-limit"] == "5"
            assert r.headers["x-ratelimit-remaining"] == str(4 - i)
            assert r.headers["x-ratelimit-reset"] == "20"
        for _ in range(3):
            r = client.get(url + "/")
            assert r.status_code == 429
            assert r.json() == BODY_429
            assert r.headers["content-type"] == "application/json"
            assert r.headers["content-length"] == str(len(r.content)) == "32"
            assert r.headers["retry-after"] == "20"
            assert r.headers["x-ratelimit-remaining"] == "0"
            assert r.headers["x-ratelimit-limit"] == "5"
        fake_clock.now += 20
        assert client.get(url + "/").status_code == 200


def test_wrapper_form_and_async_rate_limiter(fake_clock: FakeClock, client: httpx.Client) -> None:
    app = AsyncRateLimitMiddleware(make_fastapi(), AsyncRateLimiter(fixed(3, fake_clock)))
    with serve_asgi(app) as url:
        assert [client.get(url + "/").status_code for _ in range(5)] == [200] * 3 + [429] * 2


def test_lifespan_passes_through(fake_clock: FakeClock, client: httpx.Client) -> None:
    with serve_asgi(added(fixed(5, fake_clock)), lifespan="on") as url:
        assert client.get(url + "/started").json() == {"started": True}


def test_websocket_passes_through(fake_clock: FakeClock, client: httpx.Client) -> None:
    with serve_asgi(added(fixed(1, fake_clock))) as url:
        assert client.get(url + "/").status_code == 200
        assert client.get(url + "/").status_code == 429
        ws_url = url.replace("http://", "ws://") + "/ws"
        for i in range(3):  # not limited although the HTTP quota is gone
            with websockets.sync.client.connect(ws_url) as ws:
                ws.send(f"hi{i}")
                assert ws.recv() == f"echo:hi{i}"


def test_exempt_paths_and_options(fake_clock: FakeClock, client: httpx.Client) -> None:
    app = added(fixed(2, fake_clock), exempt_paths=["/health"])
    with serve_asgi(app) as url:
        for _ in range(10):
            r = client.get(url + "/health")
            assert r.status_code == 200
            assert "x-ratelimit-limit" not in r.headers
            assert client.options(url + "/api/items").status_code == 200
        assert [client.get(url + "/").status_code for _ in range(3)] == [200, 200, 429]


def test_per_route_cost(fake_clock: FakeClock, client: httpx.Client) -> None:
    app = added(fixed(10, fake_clock), cost={"/api/search": 5})
    with serve_asgi(app) as url:
        r = client.get(url + "/api/search")
        assert (r.status_code, r.headers["x-ratelimit-remaining"]) == (200, "5")
        r = client.get(url + "/api/search")
        assert (r.status_code, r.headers["x-ratelimit-remaining"]) == (200, "0")
        assert client.get(url + "/api/search").status_code == 429
        assert client.get(url + "/").status_code == 429


def test_per_route_limiter_and_cost_callables(fake_clock: FakeClock, client: httpx.Client) -> None:
    strict = fixed(2, fake_clock, key_prefix="strict:")

    def pick(scope: Any) -> Optional[Any]:
        return strict if scope["path"].startswith("/api/") else None

    def cost(scope: Any) -> int:
        return 2 if scope["method"] == "POST" else 1

    app = added(fixed(100, fake_clock), route_limiters=pick, cost=cost)
    with serve_asgi(app) as url:
        assert client.post(url + "/api/items").status_code == 200
        r = client.get(url + "/api/items")
        assert (r.status_code, r.headers["x-ratelimit-limit"]) == (429, "2")
        r = client.get(url + "/")
        assert (r.status_code, r.headers["x-ratelimit-limit"]) == (200, "100")


@pytest.mark.parametrize("style", ["x-ratelimit", "ietf", "both"])
def test_header_styles(style: str, fake_clock: FakeClock, client: httpx.Client) -> None:
    with serve_asgi(added(fixed(1, fake_clock), header_style=style)) as url:
        r = client.get(url + "/")
        assert ("ratelimit" in r.headers) is (style != "x-ratelimit")
        assert ("x-ratelimit-limit" in r.headers) is (style != "ietf")
        r = client.get(url + "/")
        assert r.status_code == 429
        assert r.headers["retry-after"] == "20"
        if style != "x-ratelimit":
            assert r.headers["ratelimit-policy"] == '"default";q=1;w=60'
            assert r.headers["ratelimit"] == '"default";r=0;t=20'


def test_app_headers_are_kept(fake_clock: FakeClock, client: httpx.Client) -> None:
    with serve_asgi(added(fixed(5, fake_clock))) as url:
        r = client.get(url + "/own-headers")
        assert r.headers.get_list("x-ratelimit-limit") == ["app-set"]
        assert r.headers["x-ratelimit-remaining"] == "4"


@pytest.mark.slow
def test_spoofed_forwarded_for_untrusted_peer(fake_clock: FakeClock, client: httpx.Client) -> None:
    app = added(fixed(9, fake_clock))  # default key: the peer address
    app2 = added(fixed(9, fake_clock), key_func=asgi_ip_func(trusted_proxies=["10.0.0.0/8"]))
    for application in (app, app2):
        with serve_asgi(application) as url:
            codes = [
                client.get(url + "/", headers={"X-Forwarded-For": f"10.1.{i // 256}.{i % 256}"})
                .status_code
                for i in range(1000)
            ]
        assert codes.count(200) == 9


def test_behind_trusted_proxy_keyed_by_real_client(
    fake_clock: FakeClock, client: httpx.Client
) -> None:
    key_func = asgi_ip_func(trusted_proxies=["127.0.0.1/32"])
    with serve_asgi(added(fixed(2, fake_clock), key_func=key_func)) as url:
        a = [client.get(url + "/", headers={"X-Forwarded-For": f"6.6.6.{i}, 198.51.100.1"})
             .status_code for i in range(5)]
        b = [client.get(url + "/", headers={"X-Forwarded-For": "198.51.100.2"}).status_code
             for _ in range(3)]
    assert a == [200, 200, 429, 429, 429]
    assert b == [200, 200, 429]


def test_async_key_func(fake_clock: FakeClock, client: httpx.Client) -> None:
    async def by_header(scope: Any) -> str:
        await asyncio.sleep(0)
        headers: dict[bytes, bytes] = dict(scope["headers"])
        return headers.get(b"x-user", b"anon").decode()

    with serve_asgi(added(fixed(1, fake_clock), key_func=by_header)) as url:
        assert client.get(url + "/", headers={"X-User": "a"}).status_code == 200
        assert client.get(url + "/", headers={"X-User": "a"}).status_code == 429
        assert client.get(url + "/", headers={"X-User": "b"}).status_code == 200


def test_blocking_backend_runs_off_the_event_loop(
    fake_clock: FakeClock, client: httpx.Client
) -> None:
    backend = DictBackend()
    limiter = FixedWindowRateLimiter(backend, limit=3, window=60, clock=fake_clock)
    loop_threads: set[int] = set()

    app = make_fastapi()

    @app.get("/loop-thread")
    async def loop_thread() -> dict[str, int]:
        loop_threads.add(threading.get_ident())
        return {}

    app.add_middleware(AsyncRateLimitMiddleware, limiter=limiter, exempt_paths=["/loop-thread"])
    with serve_asgi(app) as url:
        assert client.get(url + "/loop-thread").status_code == 200
        assert [client.get(url + "/").status_code for _ in range(4)] == [200] * 3 + [429]
    assert backend.threads, "the backend was used"
    assert not backend.threads & loop_threads


@pytest.mark.slow
def test_concurrent_requests_one_key_admit_exactly_limit(fake_clock: FakeClock) -> None:
    async def burst(url: str) -> list[int]:
        async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=50)) as c:
            responses = await asyncio.gather(*(c.get(url + "/") for _ in range(200)))
        return [r.status_code for r in responses]

    with serve_asgi(added(fixed(25, fake_clock))) as url:
        codes = asyncio.run(burst(url))
    assert codes.count(200) == 25
    assert codes.count(429) == 175


def test_non_http_scope_passes_through_unit() -> None:
    seen: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    limiter = fixed(1, FakeClock())
    middleware = AsyncRateLimitMiddleware(inner, limiter)

    async def main() -> None:
        for _ in range(3):
            await middleware({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
            await middleware({"type": "websocket", "path": "/"}, None, None)  # type: ignore[arg-type]

    asyncio.run(main())
    assert seen == ["lifespan", "websocket"] * 3
    assert limiter.peek("127.0.0.1").remaining == 1


def test_429_body_is_valid_json_bytes() -> None:
    sent: list[dict[str, Any]] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("must not be called")

    async def send(message: Any) -> None:
        sent.append(message)

    limiter = fixed(1, FakeClock())
    limiter.is_allowed("192.0.2.1")
    middleware = AsyncRateLimitMiddleware(inner, limiter)
    scope = {"type": "http", "method": "GET", "path": "/", "headers": [],
             "client": ("192.0.2.1", 1234)}
    asyncio.run(middleware(scope, None, send))  # type: ignore[arg-type]
    assert sent[0]["status"] == 429
    headers = dict(sent[0]["headers"])
    assert headers[b"content-length"] == b"32"
    assert headers[b"retry-after"] == b"20"
    assert json.loads(sent[1]["body"]) == BODY_429

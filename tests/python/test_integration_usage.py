"""Usage reporting in the framework integrations: the usage endpoint (the caller's own quotas,
peeked, never counted, never another client's) and near-limit alerts (once per key per
limit per window), for Flask, FastAPI and Django, with a fake clock; and the FastAPI one
under a real uvicorn server."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import FakeClock
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from flask import Flask
from http_servers import serve_asgi
from integration_servers import EXAMPLES

from ratelimiter import ConfigurationError, MemoryBackend
from ratelimiter.integrations.fastapi import RateLimit, usage_router
from ratelimiter.integrations.flask import FlaskRateLimiter

NO_STORE = "no-store"


def quotas(body: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """``{resource: (limit, remaining)}`` of a usage report."""
    return {name: (r["limit"], r["remaining"]) for name, r in body["resources"].items()}


# ------------------------------------------------------------------ Flask


def flask_app(clock: FakeClock, **kwargs: Any) -> tuple[Flask, FlaskRateLimiter]:
    app = Flask(__name__)
    limiter = FlaskRateLimiter(app, backend=MemoryBackend(), algorithm="sliding_window",
                               clock=clock, default_limits="10/minute", **kwargs)

    @app.get("/a")
    @limiter.limit("5/second;100/hour")
    def a() -> str:
        return "a"

    @app.get("/b")
    @limiter.shared_limit("7/minute", scope="s")
    def b() -> str:
        return "b"

    @app.get("/c")
    @limiter.shared_limit("7/minute", scope="s")
    def c() -> str:
        return "c"

    @app.get("/d")
    def d() -> str:
        return "d"

    @app.get("/open")
    @limiter.exempt
    def open_() -> str:
        return "open"

    return app, limiter


def test_flask_usage_counts_each_limit_peeks_and_is_per_client(clock: FakeClock) -> None:
    app, _ = flask_app(clock, usage_path="/rate_limit")
    alice = app.test_client()
    bob = app.test_client()
    bob_env = {"REMOTE_ADDR": "10.0.0.2"}
    for _ in range(3):
        assert alice.get("/a").status_code == 200
    assert alice.get("/b").status_code == 200
    assert alice.get("/c").status_code == 200
    assert alice.get("/d").status_code == 200
    expected = {"/a 5/second": (5, 2), "/a 100/hour": (100, 97),
                "shared:s 7/minute": (7, 5), "/d 10/minute": (10, 9)}
    for _ in range(3):  # asking again changes nothing: the report never counts
        r = alice.get("/rate_limit")
        assert r.status_code == 200 and r.headers["Cache-Control"] == NO_STORE
        assert quotas(r.get_json()) == expected
    body = alice.get("/rate_limit").get_json()
    shared = body["resources"]["shared:s 7/minute"]
    assert shared["routes"] == ["/b", "/c"] and shared["policy"] == "7/minute"
    assert body["resources"]["/a 5/second"]["algorithm"] == "sliding_window"
    assert "127.0.0.1" not in alice.get("/rate_limit").get_data(as_text=True)
    # Bob's report is all his own: full quotas.
    assert quotas(bob.get("/rate_limit", environ_base=bob_env).get_json()) == {
        "/a 5/second": (5, 5), "/a 100/hour": (100, 100),
        "shared:s 7/minute": (7, 7), "/d 10/minute": (10, 10)}
    # At the limit, the report still answers (and says so); HEAD too; POST is 405.
    assert [alice.get("/a").status_code for _ in range(3)] == [200, 200, 429]
    r = alice.get("/rate_limit")
    assert r.status_code == 200
    entry = r.get_json()["resources"]["/a 5/second"]
    assert (entry["remaining"], entry["used"], entry["retry_after"]) == (0, 5, 1.0)
    assert alice.head("/rate_limit").status_code == 200
    r = alice.post("/rate_limit")
    assert r.status_code == 405 and r.headers["Allow"] == "GET, HEAD"


def test_flask_usage_from_config_and_bad_input(clock: FakeClock) -> None:
    app = Flask(__name__)
    app.config["RATELIMIT_USAGE_PATH"] = "/quota"
    limiter = FlaskRateLimiter(backend=MemoryBackend(), clock=clock)

    @app.get("/x")
    @limiter.limit("3/minute")
    def x() -> str:
        return "x"

    limiter.init_app(app)
    client = app.test_client()
    client.get("/x")
    assert quotas(client.get("/quota").get_json()) == {"/x 3/minute": (3, 2)}
    with pytest.raises(ValueError, match="usage_path"):
        FlaskRateLimiter(usage_path="rate_limit")
    with pytest.raises(TypeError, match="on_near_limit"):
        FlaskRateLimiter(on_near_limit=42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="near_limit_ratio"):
        FlaskRateLimiter(on_near_limit=print, near_limit_ratio=1.5)
    bad = Flask(__name__)
    bad.config["RATELIMIT_USAGE_PATH"] = "/a*"
    with pytest.raises(ConfigurationError, match="RATELIMIT_USAGE_PATH"):
        FlaskRateLimiter(bad)


def test_flask_usage_leaves_out_exempt_rules_and_broken_key_functions(
        clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    app = Flask(__name__)
    limiter = FlaskRateLimiter(app, backend=MemoryBackend(), clock=clock,
                               usage_path="/rate_limit")

    @app.get("/staff")
    @limiter.limit("2/minute", exempt_when=lambda r: r.headers.get("X-Staff") == "1")
    def staff() -> str:
        return "staff"

    @app.get("/broken", endpoint="usage_broken_key")  # a name no other test logs
    @limiter.limit("2/minute", key_func=lambda r: 1 / 0)
    def broken() -> str:
        return "broken"

    client = app.test_client()
    assert quotas(client.get("/rate_limit").get_json()) == {"/staff 2/minute": (2, 2)}
    assert "usage_broken_key" in caplog.text and "ZeroDivisionError" in caplog.text
    assert quotas(client.get("/rate_limit", headers={"X-Staff": "1"}).get_json()) == {}


def test_flask_near_limit_once_per_limit_per_window(clock: FakeClock) -> None:
    alerts: list[tuple[str, str, int]] = []

    def notify(key: str, result: Any) -> None:
        alerts.append((key, result.metadata["policy"], result.remaining))

    app, _ = flask_app(clock, on_near_limit=notify, near_limit_ratio=0.8)
    client = app.test_client()
    codes = [client.get("/d").status_code for _ in range(12)]
    assert codes == [200] * 10 + [429] * 2
    assert alerts == [("127.0.0.1", "10/minute", 2)]  # the 8th request, once
    clock.advance(60)
    assert [client.get("/d").status_code for _ in range(9)] == [200] * 9
    assert alerts == [("127.0.0.1", "10/minute", 2)] * 2  # next window: once more
    # Several limits: each alerts on its own (4 of 5/second: 80 %).
    alerts.clear()
    assert [client.get("/a").status_code for _ in range(5)] == [200] * 5
    assert alerts == [("127.0.0.1", "5/second", 1)]


# ------------------------------------------------------------------ FastAPI


def fastapi_app(clock: FakeClock, **kwargs: Any) -> FastAPI:
    backend = MemoryBackend()
    app = FastAPI()
    per_route = RateLimit("5/second;100/hour", backend=backend, clock=clock,
                          algorithm="sliding_window", **kwargs)
    shared = RateLimit("7/minute", backend=backend, clock=clock, scope="s",
                       algorithm="sliding_window", **kwargs)

    @app.get("/a", dependencies=[Depends(per_route)])
    async def a() -> str:
        return "a"

    @app.get("/b", dependencies=[Depends(shared)])
    async def b() -> str:
        return "b"

    @app.get("/c", dependencies=[Depends(shared)])
    async def c() -> str:
        return "c"

    app.include_router(usage_router("/rate_limit"))
    return app


def test_fastapi_usage_counts_each_limit_peeks_and_is_per_client(clock: FakeClock) -> None:
    app = fastapi_app(clock)
    with TestClient(app) as alice, TestClient(app, client=("10.0.0.2", 5000)) as bob:
        assert [alice.get("/a").status_code for _ in range(3)] == [200] * 3
        assert alice.get("/b").status_code == alice.get("/c").status_code == 200
        expected = {"GET /a 5/second": (5, 2), "GET /a 100/hour": (100, 97),
                    "shared:s 7/minute": (7, 5)}
        for _ in range(3):
            r = alice.get("/rate_limit")
            assert r.status_code == 200 and r.headers["cache-control"] == NO_STORE
            assert quotas(r.json()) == expected
        assert r.json()["resources"]["shared:s 7/minute"]["routes"] == ["GET /b", "GET /c"]
        assert "testclient" not in r.text
        assert quotas(bob.get("/rate_limit").json()) == {
            "GET /a 5/second": (5, 5), "GET /a 100/hour": (100, 100),
            "shared:s 7/minute": (7, 7)}
        assert [alice.get("/a").status_code for _ in range(3)] == [200, 200, 429]
        r = alice.get("/rate_limit")
        assert r.status_code == 200
        assert r.json()["resources"]["GET /a 5/second"]["remaining"] == 0
        r = alice.head("/rate_limit")
        assert r.status_code == 200 and r.content == b""
        assert alice.post("/rate_limit").status_code == 405


def test_fastapi_usage_route_is_never_limited(clock: FakeClock) -> None:
    limit = RateLimit("2/minute", backend=MemoryBackend(), clock=clock, scope="all")
    app = FastAPI(dependencies=[Depends(limit)])

    @app.get("/x")
    async def x() -> str:
        return "x"

    app.include_router(usage_router())
    with TestClient(app) as client:
        assert client.get("/x").status_code == 200
        for _ in range(5):
            assert quotas(client.get("/rate_limit").json()) == {"shared:all 2/minute": (2, 1)}
    with pytest.raises(ValueError, match="usage_path"):
        usage_router("rate_limit")


def test_fastapi_near_limit_once_per_window_sync_and_async(clock: FakeClock) -> None:
    alerts: list[tuple[str, str]] = []

    async def notify(key: str, result: Any) -> None:
        alerts.append((key, result.metadata["policy"]))

    app = fastapi_app(clock, on_near_limit=notify)
    with TestClient(app) as client:
        assert [client.get("/b").status_code for _ in range(9)] == [200] * 7 + [429] * 2
        assert alerts == [("testclient", "7/minute")]  # 6 of 7 >= 80 %: once
        clock.advance(60)
        assert [client.get("/c").status_code for _ in range(7)] == [200] * 7
        assert alerts == [("testclient", "7/minute")] * 2
    with pytest.raises(TypeError, match="on_near_limit"):
        RateLimit("1/second", on_near_limit="nope")  # type: ignore[arg-type]


@pytest.mark.slow
def test_fastapi_usage_under_uvicorn(clock: FakeClock) -> None:
    app = fastapi_app(clock)
    with serve_asgi(app) as url, httpx.Client(base_url=url) as client:
        assert [client.get("/a").status_code for _ in range(4)] == [200] * 4
        for _ in range(2):
            r = client.get("/rate_limit")
            assert r.status_code == 200 and r.headers["cache-control"] == NO_STORE
            assert quotas(r.json()) == {"GET /a 5/second": (5, 1),
                                        "GET /a 100/hour": (100, 96),
                                        "shared:s 7/minute": (7, 7)}
        r = client.head("/rate_limit")
        assert r.status_code == 200 and r.content == b""


# ------------------------------------------------------------------ Django

django = pytest.importorskip("django")
sys.path.insert(0, str(EXAMPLES / "django_project"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
django.setup()

from django.test import AsyncClient, Client, override_settings  # noqa: E402

DJANGO = {"BACKEND": "memory://", "DEFAULT_LIMITS": "20/minute", "KEY": "ip",
          "EXEMPT_PATHS": ["/health"], "ALGORITHM": "sliding_window",
          "USAGE_PATH": "/rate_limit"}


@pytest.fixture()
def django_clock(clock: FakeClock) -> Iterator[FakeClock]:
    with override_settings(RATELIMITER={**DJANGO, "CLOCK": clock}):
        yield clock


def own(body: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """The example project's resources of a report (other tests decorate views too)."""
    names = ("default 20/minute", "ping 5/minute", "shared:search 8/minute")
    return {name: value for name, value in quotas(body).items() if name in names}


def test_django_usage_counts_each_limit_peeks_and_is_per_client(django_clock: FakeClock
                                                                ) -> None:
    alice, bob = Client(), Client(REMOTE_ADDR="10.0.0.2")
    assert [alice.get("/ping").status_code for _ in range(3)] == [200] * 3
    assert alice.get("/search").status_code == alice.get("/suggest").status_code == 200
    expected = {"default 20/minute": (20, 15), "ping 5/minute": (5, 2),
                "shared:search 8/minute": (8, 6)}
    for _ in range(3):
        r = alice.get("/rate_limit")
        assert r.status_code == 200 and r["Cache-Control"] == NO_STORE
        assert own(r.json()) == expected
    assert r.json()["resources"]["shared:search 8/minute"]["routes"] == ["search", "suggest"]
    assert "127.0.0.1" not in r.content.decode()
    assert own(bob.get("/rate_limit").json()) == {
        "default 20/minute": (20, 20), "ping 5/minute": (5, 5),
        "shared:search 8/minute": (8, 8)}
    assert [alice.get("/ping").status_code for _ in range(3)] == [200, 200, 429]
    r = alice.get("/rate_limit")
    assert r.status_code == 200 and own(r.json())["ping 5/minute"] == (5, 0)
    r = alice.head("/rate_limit")
    assert r.status_code == 200 and r.content == b""
    r = alice.post("/rate_limit")
    assert r.status_code == 405 and r["Allow"] == "GET, HEAD"


async def test_django_usage_async_chain(django_clock: FakeClock) -> None:
    client = AsyncClient()
    assert (await client.get("/async-ping")).status_code == 200
    for _ in range(2):
        r = await client.get("/rate_limit")
        assert r.status_code == 200
        assert quotas(r.json())["async_ping 2/minute"] == (2, 1)


def test_django_near_limit_once_per_window(clock: FakeClock) -> None:
    alerts: list[tuple[str, str]] = []

    def notify(key: str, result: Any) -> None:
        alerts.append((key, result.metadata["policy"]))

    with override_settings(RATELIMITER={**DJANGO, "CLOCK": clock, "ON_NEAR_LIMIT": notify,
                                        "NEAR_LIMIT_RATIO": 0.6}):
        client = Client()
        assert [client.get("/ping").status_code for _ in range(7)] == [200] * 5 + [429] * 2
        assert alerts == [("127.0.0.1", "5/minute")]  # the 3rd request (60 %), once
        clock.advance(60)
        assert [client.get("/ping").status_code for _ in range(5)] == [200] * 5
        assert alerts == [("127.0.0.1", "5/minute")] * 2
    for bad, match in (({"USAGE_PATH": "x"}, "usage_path"),
                       ({"ON_NEAR_LIMIT": 3}, "on_near_limit"),
                       ({"NEAR_LIMIT_RATIO": 0}, "near_limit_ratio"),
                       ({"CLOCK": 3}, "CLOCK")):
        with override_settings(RATELIMITER={**DJANGO, **bad}), \
                pytest.raises(ConfigurationError, match=match):
            Client().get("/ping")

"""The examples run: each is started as a subprocess on a free port and driven over HTTP."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Optional

import httpx
import pytest
from http_servers import run_example
from redis_server import RedisServer

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]


def test_flask_example() -> None:
    """What flask_app.py adds to the views test_integration_flask checks (_check_example,
    under werkzeug and under gunicorn on Redis): a view keyed by API key with a cost, and a
    clean exit on SIGTERM."""
    with run_example("flask_app.py") as ex, httpx.Client(base_url=ex.url) as client:
        def export(key: Optional[str]) -> httpx.Response:
            return client.get("/api/export", headers={"X-API-Key": key} if key else {})

        # 10/minute at cost 5: two exports per API key; other keys and no key are apart
        r = export("k1")
        assert (r.status_code, r.json()) == (200, {"export": "started"})
        assert r.headers["X-RateLimit-Remaining"] == "5"
        assert [export("k1").status_code for _ in range(2)] == [200, 429]
        assert [export("k2").status_code for _ in range(3)] == [200, 200, 429]
        assert [export(None).status_code for _ in range(3)] == [200, 200, 429]
        r = export("k1")
        assert r.json() == {"error": "rate limit exceeded"} and r.headers["Retry-After"] == "60"
        assert all(client.get("/health").status_code == 200 for _ in range(10))
        ex.proc.terminate()
        assert ex.proc.wait(timeout=10) == 0  # clean shutdown on SIGTERM


def test_fastapi_example_stops_on_sigterm() -> None:
    """fastapi_app.py's limits are checked by test_integration_fastapi (_check_example, under
    uvicorn and two uvicorn workers on Redis); here, the script's own server."""
    with run_example("fastapi_app.py") as ex, httpx.Client(base_url=ex.url) as client:
        assert [client.get("/ping").status_code for _ in range(6)] == [200] * 5 + [429]
        assert all(client.get("/health").status_code == 200 for _ in range(10))
        ex.proc.terminate()
        # uvicorn shuts down gracefully, then re-raises the signal it caught
        assert ex.proc.wait(timeout=10) in (0, -signal.SIGTERM)


def test_tiered_plans_example() -> None:
    with run_example("tiered_plans.py") as ex, httpx.Client() as client:
        def search(key: Optional[str]) -> int:
            headers = {"X-API-Key": key} if key else {}
            return client.get(ex.url + "/api/search", headers=headers).status_code

        assert client.get(ex.url + "/whoami", headers={"X-API-Key": "pro-key"}).json() == {
            "plan": "pro", "limit": 100, "window": 60.0,
        }
        assert [search("free-key") for _ in range(3)] == [200, 200, 429]  # 10 units
        pro = [search("pro-key") for _ in range(21)]
        assert pro == [200] * 20 + [429]  # 100 units
        assert all(search("ent-key") == 200 for _ in range(30))  # 150 of 1000
        # no key, or an unknown key: the free plan, keyed by address / hashed key
        assert [search(None) for _ in range(3)] == [200, 200, 429]
        assert [search("stolen?") for _ in range(3)] == [200, 200, 429]
        r = client.get(ex.url + "/api/items", headers={"X-API-Key": "free-key"})
        assert r.status_code == 429  # the free key's 10 units are spent
        r = client.post(ex.url + "/api/export", headers={"X-API-Key": "ent-key"})
        assert (r.status_code, r.headers["X-RateLimit-Limit"]) == (200, "1000")
        # 150 + 20 units spent; the bucket refills 1000/60 per second meanwhile
        assert 1000 - 150 - 20 <= int(r.headers["X-RateLimit-Remaining"]) < 1000 - 20


# --------------------------------------------------------------------------- Redis


@pytest.fixture
def redis_url() -> Iterator[str]:
    with RedisServer() as server:
        yield server.url


def test_redis_distributed_example(redis_url: str) -> None:
    args = ["--workers", "4", "--limit", "10", "--redis-url", redis_url]
    with run_example("redis_distributed.py", args) as ex:
        codes: list[int] = []
        workers: set[int] = set()
        for _ in range(40):
            # a new connection per request, so requests spread over the workers
            with httpx.Client() as client:
                r = client.get(ex.url + "/")
            codes.append(r.status_code)
            if r.status_code == 200:
                workers.add(r.json()["worker"])
        assert codes.count(200) == 10
        assert codes[:10] == [200] * 10
        with httpx.Client() as client:
            assert client.get(ex.url + "/health").status_code == 200
    assert workers  # the pids of the worker processes that admitted requests

"""The examples run: each is started as a subprocess on a free port and driven over HTTP."""

from __future__ import annotations

import signal
import socket
from collections.abc import Iterator
from typing import Optional

import httpx
import pytest
from http_servers import run_example
from redis_server import RedisServer

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]


def test_flask_example() -> None:
    with run_example("flask_example.py", ["--limit", "5"]) as ex, httpx.Client() as client:
        codes = []
        for i in range(5):
            r = client.get(ex.url + "/")
            codes.append(r.status_code)
            assert r.json() == {"message": "hello"}
            assert r.headers["X-RateLimit-Limit"] == "5"
            assert r.headers["X-RateLimit-Remaining"] == str(4 - i)
        r = client.get(ex.url + "/")
        assert r.status_code == 429
        assert r.json() == {"error": "rate limit exceeded"}
        assert r.headers["Content-Length"] == "32"
        assert 1 <= int(r.headers["Retry-After"]) <= 60
        assert codes == [200] * 5
        for _ in range(10):
            assert client.get(ex.url + "/health").status_code == 200
        # /api/search costs 5: a fresh API key gets exactly one search
        key = {"X-API-Key": "k1"}
        r = client.get(ex.url + "/api/search", headers=key)
        assert (r.status_code, r.headers["X-RateLimit-Remaining"]) == (200, "0")
        assert client.get(ex.url + "/api/search", headers=key).status_code == 429
        ex.proc.terminate()
        assert ex.proc.wait(timeout=10) == 0  # clean shutdown on SIGTERM


def test_fastapi_example() -> None:
    with run_example("fastapi_example.py", ["--limit", "5"]) as ex, httpx.Client() as client:
        for i in range(5):
            r = client.get(ex.url + "/")
            assert r.status_code == 200
            assert r.headers["x-ratelimit-remaining"] == str(4 - i)
            assert r.headers["ratelimit-policy"] == '"default";q=5;w=60'
        r = client.get(ex.url + "/")
        assert r.status_code == 429
        assert r.json() == {"error": "rate limit exceeded"}
        assert 1 <= int(r.headers["retry-after"]) <= 60
        assert all(client.get(ex.url + "/health").status_code == 200 for _ in range(10))
        key = {"X-API-Key": "k1"}
        assert client.get(ex.url + "/api/search", headers=key).status_code == 200
        assert client.get(ex.url + "/api/search", headers=key).status_code == 429
        assert client.get(ex.url + "/api/items", headers=key).status_code == 429
        assert client.get(ex.url + "/api/items", headers={"X-API-Key": "k2"}).status_code == 200
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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

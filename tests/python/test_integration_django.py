"""Django: RateLimitMiddleware (settings.RATELIMITER) and @ratelimit on function, async and
class-based views, through Django's test client (the example project's settings), and the
example project under gunicorn -w 2 on a real Redis."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

pytest.importorskip("django")

from integration_servers import EXAMPLES, gunicorn  # noqa: E402
from redis_server import RedisServer  # noqa: E402

sys.path.insert(0, str(EXAMPLES / "django_project"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

import django  # noqa: E402

django.setup()

from django.http import HttpRequest, HttpResponse, JsonResponse  # noqa: E402
from django.test import Client, RequestFactory, override_settings  # noqa: E402
from django.utils.decorators import method_decorator  # noqa: E402
from django.views import View  # noqa: E402

from ratelimiter import ConfigurationError  # noqa: E402
from ratelimiter.integrations import _policy  # noqa: E402
from ratelimiter.integrations.django import ratelimit  # noqa: E402

BODY = {"error": "rate limit exceeded"}
BASE = {"BACKEND": "memory://", "DEFAULT_LIMITS": "1000/minute", "KEY": "ip",
        "EXEMPT_PATHS": ["/health"], "ALGORITHM": "sliding_window"}


@pytest.fixture(autouse=True)
def fresh_store() -> Iterator[None]:
    """A new memory store per test (overriding the setting rebuilds the configuration)."""
    with override_settings(RATELIMITER=dict(BASE)):
        yield


def get(client: Client, path: str, n: int, **kwargs: Any) -> list[int]:
    return [client.get(path, **kwargs).status_code for _ in range(n)]


def test_function_view_headers_and_429() -> None:
    client = Client()
    for remaining in (4, 3, 2, 1, 0):
        r = client.get("/ping")
        assert r.status_code == 200
        assert (r["X-RateLimit-Limit"], r["X-RateLimit-Remaining"]) == ("5", str(remaining))
    r = client.get("/ping")
    assert r.status_code == 429 and r.json() == BODY
    assert r["Retry-After"] == "60" and r["Content-Length"] == "32"
    other = Client(REMOTE_ADDR="10.1.2.3")
    assert get(other, "/ping", 1) == [200]


def test_shared_scope_async_and_class_based_views() -> None:
    client = Client()
    assert get(client, "/search", 5) + get(client, "/suggest", 4) == [200] * 8 + [429]
    assert get(client, "/async-ping", 3) == [200, 200, 429]
    assert get(client, "/items", 4) == [200, 200, 200, 429]


def test_deduct_when_login_and_method_filter() -> None:
    client = Client()
    assert [client.post("/login", {"password": "secret"}).status_code
            for _ in range(10)] == [200] * 10
    assert [client.post("/login", {"password": "x"}).status_code
            for _ in range(4)] == [401, 401, 401, 429]
    r = client.post("/login", {"password": "secret"})
    assert r.status_code == 429 and r.json() == BODY
    # method=("POST",): GETs are neither limited nor counted (the view answers 401).
    assert get(client, "/login", 5) == [401] * 5


def test_on_breach_custom_response() -> None:
    client = Client()
    assert get(client, "/report", 2) == [200, 200]
    r = client.get("/report")
    assert r.status_code == 429
    assert r.json() == {"error": "reports are limited", "retry_after": "60"}
    assert r["X-RateLimit-Remaining"] == "0"


def test_middleware_default_limits_exempt_paths_and_ietf() -> None:
    with override_settings(RATELIMITER={**BASE, "DEFAULT_LIMITS": "3/minute",
                                        "HEADERS": "ietf"}):
        client = Client()
        r = client.get("/health")
        assert r.status_code == 200 and "RateLimit" not in r
        r = client.get("/nowhere")  # a 404 is still a request
        assert r.status_code == 404
        assert r["RateLimit-Policy"] == '"3/minute";q=3;w=60'
        assert get(client, "/health", 10) == [200] * 10
        assert get(client, "/ping", 3) == [200, 200, 429]
        r = client.get("/ping")
        assert r.json() == BODY and r["Retry-After"] == "60"


async def test_middleware_async_chain() -> None:
    from django.test import AsyncClient

    with override_settings(RATELIMITER={**BASE, "DEFAULT_LIMITS": "2/minute"}):
        client = AsyncClient()
        codes = [(await client.get("/async-ping")).status_code for _ in range(3)]
        assert codes == [200, 200, 429]


def test_user_key_and_dotted_path_key() -> None:
    factory = RequestFactory()

    @ratelimit("2/minute", key="user")
    def view(request: HttpRequest) -> HttpResponse:
        return HttpResponse("ok")

    def call(pk: Any) -> int:
        request = factory.get("/v")
        request.user = SimpleNamespace(is_authenticated=pk is not None, pk=pk)  # type: ignore
        return int(view(request).status_code)

    assert [call(1) for _ in range(3)] == [200, 200, 429]
    assert [call(2) for _ in range(2)] == [200, 200]
    assert [call(None) for _ in range(3)] == [200, 200, 429]  # anonymous: by IP

    keyed = ratelimit("1/minute", key="ratelimiter.integrations.django.ip_key")(
        lambda request: HttpResponse("ok"))
    assert [keyed(factory.get("/")).status_code for _ in range(2)] == [200, 429]


def test_method_decorator_on_a_method() -> None:
    class V(View):
        @method_decorator(ratelimit("1/minute", method="POST"))
        def post(self, request: HttpRequest) -> HttpResponse:
            return HttpResponse("ok")

    view = V.as_view()
    factory = RequestFactory()
    assert [view(factory.post("/")).status_code for _ in range(2)] == [200, 429]


def test_bad_input(caplog: pytest.LogCaptureFixture) -> None:
    def checkout(request: HttpRequest) -> HttpResponse:
        return HttpResponse("ok")

    with pytest.raises(ConfigurationError, match=r"checkout.*fortnight"):
        ratelimit("5/fortnight")(checkout)
    with pytest.raises(ConfigurationError, match="key"):
        ratelimit("5/minute", key="nonsense")
    with pytest.raises(ConfigurationError, match="DEFAULT_LIMITS"), \
            override_settings(RATELIMITER={"DEFAULT_LIMITS": "lots"}):
        Client().get("/ping")
    with pytest.raises(ConfigurationError, match="unknown option"), \
            override_settings(RATELIMITER={"BACKNED": "memory://"}):
        Client().get("/ping")

    _policy._logged_views.clear()
    broken = ratelimit("5/minute", key=lambda request: None)(checkout)
    factory = RequestFactory()
    with caplog.at_level(logging.ERROR, logger="ratelimiter.integrations"):
        responses = [broken(factory.get("/")) for _ in range(3)]
    assert [r.status_code for r in responses] == [500] * 3
    assert len([r for r in caplog.records if "checkout" in r.getMessage()]) == 1


def test_json_response_type_kept() -> None:
    @ratelimit("1/minute")
    def view(request: HttpRequest) -> HttpResponse:
        return JsonResponse({"a": 1})

    response = view(RequestFactory().get("/"))
    assert isinstance(response, JsonResponse) and response["X-RateLimit-Remaining"] == "0"


# ------------------------------------------------------------------ real servers


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with RedisServer() as server:
        yield server.url


@pytest.mark.slow
@pytest.mark.subprocess
def test_example_project_gunicorn_two_workers_on_redis(redis_url: str) -> None:
    env = {"RATELIMIT_STORAGE_URI": redis_url, "DJANGO_SETTINGS_MODULE": "project.settings"}
    args = ["--chdir", str(EXAMPLES / "django_project")]
    with gunicorn("project.wsgi", env, args=args) as url, \
            httpx.Client(base_url=url, headers={"Connection": "close"}) as client:
        assert [client.get("/ping").status_code for _ in range(6)] == [200] * 5 + [429]
        r = client.get("/ping")
        assert r.json() == BODY and r.headers["Retry-After"] == "60"
        assert [client.get("/search").status_code for _ in range(5)] == [200] * 5
        assert [client.get("/suggest").status_code for _ in range(4)] == [200] * 3 + [429]
        assert [client.post("/login", data={"password": "secret"}).status_code
                for _ in range(5)] == [200] * 5
        assert [client.post("/login", data={"password": "x"}).status_code
                for _ in range(4)] == [401, 401, 401, 429]
        assert [client.get("/report").status_code for _ in range(3)] == [200, 200, 429]
        assert [client.get("/items").status_code for _ in range(4)] == [200] * 3 + [429]
        assert all(client.get("/health").status_code == 200 for _ in range(20))

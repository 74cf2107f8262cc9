"""FlaskRateLimiter: per-view, stacked (atomic), shared, exempt, blueprint, deduct_when,
on_breach, config, bad input; through Flask's test client with a fake clock, and the
example under werkzeug and under gunicorn -w 2 on a real Redis."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import FakeClock
from flask import Blueprint, Flask, jsonify, request
from http_servers import run_example
from integration_servers import gunicorn
from redis_server import RedisServer

from ratelimiter import ConfigurationError, MemoryBackend
from ratelimiter.integrations.flask import FlaskRateLimiter

BODY = {"error": "rate limit exceeded"}


def make(clock: FakeClock, **kwargs: Any) -> tuple[Flask, FlaskRateLimiter]:
    app = Flask(__name__)
    kwargs.setdefault("backend", MemoryBackend())
    limiter = FlaskRateLimiter(app, algorithm="sliding_window", clock=clock, **kwargs)
    return app, limiter


def codes(client: Any, path: str, n: int, **kwargs: Any) -> list[int]:
    return [client.get(path, **kwargs).status_code for _ in range(n)]


def test_per_view_limit_headers_and_429(clock: FakeClock) -> None:
    app, limiter = make(clock)

    @app.get("/a")
    @limiter.limit("3/minute")
    def a() -> Any:
        return "ok"

    client = app.test_client()
    for remaining in (2, 1, 0):
        r = client.get("/a")
        assert r.status_code == 200
        assert (r.headers["X-RateLimit-Limit"], r.headers["X-RateLimit-Remaining"]) == \
            ("3", str(remaining))
    r = client.get("/a")
    assert r.status_code == 429
    assert r.get_json() == BODY
    assert r.headers["Retry-After"] == "60"
    assert r.headers["X-RateLimit-Remaining"] == "0"
    assert r.headers["Content-Length"] == "32"
    clock.advance(60)
    assert client.get("/a").status_code == 200


def test_stacked_limits_are_atomic(clock: FakeClock) -> None:
    """A rejection by the minute limit consumes nothing from the hour limit."""
    app, limiter = make(clock)

    @app.get("/s")
    @limiter.limit("2/minute")
    @limiter.limit("3/hour")
    def s() -> Any:
        return "ok"

    client = app.test_client()
    assert codes(client, "/s", 5) == [200, 200, 429, 429, 429]
    clock.advance(60)
    # The hour limit was charged only twice: exactly one more fits.
    assert codes(client, "/s", 2) == [200, 429]
    r = client.get("/s")
    assert int(r.headers["Retry-After"]) > 60  # the hour limit refuses now


def test_shared_limit_across_views_and_per_client(clock: FakeClock) -> None:
    app, limiter = make(clock)

    @app.get("/search")
    @limiter.shared_limit("3/minute", scope="search")
    def search() -> Any:
        return "s"

    @app.get("/suggest")
    @limiter.shared_limit("3/minute", scope="search")
    def suggest() -> Any:
        return "g"

    client = app.test_client()
    assert codes(client, "/search", 2) == [200, 200]
    assert codes(client, "/suggest", 2) == [200, 429]
    assert client.get("/search").status_code == 429
    other = {"environ_base": {"REMOTE_ADDR": "10.9.9.9"}}
    assert codes(client, "/suggest", 3, **other) == [200, 200, 200]


def test_default_limits_per_view_exempt_and_unlimited_404(clock: FakeClock) -> None:
    app, limiter = make(clock, default_limits="2/minute")

    @app.get("/x")
    def x() -> Any:
        return "x"

    @app.get("/y")
    def y() -> Any:
        return "y"

    @app.get("/health")
    @limiter.exempt
    def health() -> Any:
        return "ok"

    client = app.test_client()
    assert codes(client, "/x", 3) == [200, 200, 429]
    assert codes(client, "/y", 3) == [200, 200, 429]  # its own counter
    r = client.get("/health")
    assert r.status_code == 200 and "X-RateLimit-Limit" not in r.headers
    assert codes(client, "/health", 10) == [200] * 10
    assert codes(client, "/missing", 5) == [404] * 5


def test_blueprints(clock: FakeClock) -> None:
    app, limiter = make(clock, default_limits="100/minute")
    api = Blueprint("api", __name__)
    internal = Blueprint("internal", __name__)

    @api.get("/one")
    def one() -> Any:
        return "1"

    @api.get("/two")
    @limiter.limit("1/minute")
    def two() -> Any:
        return "2"

    @internal.get("/metrics")
    def metrics() -> Any:
        return "m"

    limiter.limit("2/minute")(api)
    limiter.exempt(internal)
    app.register_blueprint(api, url_prefix="/api")
    app.register_blueprint(internal, url_prefix="/internal")
    client = app.test_client()
    assert codes(client, "/api/one", 3) == [200, 200, 429]
    assert codes(client, "/api/two", 2) == [200, 429]  # its own limit wins
    assert codes(client, "/internal/metrics", 150) == [200] * 150


def test_deduct_when_counts_only_failed_logins(clock: FakeClock) -> None:
    app, limiter = make(clock)

    @app.post("/login")
    @limiter.limit("3/minute", deduct_when=lambda response: response.status_code == 401)
    def login() -> Any:
        if request.form.get("password") == "secret":
            return "welcome"
        return "no", 401

    client = app.test_client()
    good, bad = {"password": "secret"}, {"password": "guess"}
    assert [client.post("/login", data=good).status_code for _ in range(10)] == [200] * 10
    r = client.post("/login", data=bad)
    assert (r.status_code, r.headers["X-RateLimit-Remaining"]) == (401, "2")
    assert [client.post("/login", data=bad).status_code for _ in range(2)] == [401, 401]
    # Three failures: now even the right password is refused until the window passes.
    r = client.post("/login", data=good)
    assert r.status_code == 429 and r.get_json() == BODY
    clock.advance(60)
    assert client.post("/login", data=good).status_code == 200


def test_on_breach_custom_response_keeps_headers(clock: FakeClock) -> None:
    app, limiter = make(clock)
    seen: list[Any] = []

    def breach(req: Any, result: Any) -> Any:
        seen.append((req.path, result.allowed))
        return jsonify(error="slow down"), 429

    @app.get("/r")
    @limiter.limit("1/minute", on_breach=breach)
    def r() -> Any:
        return "ok"

    client = app.test_client()
    assert client.get("/r").status_code == 200
    resp = client.get("/r")
    assert (resp.status_code, resp.get_json()) == (429, {"error": "slow down"})
    assert resp.headers["Retry-After"] == "60"
    assert seen == [("/r", False)]


def test_exempt_when_cost_and_key_func(clock: FakeClock) -> None:
    app, limiter = make(clock, key_func=lambda req: req.headers.get("X-User", "anon"))

    @app.get("/c")
    @limiter.limit("10/minute", cost=4,
                   exempt_when=lambda req: req.headers.get("X-Admin") == "1")
    def c() -> Any:
        return "ok"

    client = app.test_client()
    assert codes(client, "/c", 3, headers={"X-User": "u1"}) == [200, 200, 429]
    assert codes(client, "/c", 2, headers={"X-User": "u2"}) == [200, 200]
    assert codes(client, "/c", 5, headers={"X-User": "u1", "X-Admin": "1"}) == [200] * 5


def test_app_config_storage_uri_default_and_ietf(tmp_path: Path, clock: FakeClock) -> None:
    app = Flask(__name__)
    app.config.update(RATELIMIT_STORAGE_URI=f"sqlite:///{tmp_path / 'rl.db'}",
                      RATELIMIT_DEFAULT="2/minute", RATELIMIT_HEADERS="ietf")
    limiter = FlaskRateLimiter(clock=clock, algorithm="fixed_window")
    limiter.init_app(app)

    @app.get("/")
    def index() -> Any:
        return "ok"

    client = app.test_client()
    r = client.get("/")
    assert r.headers["RateLimit-Policy"] == '"2/minute";q=2;w=60'
    assert "X-RateLimit-Limit" not in r.headers
    assert codes(client, "/", 2) == [200, 429]
    assert (tmp_path / "rl.db").exists()
    # A second app on the same file shares the counts (as a second worker would).
    app2 = Flask(__name__)
    app2.config.update(app.config)
    FlaskRateLimiter(app2, clock=clock, algorithm="fixed_window")
    app2.add_url_rule("/", "index", index)
    assert app2.test_client().get("/").status_code == 429


def test_disabled_by_config(clock: FakeClock) -> None:
    app = Flask(__name__)
    app.config["RATELIMIT_ENABLED"] = False
    FlaskRateLimiter(app, default_limits="1/minute", clock=clock)
    app.add_url_rule("/", "i", lambda: "ok")
    assert codes(app.test_client(), "/", 3) == [200] * 3


def test_bad_limit_string_names_the_view(clock: FakeClock) -> None:
    _, limiter = make(clock)

    def checkout() -> Any:
        return "ok"

    with pytest.raises(ConfigurationError, match=r"checkout.*fortnight"):
        limiter.limit("5/fortnight")(checkout)
    with pytest.raises(ConfigurationError, match="default_limits"):
        FlaskRateLimiter(default_limits="lots")
    with pytest.raises(ConfigurationError, match="scope"):
        limiter.shared_limit("1/second", scope="")
    with pytest.raises(ValueError, match="headers"):
        FlaskRateLimiter(headers="fancy")  # type: ignore[arg-type]


@pytest.mark.parametrize("key_func", [lambda req: 1 / 0, lambda req: None, lambda req: 42])
def test_broken_key_func_is_a_logged_500_once(
    clock: FakeClock, caplog: pytest.LogCaptureFixture, key_func: Any
) -> None:
    from ratelimiter.integrations import _policy

    _policy._logged_views.clear()
    app, limiter = make(clock, key_func=key_func)

    @app.get("/k")
    @limiter.limit("5/minute")
    def k() -> Any:
        return "ok"

    client = app.test_client()
    with caplog.at_level(logging.ERROR, logger="ratelimiter.integrations"):
        responses = [client.get("/k") for _ in range(3)]
    assert [r.status_code for r in responses] == [500] * 3
    assert responses[0].get_json() == {"error": "rate limit key could not be computed"}
    logged = [rec for rec in caplog.records if "endpoint 'k'" in rec.getMessage()]
    assert len(logged) == 1


# ------------------------------------------------------------------ real servers


@pytest.mark.slow
@pytest.mark.subprocess
def test_example_under_werkzeug() -> None:
    with run_example("flask_app.py") as ex, httpx.Client(base_url=ex.url) as client:
        _check_example(client)


def _check_example(client: httpx.Client) -> None:
    assert [client.get("/ping").status_code for _ in range(6)] == [200] * 5 + [429]
    r = client.get("/ping")
    assert r.json() == BODY and r.headers["Retry-After"] == "60"
    # search and suggest share 8/minute
    assert [client.get("/search").status_code for _ in range(5)] == [200] * 5
    assert [client.get("/suggest").status_code for _ in range(4)] == [200] * 3 + [429]
    assert all(client.get("/health").status_code == 200 for _ in range(30))
    # deduct_when: successes never count, the third failure is the last one allowed
    assert [client.post("/login", data={"password": "secret"}).status_code
            for _ in range(5)] == [200] * 5
    assert [client.post("/login", data={"password": "x"}).status_code
            for _ in range(4)] == [401, 401, 401, 429]
    # on_breach
    assert [client.get("/report").status_code for _ in range(2)] == [200, 200]
    r = client.get("/report")
    assert r.status_code == 429 and r.json() == {"error": "reports are limited",
                                                 "retry_after": "60"}
    # the default limit, per view
    assert [client.get("/").status_code for _ in range(21)] == [200] * 20 + [429]


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with RedisServer() as server:
        yield server.url


@pytest.mark.slow
@pytest.mark.subprocess
def test_example_gunicorn_two_workers_on_redis(redis_url: str) -> None:
    env = {"RATELIMIT_STORAGE_URI": redis_url}
    with gunicorn("flask_app:create_app()", env) as url, \
            httpx.Client(base_url=url, headers={"Connection": "close"}) as client:
        _check_example(client)


def test_memory_store_in_forked_worker_warns_once(
    clock: FakeClock, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ratelimiter.integrations import _policy

    monkeypatch.setattr(_policy, "_forked", True)  # as os.register_at_fork sets it in a child
    monkeypatch.setattr(_policy, "_warned", False)
    monkeypatch.setattr(_policy, "_checked", False)
    app, limiter = make(clock, default_limits="100/minute")
    app.add_url_rule("/", "i", lambda: "ok")
    with caplog.at_level(logging.WARNING, logger="ratelimiter.integrations"):
        codes(app.test_client(), "/", 3)
    warnings = [r for r in caplog.records if "N times the limit" in r.getMessage()]
    assert len(warnings) == 1

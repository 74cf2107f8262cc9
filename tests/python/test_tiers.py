"""TieredLimits: plan -> limiter, endpoint -> cost, and its middleware hooks (WSGI, real server)."""

from __future__ import annotations

from typing import Any, Optional

import httpx
import pytest
from conftest import FakeClock
from flask import Flask
from http_servers import serve_wsgi

from ratelimiter import FixedWindowRateLimiter, MemoryBackend, SlidingWindowRateLimiter
from ratelimiter.middleware import RateLimitMiddleware
from ratelimiter.tiers import TieredLimits

KEYS = {"f": "free", "p": "pro", "e": "enterprise", "weird": "platinum"}


def make_tiers(**kwargs: Any) -> TieredLimits:
    return TieredLimits.build(
        MemoryBackend(),
        {"free": (10, 60), "pro": (100, 60), "enterprise": (1000, 60)},
        default_plan="free",
        algorithm=SlidingWindowRateLimiter,
        costs={"/api/search": 5, "/api/export/*": 20, "POST /api/items": 2},
        plan_for_key=KEYS.get,
        clock=FakeClock(),
        **kwargs,
    )


def test_plan_resolution() -> None:
    tiers = make_tiers()
    assert tiers.plan_of("p") == "pro"
    assert tiers.plan_of(" e ") == "enterprise"
    assert tiers.plan_of(None) == "free"
    assert tiers.plan_of("") == "free"
    assert tiers.plan_of("unknown-key") == "free"
    assert tiers.plan_of("weird") == "free"  # a plan that does not exist
    assert tiers.limiter("pro").limit == 100
    assert tiers.limiter(None) is tiers.default_limiter
    assert tiers.limiter("nope") is tiers.default_limiter


def test_costs_by_route_pattern() -> None:
    tiers = make_tiers()
    assert tiers.cost("/api/search") == 5
    assert tiers.cost("/api/search/more") == 1  # exact pattern only
    assert tiers.cost("/api/export/csv") == 20
    assert tiers.cost("/api/items", "POST") == 2
    assert tiers.cost("/api/items", "get") == 1
    assert tiers.cost("/") == 1
    assert make_tiers(default_cost=3).cost("/") == 3


def test_is_allowed_direct_and_plans_do_not_share_state() -> None:
    tiers = make_tiers()
    assert [tiers.is_allowed("acct", plan="free", path="/api/search").allowed
            for _ in range(3)] == [True, True, False]
    r = tiers.is_allowed("acct", plan="pro", path="/api/search")
    assert (r.allowed, r.limit, r.remaining) == (True, 100, 95)


def test_build_prefixes_each_plan() -> None:
    tiers = make_tiers()
    plans: dict[str, Any] = dict(tiers.plans)
    prefixes = {name: limiter.key_prefix for name, limiter in plans.items()}
    assert prefixes == {"free": "free:", "pro": "pro:", "enterprise": "enterprise:"}


@pytest.mark.parametrize(
    "kwargs",
    [{"default_plan": "gold"}, {"costs": {"/x": 0}}, {"default_cost": True},
     {"costs": {"x": 1}}],
)
def test_validation(kwargs: dict[str, Any]) -> None:
    limiter = FixedWindowRateLimiter(MemoryBackend(), 1, 1)
    base: dict[str, Any] = {"default_plan": "free"}
    base.update(kwargs)
    with pytest.raises(ValueError):
        TieredLimits({"free": limiter}, **base)
    with pytest.raises(ValueError):
        TieredLimits({}, default_plan="free")


def test_wsgi_hooks_over_http() -> None:
    tiers = make_tiers()
    app = Flask(__name__)

    @app.route("/api/search")
    def search() -> str:
        return "results"

    @app.route("/api/items", methods=["GET", "POST"])
    def items() -> str:
        return "items"

    wsgi = RateLimitMiddleware(
        app, tiers.default_limiter, key_func=tiers.wsgi_key_func,
        route_limiters=tiers.wsgi_limiter, cost=tiers.wsgi_cost,
    )
    with serve_wsgi(wsgi) as url, httpx.Client() as client:
        def get(path: str, key: Optional[str] = None, method: str = "GET") -> httpx.Response:
            headers = {"X-API-Key": key} if key else {}
            return client.request(method, url + path, headers=headers)

        assert [get("/api/search", "f").status_code for _ in range(3)] == [200, 200, 429]
        r = get("/api/search", "p")
        assert (r.status_code, r.headers["X-RateLimit-Limit"]) == (200, "100")
        assert r.headers["X-RateLimit-Remaining"] == "95"
        r = get("/api/items", "p", method="POST")
        assert r.headers["X-RateLimit-Remaining"] == "93"
        # no API key: free plan keyed by the peer address, separate from key "f"
        assert [get("/api/items").status_code for _ in range(11)] == [200] * 10 + [429]

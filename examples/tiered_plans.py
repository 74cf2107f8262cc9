"""Tiered plans: free / pro / enterprise limits and per-endpoint costs, on FastAPI.

Run it::

    python examples/tiered_plans.py --port 8000

then try (``/api/search`` costs 5 units, everything else 1)::

    curl -i -H 'X-API-Key: free-key' http://127.0.0.1:8000/api/search   # 10 units / min
    curl -i -H 'X-API-Key: pro-key' http://127.0.0.1:8000/api/search    # 100 units / min
    curl -i -H 'X-API-Key: ent-key' http://127.0.0.1:8000/api/search    # 1000 units / min
    curl -i http://127.0.0.1:8000/api/items        # no key: the free plan, keyed by address
    curl -i -H 'X-API-Key: pro-key' http://127.0.0.1:8000/whoami

Keys are hashed before they become storage keys. A request without a key is on the free
plan, keyed by its address; an unknown key is on the free plan under its own (hashed) key.
Serving: see ``_serve.py``.
"""

from __future__ import annotations

from typing import Optional

from _serve import serve_asgi
from fastapi import FastAPI, Request

from ratelimiter import MemoryBackend
from ratelimiter.middleware import AsyncRateLimitMiddleware
from ratelimiter.tiers import TieredLimits

# In a real service this is your accounts database.
API_KEYS: dict[str, str] = {"free-key": "free", "pro-key": "pro", "ent-key": "enterprise"}

PLANS: dict[str, tuple[int, float]] = {
    "free": (10, 60.0),
    "pro": (100, 60.0),
    "enterprise": (1000, 60.0),
}

COSTS: dict[str, int] = {"/api/search": 5, "POST /api/export": 20}


def create_tiers() -> TieredLimits:
    """One token bucket per plan on a shared backend; costs per endpoint."""
    return TieredLimits.build(
        MemoryBackend(),
        PLANS,
        default_plan="free",
        costs=COSTS,
        plan_for_key=API_KEYS.get,
        header="X-API-Key",
    )


def create_app() -> FastAPI:
    tiers = create_tiers()
    app = FastAPI(title="smart-ratelimiter tiered plans example")

    @app.get("/whoami")
    async def whoami(request: Request) -> dict[str, object]:
        plan = tiers.plan_of(request.headers.get("X-API-Key"))
        limiter = tiers.limiter(plan)
        return {"plan": plan, "limit": limiter.limit, "window": limiter.window}

    @app.get("/api/search")
    async def search() -> dict[str, list[str]]:
        return {"results": ["a", "b"]}

    @app.get("/api/items")
    async def items() -> dict[str, list[int]]:
        return {"items": [1, 2, 3]}

    @app.post("/api/export")
    async def export() -> dict[str, str]:
        return {"export": "started"}

    app.add_middleware(
        AsyncRateLimitMiddleware,
        limiter=tiers.default_limiter,
        key_func=tiers.asgi_key_func,  # hashed API key, or the peer address
        route_limiters=tiers.asgi_limiter,  # the caller's plan
        cost=tiers.asgi_cost,  # the endpoint's cost
        exempt_paths=["/whoami"],
    )
    return app


def main(argv: Optional[list[str]] = None) -> None:
    serve_asgi(create_app, __doc__, argv)


if __name__ == "__main__":
    main()

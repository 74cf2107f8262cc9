"""Per-route rate limits in FastAPI with the ``RateLimit`` dependency.

Run it::

    python examples/fastapi_app.py --port 8000
    RATELIMIT_STORAGE_URI=redis://127.0.0.1:6379/0 uvicorn --workers 2 \\
        --factory --app-dir examples fastapi_app:create_app     # shared by the workers

then try::

    curl -i http://127.0.0.1:8000/ping              # 5/minute for this route
    curl -i http://127.0.0.1:8000/api/search        # /api/* share 8/minute (router scope)
    curl -i http://127.0.0.1:8000/docs              # never limited

Clients are keyed by their address; limits are counted by an exact sliding log.
``RATELIMIT_STORAGE_URI`` chooses the store: ``memory://`` (default, one per process) or
``redis://...``, used through the async Redis client so the event loop never blocks.
Limits keyed by API key, per-endpoint costs and plans: tiered_plans.py. Serving: see
``_serve.py``.
"""

from __future__ import annotations

import os
from typing import Any, Optional

from _serve import serve_asgi
from fastapi import APIRouter, Depends, FastAPI

from ratelimiter import AsyncRedisBackend, BaseBackend
from ratelimiter.integrations.fastapi import (
    RateLimit,
    RateLimitHTTPException,
    rate_limit_exception_handler,
)
from ratelimiter.middleware import AsyncRateLimitMiddleware
from ratelimiter.multi import MultiRateLimiter
from ratelimiter.storage_uri import backend_from_uri


def _backend() -> Any:
    uri = os.environ.get("RATELIMIT_STORAGE_URI", "memory://")
    if uri.startswith(("redis://", "rediss://")):
        import redis.asyncio

        return AsyncRedisBackend(redis.asyncio.Redis.from_url(uri))
    return backend_from_uri(uri)


def create_app(backend: Optional[BaseBackend] = None) -> FastAPI:
    """The app. All limits share ``backend`` (default from ``RATELIMIT_STORAGE_URI``)."""
    store = backend if backend is not None else _backend()

    def limit(text: str, **kwargs: Any) -> Any:
        return Depends(RateLimit(text, backend=store, algorithm="sliding_window", **kwargs))

    app = FastAPI(title="rate-limited example")
    # The shared 429 body, {"error": "rate limit exceeded"}; replace to customise it.
    app.add_exception_handler(RateLimitHTTPException, rate_limit_exception_handler)
    # An app-wide ceiling per client; /docs, /redoc and /openapi.json are exempt by default.
    app.add_middleware(AsyncRateLimitMiddleware, limiter=MultiRateLimiter(
        store, "100/minute", "sliding_window", key_prefix="site:"),
        exempt_paths=["/health"])

    @app.get("/ping", dependencies=[limit("5/minute")])
    async def ping() -> dict[str, bool]:
        return {"pong": True}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    router = APIRouter(prefix="/api", dependencies=[limit("8/minute", scope="api")])

    @router.get("/search")
    async def search() -> dict[str, list[str]]:
        return {"results": []}

    @router.get("/items")
    async def items() -> dict[str, list[int]]:
        return {"items": [1, 2, 3]}

    app.include_router(router)
    return app


def main(argv: Optional[list[str]] = None) -> None:
    serve_asgi(create_app, __doc__, argv)


if __name__ == "__main__":
    main()

"""FastAPI behind AsyncRateLimitMiddleware, served by uvicorn.

Run it::

    python examples/fastapi_example.py --port 8000 --limit 10

then try::

    curl -i http://127.0.0.1:8000/                          # X-RateLimit-* and RateLimit
    curl -i -H 'X-API-Key: k1' http://127.0.0.1:8000/api/search    # costs 5
    curl -i http://127.0.0.1:8000/health                    # never limited

The memory-backed limiter is called directly on the event loop (microseconds); with a
SQLite or Redis backend the middleware keeps the loop free (see ``AsyncRateLimiter``).
``--port 0`` picks a free port; the first line printed is ``listening on <url>``. Stop with
Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import socket
from typing import Optional

import uvicorn
from fastapi import FastAPI

from ratelimiter import MemoryBackend, SlidingWindowRateLimiter
from ratelimiter.key_funcs import asgi_api_key_func, asgi_ip_func
from ratelimiter.middleware import AsyncRateLimitMiddleware


def create_app(limit: int = 10, window: float = 60.0) -> FastAPI:
    """The FastAPI app with the middleware: ``limit`` units per ``window`` seconds."""
    app = FastAPI(title="smart-ratelimiter FastAPI example")

    @app.get("/")
    async def index() -> dict[str, str]:
        return {"message": "hello"}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/search")
    async def search() -> dict[str, list[str]]:
        return {"results": ["a", "b"]}

    @app.get("/api/items")
    async def items() -> dict[str, list[int]]:
        return {"items": [1, 2, 3]}

    limiter = SlidingWindowRateLimiter(MemoryBackend(), limit=limit, window=window)
    app.add_middleware(
        AsyncRateLimitMiddleware,
        limiter=limiter,
        key_func=asgi_api_key_func("X-API-Key", fallback=asgi_ip_func(False)),
        cost={"/api/search": 5},
        exempt_paths=["/health"],
        header_style="both",
    )
    return app


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument("--window", type=float, default=60.0)
    args = parser.parse_args(argv)

    # Bind first, so the printed URL is accurate (port 0) and accepting when printed.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(1024)
    # proxy_headers=False: this server faces clients directly; never trust X-Forwarded-For.
    config = uvicorn.Config(create_app(args.limit, args.window), log_level="warning",
                            proxy_headers=False)
    print(f"listening on http://{args.host}:{sock.getsockname()[1]}", flush=True)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()

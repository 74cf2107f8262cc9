"""Flask behind RateLimitMiddleware.

Run it::

    python examples/flask_example.py --port 8000 --limit 10

then try::

    curl -i http://127.0.0.1:8000/                         # X-RateLimit-* headers
    curl -i -H 'X-API-Key: k1' http://127.0.0.1:8000/api/search   # costs 5
    curl -i http://127.0.0.1:8000/health                   # never limited

Clients are keyed by their (hashed) ``X-API-Key``, or by their address without one. This
server faces clients directly, so ``X-Forwarded-For`` is ignored; behind your own proxy
use ``wsgi_ip_func(trusted_proxies=["10.0.0.0/8"])`` instead. ``--port 0`` picks a free
port; the first line printed is ``listening on <url>``. Stop with Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
from types import FrameType
from typing import Optional

from flask import Flask, jsonify
from flask.typing import ResponseReturnValue
from werkzeug.serving import make_server

from ratelimiter import MemoryBackend, SlidingWindowRateLimiter
from ratelimiter.key_funcs import wsgi_api_key_func, wsgi_ip_func
from ratelimiter.middleware import RateLimitMiddleware


def create_flask_app() -> Flask:
    """The application, unaware of rate limiting."""
    app = Flask(__name__)

    @app.route("/")
    def index() -> ResponseReturnValue:
        return jsonify(message="hello")

    @app.route("/health")
    def health() -> ResponseReturnValue:
        return jsonify(status="ok")

    @app.route("/api/search")
    def search() -> ResponseReturnValue:
        return jsonify(results=["a", "b"])

    @app.route("/api/items", methods=["GET", "POST"])
    def items() -> ResponseReturnValue:
        return jsonify(items=[1, 2, 3])

    return app


def create_app(limit: int = 10, window: float = 60.0) -> RateLimitMiddleware:
    """The application wrapped in the middleware: ``limit`` units per ``window`` seconds."""
    limiter = SlidingWindowRateLimiter(MemoryBackend(), limit=limit, window=window)
    return RateLimitMiddleware(
        create_flask_app(),
        limiter,
        key_func=wsgi_api_key_func("X-API-Key", fallback=wsgi_ip_func(False)),
        cost={"/api/search": 5},
        exempt_paths=["/health"],
        header_style="x-ratelimit",
    )


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument("--window", type=float, default=60.0)
    args = parser.parse_args(argv)

    server = make_server(args.host, args.port, create_app(args.limit, args.window),
                         threaded=True)

    def stop(signum: int, frame: Optional[FrameType]) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    print(f"listening on http://{args.host}:{server.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()

"""One limit shared by several worker processes through Redis (gunicorn + Flask).

Every gunicorn worker is a separate process with its own limiter object, yet together
they admit exactly ``--limit`` requests per window per client, because each decision is
one atomic Lua script inside Redis (using Redis' clock, so skewed app servers agree).

Run it (needs a Redis server)::

    python examples/redis_distributed.py --port 8000 --workers 4 --redis-url redis://localhost:6379/0

then::

    for i in $(seq 12); do curl -s http://127.0.0.1:8000/; echo; done

``--port 0`` picks a free port; the first line printed is ``listening on <url>``. Stop with
Ctrl-C or SIGTERM (gunicorn shuts its workers down gracefully).
"""

from __future__ import annotations

import argparse
import os
import socket
from typing import Any, Optional

from flask import Flask, jsonify
from flask.typing import ResponseReturnValue
from gunicorn.app.base import BaseApplication  # type: ignore[import-untyped]

from ratelimiter.algorithms.sliding_window import SlidingWindowRateLimiter
from ratelimiter.backends.redis_backend import RedisBackend
from ratelimiter.key_funcs import wsgi_ip_func
from ratelimiter.middleware import RateLimitMiddleware


def create_app(redis_url: str, limit: int, window: float, prefix: str) -> RateLimitMiddleware:
    """The Flask app behind a Redis-backed limiter (one connection per worker process)."""
    app = Flask(__name__)

    @app.route("/")
    def index() -> ResponseReturnValue:
        return jsonify(worker=os.getpid())

    @app.route("/health")
    def health() -> ResponseReturnValue:
        return jsonify(status="ok")

    backend = RedisBackend(url=redis_url, key_prefix=prefix)
    limiter = SlidingWindowRateLimiter(backend, limit=limit, window=window)
    return RateLimitMiddleware(
        app, limiter, key_func=wsgi_ip_func(trust_x_forwarded_for=False),
        exempt_paths=["/health"],
    )


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    """gunicorn, configured in code, serving an already-bound socket."""

    def __init__(self, sock: socket.socket, workers: int, args: argparse.Namespace) -> None:
        self._sock = sock
        self._workers = workers
        self._args = args
        super().__init__()

    def load_config(self) -> None:
        self.cfg.set("bind", [f"fd://{self._sock.fileno()}"])
        self.cfg.set("workers", self._workers)
        self.cfg.set("loglevel", "warning")
        self.cfg.set("graceful_timeout", 5)

    def load(self) -> Any:
        # Called in each worker after fork: every process gets its own Redis connection.
        a = self._args
        return create_app(a.redis_url, a.limit, a.window, a.key_prefix)


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--key-prefix", default="rl:example:")
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    args = parser.parse_args(argv)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(1024)
    sock.set_inheritable(True)
    print(f"listening on http://{args.host}:{sock.getsockname()[1]}", flush=True)
    _Gunicorn(sock, args.workers, args).run()


if __name__ == "__main__":
    main()

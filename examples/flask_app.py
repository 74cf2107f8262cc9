"""Per-view rate limits in Flask with ``FlaskRateLimiter``.

Run it::

    python examples/flask_app.py --port 8000
    RATELIMIT_STORAGE_URI=redis://127.0.0.1:6379/0 \\
        gunicorn -w 2 --pythonpath examples 'flask_app:create_app()'   # shared by workers

then try::

    curl -i http://127.0.0.1:8000/ping                     # 5/minute for this view
    curl -i http://127.0.0.1:8000/search?q=a               # search and suggest share 8/minute
    curl -i -X POST -d password=wrong http://127.0.0.1:8000/login   # only failures count
    curl -i -H 'X-API-Key: k1' http://127.0.0.1:8000/api/export     # per API key, costs 5
    curl -i http://127.0.0.1:8000/health                   # never limited

Every other view gets the default ``20/minute``. Limits are counted by an exact sliding log
(``algorithm="sliding_window"``), per client address, or per (hashed) ``X-API-Key`` where a
view says so. ``RATELIMIT_STORAGE_URI`` chooses the store (default ``memory://``, which
each worker process keeps on its own). To limit a whole WSGI app without the extension, wrap
it in ``RateLimitMiddleware`` (see redis_distributed.py). Serving: see ``_serve.py``.
"""

from __future__ import annotations

import os
from typing import Any, Optional

from _serve import serve_wsgi
from flask import Flask, Request, jsonify, request
from flask.typing import ResponseReturnValue

from ratelimiter.integrations.flask import FlaskRateLimiter
from ratelimiter.key_funcs import wsgi_api_key_func, wsgi_ip_func

limiter = FlaskRateLimiter(default_limits="20/minute", algorithm="sliding_window")


def _too_fast(req: Any, result: Any) -> ResponseReturnValue:
    """A custom 429 for /report (on_breach): the wait in the body as well."""
    return jsonify(error="reports are limited", retry_after=result.headers["Retry-After"]), 429


@limiter.limit("5/minute")
def ping() -> ResponseReturnValue:
    return jsonify(pong=True)


@limiter.shared_limit("8/minute", scope="search")
def search() -> ResponseReturnValue:
    return jsonify(results=[request.args.get("q", "")])


@limiter.shared_limit("8/minute", scope="search")
def suggest() -> ResponseReturnValue:
    return jsonify(suggestions=[])


@limiter.limit("3/minute", deduct_when=lambda response: response.status_code == 401)
def login() -> ResponseReturnValue:
    if request.form.get("password") == "secret":
        return jsonify(ok=True)
    return jsonify(error="wrong password"), 401


@limiter.limit("2/minute", on_breach=_too_fast)
def report() -> ResponseReturnValue:
    return jsonify(report="ok")


# The client's API key, hashed before it becomes a storage key; without one, its address.
# This server faces clients directly, so X-Forwarded-For is ignored (behind your own proxy:
# wsgi_ip_func(trusted_proxies=["10.0.0.0/8"])).
_by_api_key = wsgi_api_key_func("X-API-Key", fallback=wsgi_ip_func(False))


def api_key(req: Request) -> str:
    return _by_api_key(req.environ)


@limiter.limit("10/minute", key_func=api_key, cost=5)
def export() -> ResponseReturnValue:
    return jsonify(export="started")


@limiter.exempt
def health() -> ResponseReturnValue:
    return jsonify(status="ok")


def index() -> ResponseReturnValue:
    return jsonify(message="hello")


def create_app() -> Flask:
    """The app; its store comes from ``RATELIMIT_STORAGE_URI`` (default memory)."""
    app = Flask(__name__)
    app.config["RATELIMIT_STORAGE_URI"] = os.environ.get("RATELIMIT_STORAGE_URI", "memory://")
    app.add_url_rule("/", view_func=index)
    app.add_url_rule("/ping", view_func=ping)
    app.add_url_rule("/search", view_func=search)
    app.add_url_rule("/suggest", view_func=suggest)
    app.add_url_rule("/login", view_func=login, methods=["POST"])
    app.add_url_rule("/report", view_func=report)
    app.add_url_rule("/api/export", view_func=export)
    app.add_url_rule("/health", view_func=health)
    limiter.init_app(app)
    return app


def main(argv: Optional[list[str]] = None) -> None:
    serve_wsgi(create_app, __doc__, argv)


if __name__ == "__main__":
    main()

"""Per-view rate limits in Flask with ``FlaskRateLimiter``.

Run it::

    python examples/flask_app.py --port 8000
    RATELIMIT_STORAGE_URI=redis://127.0.0.1:6379/0 \\
        gunicorn -w 2 --pythonpath examples 'flask_app:create_app()'   # shared by workers

then try::

    curl -i http://127.0.0.1:8000/ping                     # 5/minute for this view
    curl -i http://127.0.0.1:8000/search?q=a               # search and suggest share 8/minute
    curl -i -X POST -d password=wrong http://127.0.0.1:8000/login   # only failures count
    curl -i http://127.0.0.1:8000/health                   # never limited

Every other view gets the default ``20/minute``. Limits are counted by an exact sliding log
(``algorithm="sliding_window"``), per client address. ``RATELIMIT_STORAGE_URI`` chooses the
store (default ``memory://``, which each worker process keeps on its own). ``--port 0``
picks a free port; the first line printed is ``listening on <url>``.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
from types import FrameType
from typing import Any, Optional

from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.serving import make_server

from ratelimiter.integrations.flask import FlaskRateLimiter

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
    app.add_url_rule("/health", view_func=health)
    limiter.init_app(app)
    return app


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    args = parser.parse_args(argv)

    server = make_server(args.host, args.port, create_app(), threaded=True)

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

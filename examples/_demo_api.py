"""A local stand-in for a third-party API, used by the client examples when no --url is
given: our own WSGI middleware enforcing ``rate`` requests/second per client (token bucket)
in front of a tiny app that counts what it serves. Runs in a thread on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from socketserver import ThreadingMixIn
from typing import Any, Callable
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from ratelimiter import MemoryBackend, TokenBucketRateLimiter
from ratelimiter.middleware import RateLimitMiddleware


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib's name)
        pass


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class DemoAPI:
    """Counts served requests, the statuses answered and the most requests in flight."""

    def __init__(self, hold: float = 0.0) -> None:
        self.lock = threading.Lock()
        self.statuses: dict[int, int] = {}
        self.in_flight = 0
        self.peak_in_flight = 0
        self.hold = hold

    def app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with self.lock:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        time.sleep(self.hold)
        with self.lock:
            self.in_flight -= 1
        body = json.dumps({"usage": {"total_tokens": 700}}).encode()
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(body)))])
        return [body]

    def counting(self, app: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            def counted(status: str, headers: Any, *args: Any) -> Any:
                with self.lock:
                    code = int(status.split()[0])
                    self.statuses[code] = self.statuses.get(code, 0) + 1
                return start_response(status, headers, *args)

            return app(environ, counted)

        return wrapper


@contextmanager
def serve_demo_api(rate: int, hold: float = 0.0) -> Iterator[tuple[str, DemoAPI]]:
    """Serve the demo API (``rate`` requests/second per client); yield (base URL, counts)."""
    api = DemoAPI(hold)
    limited = RateLimitMiddleware(api.app, TokenBucketRateLimiter(MemoryBackend(), rate, 1.0))
    server = make_server("127.0.0.1", 0, api.counting(limited), server_class=_ThreadingServer,
                         handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", api
    finally:
        server.shutdown()
        server.server_close()

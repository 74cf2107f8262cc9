"""Tiny real servers' apps for the client tests: they answer from a script and count what
they see (arrival times, methods, requests in flight)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterable
from typing import Any, Callable

Reply = tuple[int, dict[str, str]]


class ScriptedApp:
    """WSGI app: answers the scripted replies in order, then 200 ``ok``; records arrivals.

    A reply's header value may be a callable (called at answer time, e.g. an HTTP date).
    """

    def __init__(self, replies: Iterable[Reply] = (), *, repeat_last: bool = False) -> None:
        self.replies = list(replies)
        self.repeat_last = repeat_last
        self.lock = threading.Lock()
        self.arrivals: list[float] = []
        self.methods: list[str] = []
        self.statuses: list[int] = []

    def next_reply(self) -> Reply:
        if not self.replies:
            return 200, {}
        if self.repeat_last and len(self.replies) == 1:
            return self.replies[0]
        return self.replies.pop(0)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        with self.lock:
            self.arrivals.append(time.monotonic())
            self.methods.append(environ["REQUEST_METHOD"])
            status, headers = self.next_reply()
            self.statuses.append(status)
        body = b"ok" if status == 200 else b'{"error": "slow down"}'
        values = [(k, v() if callable(v) else v) for k, v in headers.items()]
        start_response(f"{status} X", [("Content-Length", str(len(body))), *values])
        return [body]


class CountingApp:
    """WSGI app counting 200s, arrival times (monotonic) and the most requests in flight."""

    def __init__(self, hold: float = 0.0) -> None:
        self.lock = threading.Lock()
        self.arrivals: list[float] = []
        self.in_flight = 0
        self.peak = 0
        self.hold = hold

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        with self.lock:
            self.arrivals.append(time.monotonic())
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        try:
            if self.hold:
                time.sleep(self.hold)
        finally:
            with self.lock:
                self.in_flight -= 1
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]


class CountingASGIApp:
    """ASGI app that holds each request ``hold`` seconds and counts requests in flight."""

    def __init__(self, hold: float = 0.02) -> None:
        self.hold = hold
        self.in_flight = 0
        self.peak = 0
        self.total = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        self.in_flight += 1
        self.total += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(self.hold)
        finally:
            self.in_flight -= 1
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})


def max_in_span(times: list[float], span: float, tolerance: float = 0.0) -> int:
    """The most arrivals in any half-open interval of ``span - tolerance`` seconds."""
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= span - tolerance:
            start += 1
        best = max(best, end - start + 1)
    return best


def spacing(times: list[float]) -> list[float]:
    return [b - a for a, b in zip(times, times[1:])]


__all__ = ["CountingASGIApp", "CountingApp", "ScriptedApp", "StatusCounter", "max_in_span",
           "spacing"]


class StatusCounter:
    """WSGI wrapper counting the statuses the wrapped app (e.g. our middleware) answers."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.statuses: dict[int, int] = {}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        def counting_start_response(status: str, headers: Any, *args: Any) -> Any:
            with self.lock:
                code = int(status.split()[0])
                self.statuses[code] = self.statuses.get(code, 0) + 1
            return start_response(status, headers, *args)

        return self.app(environ, counting_start_response)

"""HTTP middleware: WSGI (Flask, Django, ...) and ASGI (FastAPI, Starlette, ...).

WSGI::

    from ratelimiter.middleware import RateLimitMiddleware
    application = RateLimitMiddleware(flask_app, limiter, exempt_paths=["/health"])

ASGI (both forms work)::

    app.add_middleware(AsyncRateLimitMiddleware, limiter=limiter)
    application = AsyncRateLimitMiddleware(app, limiter)

Behaviour, the same in both:

* The key is ``key_func(environ)`` / ``key_func(scope)``; by default the peer address
  (``X-Forwarded-For`` is *not* trusted by default; use
  :func:`~ratelimiter.key_funcs.wsgi_ip_func` with ``trusted_proxies=`` behind a proxy).
* Requests whose method is in ``exempt_methods`` (default ``("OPTIONS",)``, CORS
  preflights) or whose path matches ``exempt_paths`` are passed through unlimited.
* ``cost`` is an int, a mapping from route pattern to cost, or a callable
  ``(environ|scope) -> int``. ``route_limiters`` is a mapping from route pattern to limiter,
  or a callable ``(environ|scope) -> Optional[limiter]``; unmatched routes (or ``None``) use
  ``limiter``. Route patterns: ``"/exact"``, ``"/prefix/*"``, ``"*"``, optionally with a
  method (``"POST /upload"``); exact beats prefix, the longest prefix wins.
* Admitted responses get rate-limit headers (``header_style``: ``"x-ratelimit"`` for
  ``X-RateLimit-Limit/Remaining/Reset``, ``"ietf"`` for ``RateLimit``/``RateLimit-Policy``,
  or ``"both"``); headers the application set itself are left alone.
* The ASGI middleware never limits FastAPI's documentation routes (``docs_paths``).
* Rejected requests get ``429 Too Many Requests`` with the JSON body
  ``{"error": "rate limit exceeded"}``, ``Content-Type``, ``Content-Length``, the same
  rate-limit headers and ``Retry-After`` in whole seconds (omitted when waiting cannot
  help, i.e. the cost exceeds the limiter's capacity). This response is built by
  :class:`~ratelimiter.integrations._policy.ResponsePolicy`, shared with the Flask,
  FastAPI and Django integrations.
* With a ``MemoryBackend`` every worker process counts on its own (N workers: N times the
  limit); a warning is logged once per process when this is detected.

* ``usage_path="/rate_limit"`` (default off) answers ``GET``/``HEAD`` on that exact path
  with the caller's own quotas as JSON, from ``peek`` (nothing consumed), for every
  limiter that can decide this caller's requests; the path is never limited or counted
  and the caller is always the one ``key_func`` computes (no parameter chooses a key, and
  the key is not echoed). Other methods get ``405``. See :mod:`ratelimiter._usage` for the
  shape.
* ``on_near_limit(key, result)`` is called once per key per window when a decision shows
  ``near_limit_ratio`` (default 0.8) of that limiter's quota used; see
  :class:`~ratelimiter.metrics.NearLimitTracker` for the exact rule. Each limiter (the
  default and every per-route one) has its own bookkeeping. Exceptions it raises are
  logged and never change the response; the ASGI middleware awaits an ``async def``
  callback before answering, so hand slow work (e-mail) off to a queue or task.

The ASGI middleware never blocks the event loop on I/O: a memory-backed limiter is called
directly, an ``AsyncRateLimiter`` or an async backend is awaited, anything else runs in an
executor. Non-HTTP scopes (websocket, lifespan) pass straight through.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any, Callable, Generic, Optional, TypeVar, Union

from ._protocols import ASGIApp, Message, Receive, Scope, Send
from ._routes import RouteTable
from ._usage import (
    METHOD_NOT_ALLOWED_BODY,
    USAGE_METHODS,
    check_usage_path,
    route_groups,
    usage_body,
    usage_entry,
    usage_headers,
)
from .algorithms.async_base import AnyLimiter, AsyncRateLimiter, _is_allowed_any, _sync_limiter
from .integrations._policy import (
    REJECTION_BODY,
    HeaderStyle,
    ResponsePolicy,
    warn_if_memory_in_worker,
)
from .key_funcs import asgi_peer, wsgi_peer
from .metrics import (
    NearLimitCallback,
    NearLimitTracker,
    check_near_limit_callback,
    check_near_limit_ratio,
    clock_of,
    notify_near_limit_async,
    notify_near_limit_sync,
)
from .result import RateLimitResult

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["DOCS_PATHS", "AsyncRateLimitMiddleware", "HeaderStyle", "RateLimitMiddleware"]

DOCS_PATHS = ("/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json")
"""FastAPI's default documentation routes, exempt from the ASGI middleware by default."""

REJECTION_STATUS = "429 Too Many Requests"
METHOD_NOT_ALLOWED_STATUS = "405 Method Not Allowed"

R = TypeVar("R")  # the request: a WSGI environ or an ASGI scope

CostSpec = Union[int, Mapping[str, int], Callable[[R], int]]
RouteLimiters = Union[Mapping[str, AnyLimiter], Callable[[R], Optional[AnyLimiter]], None]


def _check_cost(cost: object, param: str) -> int:
    if isinstance(cost, bool) or not isinstance(cost, int) or cost < 1:
        raise ValueError(f"{param} must be a positive int, got {cost!r}")
    return cost


class _Policy(Generic[R]):
    """Which requests are limited, by which limiter, at what cost, with which headers."""

    def __init__(
        self,
        limiter: AnyLimiter,
        cost: CostSpec[R],
        route_limiters: RouteLimiters[R],
        exempt_paths: Iterable[str],
        exempt_methods: Iterable[str],
        header_style: HeaderStyle,
    ) -> None:
        if not callable(getattr(limiter, "is_allowed", None)):
            raise TypeError(f"limiter must have is_allowed(), got {type(limiter).__name__}")
        # The one 429 and header set of every integration (ratelimiter.integrations).
        self.response = ResponsePolicy(header_style)
        self.limiter = limiter
        self.header_style = header_style
        self.exempt_methods = frozenset(
            m.upper() for m in ((exempt_methods,) if isinstance(exempt_methods, str)
                                else exempt_methods)
        )
        self.exempt_paths: RouteTable[bool] = RouteTable.from_patterns(
            exempt_paths, True, param="exempt_paths"
        )

        self.fixed_cost: Optional[int] = None
        self.cost_table: Optional[RouteTable[int]] = None
        self.cost_func: Optional[Callable[[R], int]] = None
        if isinstance(cost, Mapping):
            for pattern, value in cost.items():
                _check_cost(value, f"cost[{pattern!r}]")
            self.cost_table = RouteTable(cost, param="cost")
        elif callable(cost):
            self.cost_func = cost
        else:
            self.fixed_cost = _check_cost(cost, "cost")

        self.limiter_table: Optional[RouteTable[AnyLimiter]] = None
        self.limiter_func: Optional[Callable[[R], Optional[AnyLimiter]]] = None
        # For usage reports: every limiter a route table can choose, grouped by object.
        self.route_groups: list[tuple[str, list[str], AnyLimiter]] = [
            ("default", ["*"], limiter)
        ]
        if isinstance(route_limiters, Mapping):
            self.limiter_table = RouteTable(route_limiters, param="route_limiters")
            self.route_groups = route_groups(route_limiters, limiter)
        elif callable(route_limiters):
            self.limiter_func = route_limiters
        elif route_limiters is not None:
            raise TypeError("route_limiters must be a mapping, a callable or None")

    def exempt(self, method: str, path: str) -> bool:
        return method in self.exempt_methods or (
            bool(self.exempt_paths) and self.exempt_paths.lookup(method, path) is not None
        )

    def cost_for(self, request: R, method: str, path: str) -> int:
        if self.fixed_cost is not None:
            return self.fixed_cost
        if self.cost_table is not None:
            cost = self.cost_table.lookup(method, path)
            return 1 if cost is None else cost
        assert self.cost_func is not None
        return self.cost_func(request)

    def limiter_for(self, request: R, method: str, path: str) -> AnyLimiter:
        chosen: Optional[AnyLimiter] = None
        if self.limiter_table is not None:
            chosen = self.limiter_table.lookup(method, path)
        elif self.limiter_func is not None:
            chosen = self.limiter_func(request)
        return self.limiter if chosen is None else chosen

    def usage_limiters(self, request: R) -> list[tuple[str, list[str], AnyLimiter]]:
        """``(name, route patterns, limiter)`` for every limiter that can decide ``request``'s
        client. A ``route_limiters`` callable is asked about this very request (it picks
        per client, e.g. by plan); what it answers is reported as the default."""
        if self.limiter_func is not None:
            chosen = self.limiter_func(request)
            return [("default", ["*"], self.limiter if chosen is None else chosen)]
        return self.route_groups

    def headers(self, result: RateLimitResult) -> dict[str, str]:
        return self.response.headers(result)

    def rejection_headers(self, result: RateLimitResult) -> list[tuple[str, str]]:
        return self.response.rejection_headers(result)


def _merge_headers(
    app_headers: list[tuple[str, str]], extra: dict[str, str]
) -> list[tuple[str, str]]:
    """The application's headers plus ``extra`` ones it did not set itself."""
    present = {name.lower() for name, _ in app_headers}
    return list(app_headers) + [(k, v) for k, v in extra.items() if k.lower() not in present]


def _can_peek(limiter: AnyLimiter) -> bool:
    return callable(getattr(_sync_limiter(limiter), "peek", None))


_Tracked = tuple[AnyLimiter, NearLimitTracker, Callable[[], float]]


class _NearLimitAlerts:
    """``on_near_limit`` bookkeeping for a middleware: one tracker per limiter object, since
    the default and each per-route limiter are separate quotas for the same key.

    Limiters are normally a fixed few; a ``route_limiters`` callable that made a new one per
    request would still be bounded: beyond ``MAX_LIMITERS`` the oldest tracker is dropped.
    """

    MAX_LIMITERS = 1024

    def __init__(self, callback: NearLimitCallback, ratio: float) -> None:
        self.callback = callback
        self.ratio = ratio
        self._lock = threading.Lock()
        # id(limiter) -> (limiter, tracker, its clock); the strong reference keeps the id
        # unique.
        self._trackers: dict[int, _Tracked] = {}

    def crossed(self, limiter: AnyLimiter, key: str, result: RateLimitResult) -> bool:
        """Whether this decision of ``limiter`` for ``key`` is due an alert."""
        entry = self._trackers.get(id(limiter))
        if entry is None or entry[0] is not limiter:
            with self._lock:
                entry = self._trackers.get(id(limiter))
                if entry is None or entry[0] is not limiter:
                    if len(self._trackers) >= self.MAX_LIMITERS:
                        del self._trackers[next(iter(self._trackers))]
                    entry = (limiter, NearLimitTracker(self.ratio), clock_of(limiter))
                    self._trackers[id(limiter)] = entry
        return entry[1].observe(key, result, entry[2])


def _near_limit_alerts(
    on_near_limit: Optional[NearLimitCallback], near_limit_ratio: float
) -> Optional[_NearLimitAlerts]:
    ratio = check_near_limit_ratio(near_limit_ratio)
    callback = check_near_limit_callback(on_near_limit)
    return None if callback is None else _NearLimitAlerts(callback, ratio)


class RateLimitMiddleware:
    """PEP 3333 WSGI middleware (see the module docstring for the behaviour).

    Args:
        app: The WSGI application to protect (e.g. a Flask app or ``app.wsgi_app``).
        limiter: The limiter for every request not routed elsewhere.
        key_func: ``(environ) -> str``; default the peer address (``REMOTE_ADDR``).
        cost: An int, a mapping of route pattern to cost, or ``(environ) -> int``.
        exempt_paths: Route patterns never limited, e.g. ``["/health", "/static/*"]``.
        exempt_methods: Methods never limited (default ``("OPTIONS",)``).
        route_limiters: Mapping of route pattern to limiter, or ``(environ) -> limiter|None``.
        header_style: ``"x-ratelimit"`` (default), ``"ietf"``, ``"both"`` or ``"none"``.
        usage_path: Exact path answering the caller's quotas as JSON (default ``None``: off).
        on_near_limit: ``(key, result) -> None``, called once per key per window when usage
            reaches ``near_limit_ratio`` of a limiter's quota.
        near_limit_ratio: In (0, 1] (default 0.8).

    Raises:
        ValueError: for an invalid cost, route pattern, header style, usage path or ratio.
        TypeError: for a non-callable ``on_near_limit`` or a non-str ``usage_path``.
    """

    def __init__(
        self,
        app: WSGIApplication,
        limiter: AnyLimiter,
        key_func: Optional[Callable[[WSGIEnvironment], str]] = None,
        cost: CostSpec[WSGIEnvironment] = 1,
        *,
        exempt_paths: Iterable[str] = (),
        exempt_methods: Iterable[str] = ("OPTIONS",),
        route_limiters: RouteLimiters[WSGIEnvironment] = None,
        header_style: HeaderStyle = "x-ratelimit",
        usage_path: Optional[str] = None,
        on_near_limit: Optional[NearLimitCallback] = None,
        near_limit_ratio: float = 0.8,
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.key_func: Callable[[WSGIEnvironment], str] = key_func or wsgi_peer
        self.cost = cost
        self._policy: _Policy[WSGIEnvironment] = _Policy(
            limiter, cost, route_limiters, exempt_paths, exempt_methods, header_style
        )
        self.usage_path = check_usage_path(usage_path)
        self._alerts = _near_limit_alerts(on_near_limit, near_limit_ratio)

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        """Decide the request; answer 429 or call the application adding headers."""
        policy = self._policy
        method = str(environ.get("REQUEST_METHOD") or "GET").upper()
        path = str(environ.get("PATH_INFO") or "/")
        if path == self.usage_path:
            return self._usage(environ, start_response, method)
        if policy.exempt(method, path):
            return self.app(environ, start_response)

        chosen = policy.limiter_for(environ, method, path)
        cost = policy.cost_for(environ, method, path)
        key = self.key_func(environ)
        warn_if_memory_in_worker(getattr(_sync_limiter(chosen), "backend", None))
        result = _sync_limiter(chosen).is_allowed(key, cost)
        alerts = self._alerts
        if alerts is not None and alerts.crossed(chosen, key, result):
            notify_near_limit_sync(alerts.callback, key, result)
        if not result.allowed:
            start_response(REJECTION_STATUS, policy.rejection_headers(result))
            return [REJECTION_BODY]

        extra = policy.headers(result)

        def start_with_headers(
            status: str, headers: list[tuple[str, str]], *exc_info: Any
        ) -> Callable[[bytes], object]:
            return start_response(status, _merge_headers(headers, extra), *exc_info)

        return self.app(environ, start_with_headers)

    def _usage(
        self, environ: WSGIEnvironment, start_response: StartResponse, method: str
    ) -> Iterable[bytes]:
        """Answer the usage path: the caller's quotas, peeked, never consumed."""
        if method not in USAGE_METHODS:
            headers = usage_headers(METHOD_NOT_ALLOWED_BODY)
            start_response(METHOD_NOT_ALLOWED_STATUS, [*headers, ("Allow", "GET, HEAD")])
            return [METHOD_NOT_ALLOWED_BODY]
        key = self.key_func(environ)
        resources = {}
        for name, routes, limiter in self._policy.usage_limiters(environ):
            if not _can_peek(limiter):
                continue
            try:
                result = _sync_limiter(limiter).peek(key)  # type: ignore[attr-defined]
            except NotImplementedError:  # a custom limiter without peek
                continue
            resources[name] = usage_entry(limiter, result, routes)
        body = usage_body(resources)
        start_response("200 OK", usage_headers(body))
        return [b"" if method == "HEAD" else body]


class AsyncRateLimitMiddleware:
    """ASGI middleware (see the module docstring for the behaviour).

    Usable as ``app.add_middleware(AsyncRateLimitMiddleware, limiter=...)`` or as a
    wrapper ``AsyncRateLimitMiddleware(app, limiter)``.

    Args:
        app: The ASGI application to protect.
        limiter: A limiter or an :class:`~ratelimiter.algorithms.async_base.AsyncRateLimiter`
            for every request not routed elsewhere.
        key_func: ``(scope) -> str`` or ``async (scope) -> str``; default the peer address.
        cost: An int, a mapping of route pattern to cost, or ``(scope) -> int``.
        exempt_paths: Route patterns never limited.
        exempt_methods: Methods never limited (default ``("OPTIONS",)``).
        route_limiters: Mapping of route pattern to limiter, or ``(scope) -> limiter|None``.
        header_style: ``"x-ratelimit"`` (default), ``"ietf"``, ``"both"`` or ``"none"``.
        executor: Where limiters on blocking backends run (default: the loop's executor).
        docs_paths: Exact paths never limited, default FastAPI's documentation
            (:data:`DOCS_PATHS`: ``/docs``, ``/docs/oauth2-redirect``, ``/redoc``,
            ``/openapi.json``), so a limited client can still read the API's docs. Pass
            ``()`` to limit them too.
        usage_path: Exact path answering the caller's quotas as JSON (default ``None``: off).
        on_near_limit: ``(key, result) -> None`` or an ``async def`` of the same, called once
            per key per window when usage reaches ``near_limit_ratio`` of a limiter's quota.
        near_limit_ratio: In (0, 1] (default 0.8).

    Raises:
        ValueError: for an invalid cost, route pattern, header style, usage path or ratio.
        TypeError: for a non-callable ``on_near_limit`` or a non-str ``usage_path``.
    """

    def __init__(
        self,
        app: ASGIApp,
        limiter: AnyLimiter,
        key_func: Optional[Callable[[Scope], Any]] = None,
        cost: CostSpec[Scope] = 1,
        *,
        exempt_paths: Iterable[str] = (),
        exempt_methods: Iterable[str] = ("OPTIONS",),
        route_limiters: RouteLimiters[Scope] = None,
        header_style: HeaderStyle = "x-ratelimit",
        executor: Optional[Executor] = None,
        docs_paths: Iterable[str] = DOCS_PATHS,
        usage_path: Optional[str] = None,
        on_near_limit: Optional[NearLimitCallback] = None,
        near_limit_ratio: float = 0.8,
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.key_func: Callable[[Scope], Any] = key_func or asgi_peer
        self.cost = cost
        self.executor = executor
        if isinstance(docs_paths, str):
            docs_paths = (docs_paths,)
        self.docs_paths = frozenset(docs_paths)
        self._policy: _Policy[Scope] = _Policy(
            limiter, cost, route_limiters, exempt_paths, exempt_methods, header_style
        )
        self.usage_path = check_usage_path(usage_path)
        self._alerts = _near_limit_alerts(on_near_limit, near_limit_ratio)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Decide an HTTP request; answer 429 or call the application adding headers."""
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        policy = self._policy
        method = str(scope.get("method") or "GET").upper()
        path = str(scope.get("path") or "/")
        if path == self.usage_path:
            await self._usage(scope, send, method)
            return
        if path in self.docs_paths or policy.exempt(method, path):
            await self.app(scope, receive, send)
            return

        limiter = policy.limiter_for(scope, method, path)
        cost = policy.cost_for(scope, method, path)
        key = await self._key(scope)
        warn_if_memory_in_worker(getattr(_sync_limiter(limiter), "backend", None))
        result = await _is_allowed_any(limiter, key, cost, self.executor)
        alerts = self._alerts
        if alerts is not None and alerts.crossed(limiter, key, result):
            await notify_near_limit_async(alerts.callback, key, result)
        if not result.allowed:
            await send({
                "type": "http.response.start",
                "status": 429,
                "headers": _encode(policy.rejection_headers(result)),
            })
            await send({"type": "http.response.body", "body": REJECTION_BODY})
            return

        extra = _encode(list(policy.headers(result).items()))

        async def send_with_headers(message: Message) -> None:
            if message.get("type") == "http.response.start":
                app_headers = list(message.get("headers") or ())
                present = {bytes(name).lower() for name, _ in app_headers}
                message = dict(message)
                message["headers"] = app_headers + [h for h in extra if h[0] not in present]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _key(self, scope: Scope) -> str:
        key = self.key_func(scope)
        if inspect.isawaitable(key):
            key = await key
        return key  # type: ignore[no-any-return]

    async def _usage(self, scope: Scope, send: Send, method: str) -> None:
        """Answer the usage path: the caller's quotas, peeked (never consumed) on the same
        non-blocking call paths as decisions."""
        if method not in USAGE_METHODS:
            headers = usage_headers(METHOD_NOT_ALLOWED_BODY) + [("Allow", "GET, HEAD")]
            await _answer(send, 405, headers, METHOD_NOT_ALLOWED_BODY)
            return
        key = await self._key(scope)
        resources = {}
        for name, routes, limiter in self._policy.usage_limiters(scope):
            if not _can_peek(limiter):
                continue
            checker = (limiter if isinstance(limiter, AsyncRateLimiter)
                       else AsyncRateLimiter(limiter, self.executor))
            try:
                result = await checker.peek(key)
            except NotImplementedError:  # a custom limiter without peek
                continue
            resources[name] = usage_entry(limiter, result, routes)
        body = usage_body(resources)
        await _answer(send, 200, usage_headers(body), b"" if method == "HEAD" else body)


async def _answer(send: Send, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": _encode(headers)})
    await send({"type": "http.response.body", "body": body})


def _encode(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]

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
* Rejected requests get ``429 Too Many Requests`` with the JSON body
  ``{"error": "rate limit exceeded"}``, ``Content-Type``, ``Content-Length``, the same
  rate-limit headers and ``Retry-After`` in whole seconds (omitted when waiting cannot
  help, i.e. the cost exceeds the limiter's capacity).

The ASGI middleware never blocks the event loop on I/O: a memory-backed limiter is called
directly, an ``AsyncRateLimiter`` or an async backend is awaited, anything else runs in an
executor. Non-HTTP scopes (websocket, lifespan) pass straight through.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any, Callable, Generic, Literal, Optional, TypeVar, Union

from ._protocols import ASGIApp, Message, Receive, Scope, Send, SyncLimiter
from ._routes import RouteTable
from .algorithms.async_base import AnyLimiter, AsyncRateLimiter, _is_allowed_any
from .algorithms.base import RateLimitResult
from .key_funcs import asgi_peer, wsgi_peer

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["AsyncRateLimitMiddleware", "HeaderStyle", "RateLimitMiddleware"]

HeaderStyle = Literal["x-ratelimit", "ietf", "both"]
_HEADER_STYLES = ("x-ratelimit", "ietf", "both")

REJECTION_BODY = b'{"error": "rate limit exceeded"}'
REJECTION_STATUS = "429 Too Many Requests"

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
        header_style: str,
    ) -> None:
        if not callable(getattr(limiter, "is_allowed", None)):
            raise TypeError(f"limiter must have is_allowed(), got {type(limiter).__name__}")
        if header_style not in _HEADER_STYLES:
            raise ValueError(
                f"header_style must be one of {', '.join(_HEADER_STYLES)}; got {header_style!r}"
            )
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
        if isinstance(route_limiters, Mapping):
            self.limiter_table = RouteTable(route_limiters, param="route_limiters")
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

    def headers(self, result: RateLimitResult) -> dict[str, str]:
        style = self.header_style
        if style == "x-ratelimit":
            return result.headers
        if style == "ietf":
            return result.ietf_headers
        return {**result.headers, **result.ietf_headers}

    def rejection_headers(self, result: RateLimitResult) -> list[tuple[str, str]]:
        headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(REJECTION_BODY))),
        ]
        headers.extend(self.headers(result).items())
        return headers


def _merge_headers(
    app_headers: list[tuple[str, str]], extra: dict[str, str]
) -> list[tuple[str, str]]:
    """The application's headers plus ``extra`` ones it did not set itself."""
    present = {name.lower() for name, _ in app_headers}
    return list(app_headers) + [(k, v) for k, v in extra.items() if k.lower() not in present]


def _sync(limiter: AnyLimiter) -> SyncLimiter:
    return limiter.limiter if isinstance(limiter, AsyncRateLimiter) else limiter


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
        header_style: ``"x-ratelimit"`` (default), ``"ietf"`` or ``"both"``.

    Raises:
        ValueError: for an invalid cost, route pattern or header style.
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
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.key_func: Callable[[WSGIEnvironment], str] = key_func or wsgi_peer
        self.cost = cost
        self._policy: _Policy[WSGIEnvironment] = _Policy(
            limiter, cost, route_limiters, exempt_paths, exempt_methods, header_style
        )

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        """Decide the request; answer 429 or call the application adding headers."""
        policy = self._policy
        method = str(environ.get("REQUEST_METHOD") or "GET").upper()
        path = str(environ.get("PATH_INFO") or "/")
        if policy.exempt(method, path):
            return self.app(environ, start_response)

        limiter = _sync(policy.limiter_for(environ, method, path))
        cost = policy.cost_for(environ, method, path)
        result = limiter.is_allowed(self.key_func(environ), cost)
        if not result.allowed:
            start_response(REJECTION_STATUS, policy.rejection_headers(result))
            return [REJECTION_BODY]

        extra = policy.headers(result)

        def start_with_headers(
            status: str, headers: list[tuple[str, str]], *exc_info: Any
        ) -> Callable[[bytes], object]:
            return start_response(status, _merge_headers(headers, extra), *exc_info)

        return self.app(environ, start_with_headers)


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
        header_style: ``"x-ratelimit"`` (default), ``"ietf"`` or ``"both"``.
        executor: Where limiters on blocking backends run (default: the loop's executor).

    Raises:
        ValueError: for an invalid cost, route pattern or header style.
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
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.key_func: Callable[[Scope], Any] = key_func or asgi_peer
        self.cost = cost
        self.executor = executor
        self._policy: _Policy[Scope] = _Policy(
            limiter, cost, route_limiters, exempt_paths, exempt_methods, header_style
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Decide an HTTP request; answer 429 or call the application adding headers."""
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        policy = self._policy
        method = str(scope.get("method") or "GET").upper()
        path = str(scope.get("path") or "/")
        if policy.exempt(method, path):
            await self.app(scope, receive, send)
            return

        limiter = policy.limiter_for(scope, method, path)
        cost = policy.cost_for(scope, method, path)
        key = self.key_func(scope)
        if inspect.isawaitable(key):
            key = await key
        result = await _is_allowed_any(limiter, key, cost, self.executor)
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


def _encode(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]

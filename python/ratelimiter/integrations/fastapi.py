"""FastAPI / Starlette: rate limits as a dependency.

::

    from fastapi import APIRouter, Depends, FastAPI
    from ratelimiter.integrations.fastapi import (
        RateLimit, RateLimitHTTPException, rate_limit_exception_handler)

    app = FastAPI()
    app.add_exception_handler(RateLimitHTTPException, rate_limit_exception_handler)

    @app.get("/search", dependencies=[Depends(RateLimit("5/second;100/hour"))])
    async def search(): ...

    router = APIRouter(dependencies=[Depends(RateLimit("60/minute", scope="api"))])

* A ``RateLimit`` counts **per route** (method and path template): the same instance in a
  router's ``dependencies`` limits each of its routes separately, unless ``scope=`` names
  counters shared by every route (and every ``RateLimit``) using that scope. The limits of
  one ``RateLimit`` (``"5/second;100/hour"``) are decided together, all or nothing; put
  limits that must be atomic in one string rather than in two dependencies.
* A rejection raises :class:`RateLimitHTTPException` (an ``HTTPException``: 429, with
  ``Retry-After`` and the rate-limit headers), so it goes through FastAPI's exception
  handling and apps can override it. Without a handler FastAPI answers
  ``{"detail": "rate limit exceeded"}``; install :func:`rate_limit_exception_handler` for
  the body every other integration sends, ``{"error": "rate limit exceeded"}``.
* Admitted responses get the rate-limit headers too, through FastAPI's ``Response``
  parameter. FastAPI drops those when a route returns its own ``Response`` object; such a
  route can copy them from the dependency's value (``result = Depends(limit)``, then
  ``result.headers``) or leave headers to the app-wide ASGI middleware.
* It never blocks the event loop: memory decides directly, an ``AsyncRedisBackend`` is
  awaited, SQLite and sync Redis run in the default executor.
* ``key_func(request) -> str`` (or ``async``); default the peer address. A key function
  that raises or returns a non-string gives a 500 (``HTTPException``) and one log line.

**Usage endpoint.** ``app.include_router(usage_router("/rate_limit"))`` adds ``GET``/``HEAD
/rate_limit`` answering the caller's own quotas as JSON, peeked and never counted: every
``RateLimit`` found in the app's routes (route, router and app dependencies), one resource
per limit, named ``"<METHOD> <path> <limit>"`` (``"shared:<scope> <limit>"`` for a
scope), with ``limit``, ``remaining``, ``reset``, ``policy``... (see
:mod:`ratelimiter._usage`). The route itself is never limited, even under app-wide
``RateLimit`` dependencies. Each ``RateLimit`` computes the caller's key with its own
``key_func``; the key is never echoed and no other key is read.

**Near-limit alerts.** ``RateLimit(..., on_near_limit=notify, near_limit_ratio=0.8)``
calls ``notify(key, result)`` (or awaits an ``async def``) once per key per limit per
window when usage reaches the ratio; ``result`` is that limit's
(``result.metadata["policy"]`` its text).

The app-wide :class:`~ratelimiter.middleware.AsyncRateLimitMiddleware` exempts ``/docs``,
``/redoc`` and ``/openapi.json`` by default (``docs_paths``).
"""

from __future__ import annotations

import inspect
import threading
from typing import Any, Callable, Optional, Union

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.routing import APIRoute
from starlette.responses import Response as StarletteResponse

from .._usage import check_usage_path, usage_headers
from ..backends.memory import MemoryBackend
from ..exceptions import ConfigurationError
from ..key_funcs import asgi_peer
from ..limits import LimitSpec
from ..result import RateLimitResult
from ._policy import (
    HeaderStyle,
    KeyFuncError,
    ResponsePolicy,
    check_header_style,
    check_key,
    log_key_error_once,
    warn_if_memory_in_worker,
)
from ._quota import UsageReport, near_limit_alerts
from ._views import Decider, Rule, parse_for_view

__all__ = ["RateLimit", "RateLimitHTTPException", "rate_limit_exception_handler",
           "usage_router"]

_default_backend: Optional[MemoryBackend] = None
_default_lock = threading.Lock()


def _memory() -> MemoryBackend:
    """One process-wide memory store for every ``RateLimit`` without a backend, so shared
    scopes are shared between instances."""
    global _default_backend
    with _default_lock:
        if _default_backend is None:
            _default_backend = MemoryBackend()
        return _default_backend


class RateLimitHTTPException(HTTPException):
    """A rejected request: status 429, ``headers`` with ``Retry-After`` and the rate-limit
    headers, ``result`` the rejecting decision, ``policy`` the response policy used."""

    def __init__(self, result: RateLimitResult, policy: ResponsePolicy) -> None:
        super().__init__(429, detail="rate limit exceeded", headers=policy.headers(result))
        self.result = result
        self.policy = policy


async def rate_limit_exception_handler(request: Request, exc: Exception) -> StarletteResponse:
    """The shared 429 (``{"error": "rate limit exceeded"}``) for a
    :class:`RateLimitHTTPException`; install with ``app.add_exception_handler``."""
    assert isinstance(exc, RateLimitHTTPException)
    rejection = exc.policy.rejection(exc.result)
    response = StarletteResponse(rejection.body, rejection.status)
    for name, value in rejection.headers:
        response.headers[name] = value
    return response


class RateLimit:
    """A FastAPI dependency enforcing ``limits`` (see the module docstring).

    Args:
        limits: ``"5/minute"``, ``"10/second;1000/day"``, a ``Limit`` or a list of them.
        backend: Where counters live (default: one process-wide ``MemoryBackend``).
        key_func: ``(request) -> str`` or ``async (request) -> str``; default the peer
            address (``X-Forwarded-For`` is not trusted; see :mod:`ratelimiter.key_funcs`).
        cost: Units per request: an int, or ``(request) -> int``.
        algorithm: Any algorithm ``MultiRateLimiter`` accepts.
        scope: Name of counters shared with every route using the same scope; default
            per route.
        exempt_when: ``(request) -> bool``: true skips the limit for this request.
        methods: Only limit these HTTP methods (default: all).
        headers: ``"x-ratelimit"`` (default), ``"ietf"``, ``"both"`` or ``"none"``.
        clock: Zero-argument callable returning seconds (tests).
        on_near_limit: ``(key, result) -> None`` or ``async``, once per key per limit per
            window when usage reaches ``near_limit_ratio`` of that limit (errors logged).
        near_limit_ratio: In (0, 1] (default 0.8).

    Raises:
        ConfigurationError: for a bad limit string, cost, scope or header style.
        ValueError, TypeError: for a bad ``near_limit_ratio`` or ``on_near_limit``.
    """

    def __init__(
        self,
        limits: LimitSpec,
        *,
        backend: Any = None,
        key_func: Optional[Callable[[Request], Any]] = None,
        cost: Union[int, Callable[[Request], int]] = 1,
        algorithm: Any = "sliding_window_counter",
        scope: Optional[str] = None,
        exempt_when: Optional[Callable[[Request], bool]] = None,
        methods: Optional[list[str]] = None,
        headers: HeaderStyle = "x-ratelimit",
        clock: Optional[Callable[[], float]] = None,
        on_near_limit: Optional[Callable[[str, RateLimitResult], Any]] = None,
        near_limit_ratio: float = 0.8,
    ) -> None:
        if scope is not None and (not isinstance(scope, str) or not scope):
            raise ConfigurationError(f"RateLimit: scope must be a non-empty str, got {scope!r}")
        name = f"RateLimit({limits!r})"
        # Checked now, so a bad limit fails at import, not on the first request.
        self._template = Rule.build(limits, "", name, cost=cost, exempt_when=exempt_when,
                                    methods=methods)
        self.limits = parse_for_view(limits, name)
        self.backend = backend if backend is not None else _memory()
        self.key_func = key_func
        self.algorithm = algorithm
        self.scope = scope
        self.policy = ResponsePolicy(check_header_style(headers, "headers"))
        self.clock = clock
        self.alerts = near_limit_alerts(on_near_limit, near_limit_ratio)
        self._deciders: dict[str, Decider] = {}
        self._lock = threading.Lock()

    def _decider(self, request: Request) -> Decider:
        route = request.scope.get("route")
        return self._decider_for(request.method, getattr(route, "path", None)
                                 or request.url.path)

    def _decider_for(self, method: str, path: str) -> Decider:
        where = f"shared:{self.scope}" if self.scope is not None else f"route:{method} {path}"
        decider = self._deciders.get(where)
        if decider is None:
            with self._lock:
                decider = self._deciders.get(where)
                if decider is None:
                    t = self._template
                    rule = Rule(t.limits, where, None, t.cost, t.exempt_when, None, None,
                                t.methods)
                    decider = Decider([rule], self.backend, self.algorithm, where,
                                      _peer, self.clock, self.alerts)
                    self._deciders[where] = decider
        return decider

    async def _key(self, request: Request, view: str) -> str:
        if self.key_func is None:
            return _peer(request)
        try:
            key = self.key_func(request)
            if inspect.isawaitable(key):
                key = await key
        except Exception as exc:
            raise KeyFuncError(view, f"{type(exc).__name__}: {exc}") from exc
        return check_key(key, view)

    async def __call__(self, request: Request, response: Response) -> Optional[RateLimitResult]:
        """Decide ``request``; raise :class:`RateLimitHTTPException` when it is rejected.
        Returns the decision (``None`` when exempt), so a route may read it."""
        if getattr(getattr(request.scope.get("route"), "endpoint", None), _USAGE_MARK, False):
            return None  # the usage endpoint is never limited
        decider = self._decider(request)
        warn_if_memory_in_worker(self.backend)
        try:
            key = await self._key(request, decider.view)
            decision = await decider.decide_async(request, request.method, key)
        except KeyFuncError as exc:
            log_key_error_once(exc)
            raise HTTPException(500, detail="rate limit key could not be computed") from exc
        result = decision.result
        if result is None:
            return None
        if not decision.allowed:
            raise RateLimitHTTPException(result, self.policy)
        for name, value in self.policy.headers(result).items():
            response.headers[name] = value
        return result


def _peer(request: Any) -> str:
    return asgi_peer(request.scope)


_USAGE_MARK = "_ratelimiter_usage_endpoint"


def _rate_limits(dependant: Any) -> list[RateLimit]:
    """Every ``RateLimit`` among a route's dependencies (router and app ones included)."""
    found = []
    for dep in dependant.dependencies:
        if isinstance(dep.call, RateLimit):
            found.append(dep.call)
        found.extend(_rate_limits(dep))
    return found


async def _usage_report(request: Request) -> UsageReport:
    report = UsageReport()
    for route in request.app.routes:
        if not isinstance(route, APIRoute) or getattr(route.endpoint, _USAGE_MARK, False):
            continue
        for limit in dict.fromkeys(_rate_limits(route.dependant)):
            for method in sorted(route.methods or ()):
                methods = limit._template.methods
                if limit.scope is None and methods is not None and method not in methods:
                    continue  # this RateLimit never counts this route's method
                decider = limit._decider_for(method, route.path)
                try:
                    key = await limit._key(request, decider.view)
                    entries = await decider.usage_async(request, key)
                except KeyFuncError as exc:  # this limit is left out, not the report
                    log_key_error_once(exc)
                    continue
                label = (f"shared:{limit.scope}" if limit.scope is not None
                         else f"{method} {route.path}")
                for limiter, group_key, result, dims in entries:
                    report.add(label, [f"{method} {route.path}"], limiter, group_key,
                               result, dims)
    return report


def usage_router(path: str = "/rate_limit", **route_options: Any) -> APIRouter:
    """A router with ``GET``/``HEAD path``: the caller's own quotas as JSON (see the module
    docstring). ``route_options`` go to ``APIRouter.api_route`` (``tags``,
    ``include_in_schema``...). Other methods get FastAPI's own ``405``.

    Raises:
        ValueError, TypeError: ``path`` not an exact absolute path.
    """
    check_usage_path(path)
    router = APIRouter()

    async def rate_limit_usage(request: Request) -> StarletteResponse:
        report = await _usage_report(request)
        body = report.body()
        return StarletteResponse(b"" if request.method == "HEAD" else body,
                                 headers=dict(usage_headers(body)))

    setattr(rate_limit_usage, _USAGE_MARK, True)
    router.add_api_route(path, rate_limit_usage, methods=["GET", "HEAD"],
                         response_class=StarletteResponse, **route_options)
    return router

"""Tiered limits: a limiter per plan (free / pro / enterprise) and a cost per endpoint.

::

    from ratelimiter import MemoryBackend
    from ratelimiter.middleware import AsyncRateLimitMiddleware
    from ratelimiter.tiers import TieredLimits

    tiers = TieredLimits.build(
        MemoryBackend(),
        {"free": "100/hour", "pro": "1000/hour", "enterprise": (10_000, 3600)},
        default_plan="free",
        costs={"/api/search": 5, "POST /api/export/*": 20},
        plan_for_key=lambda api_key: accounts.plan_of(api_key),  # None: default plan
    )
    app.add_middleware(
        AsyncRateLimitMiddleware,
        limiter=tiers.default_limiter,
        key_func=tiers.asgi_key_func,
        route_limiters=tiers.asgi_limiter,
        cost=tiers.asgi_cost,
    )

The caller's plan comes from their API key (header ``X-API-Key`` by default) through
``plan_for_key``; callers without a key, or whose plan is unknown, get ``default_plan``
(make it your most restrictive plan). Requests are keyed by the hashed API key, or the
peer address without one. Cost patterns are the middleware's route patterns
(``"/exact"``, ``"/prefix/*"``, ``"METHOD /path"``); unmatched endpoints cost 1.

Outside HTTP, :meth:`TieredLimits.is_allowed` decides directly for a key, plan and path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

from ._protocols import Scope, SyncLimiter
from ._routes import RouteTable
from .algorithms.async_base import AnyLimiter, _sync_limiter
from .algorithms.token_bucket import TokenBucketRateLimiter
from .exceptions import ConfigurationError
from .key_funcs import (
    AsgiKeyFunc,
    WsgiKeyFunc,
    asgi_api_key_func,
    asgi_header,
    wsgi_api_key_func,
    wsgi_header,
)
from .limits import Limit, parse_limits
from .result import RateLimitResult

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

    from .backends.base import BaseBackend

__all__ = ["PlanLimit", "TieredLimits"]

PlanLimit = Union[str, Limit, tuple[int, float]]
"""A plan's limit: ``"1000/hour"``, a :class:`~ratelimiter.Limit` or ``(limit, window)``."""


class TieredLimits:
    """Choose a limiter by the caller's plan and a cost by the endpoint.

    Args:
        plans: Plan name to limiter. Give each plan's limiter its own ``key_prefix`` if
            they share a backend (:meth:`build` does), so plans never share state.
        default_plan: The plan of callers without a (known) plan; must be in ``plans``.
        costs: Route pattern to cost, e.g. ``{"/api/search": 5}``; other endpoints cost
            ``default_cost``.
        default_cost: Cost of endpoints not in ``costs`` (default 1).
        plan_for_key: Maps an API key (the raw header value) to a plan name, or ``None``.
        header: The API key header (default ``"X-API-Key"``).

    Raises:
        ValueError: for an unknown ``default_plan``, an empty ``plans`` or a bad cost.
    """

    def __init__(
        self,
        plans: Mapping[str, AnyLimiter],
        *,
        default_plan: str,
        costs: Optional[Mapping[str, int]] = None,
        default_cost: int = 1,
        plan_for_key: Optional[Callable[[str], Optional[str]]] = None,
        header: str = "X-API-Key",
    ) -> None:
        if not plans:
            raise ValueError("plans must name at least one plan")
        if default_plan not in plans:
            raise ValueError(f"default_plan {default_plan!r} is not one of {sorted(plans)}")
        for pattern, cost in {**(costs or {}), "default_cost": default_cost}.items():
            if isinstance(cost, bool) or not isinstance(cost, int) or cost < 1:
                raise ValueError(f"cost of {pattern!r} must be a positive int, got {cost!r}")
        self.plans: dict[str, AnyLimiter] = dict(plans)
        self.default_plan = default_plan
        self.costs: dict[str, int] = dict(costs or {})
        self.default_cost = default_cost
        self.plan_for_key = plan_for_key
        self.header = header
        self._cost_table: RouteTable[int] = RouteTable(self.costs, param="costs")
        self.wsgi_key_func: WsgiKeyFunc = wsgi_api_key_func(header)
        """WSGI key function: the hashed API key, or the peer address without one."""
        self.asgi_key_func: AsgiKeyFunc = asgi_api_key_func(header)
        """ASGI key function: the hashed API key, or the peer address without one."""

    @classmethod
    def build(
        cls,
        backend: BaseBackend,
        plans: Mapping[str, PlanLimit],
        *,
        default_plan: str,
        algorithm: Callable[..., SyncLimiter] = TokenBucketRateLimiter,
        costs: Optional[Mapping[str, int]] = None,
        default_cost: int = 1,
        plan_for_key: Optional[Callable[[str], Optional[str]]] = None,
        header: str = "X-API-Key",
        **limiter_options: Any,
    ) -> TieredLimits:
        """Create one ``algorithm`` limiter per plan on ``backend``.

        Args:
            backend: Shared by all plans; each plan's limiter gets ``key_prefix="<plan>:"``.
            plans: Plan name to its limit: a limit string (``"1000/hour"``, one limit), a
                :class:`~ratelimiter.Limit`, or ``(limit, window)``.
            algorithm: The limiter class (default ``TokenBucketRateLimiter``).
            limiter_options: Passed to every limiter (e.g. ``clock=``).

        The other arguments are as for the constructor.
        """
        limiters: dict[str, AnyLimiter] = {}
        for name, spec in plans.items():
            limit, window = _plan_limit(name, spec)
            limiters[name] = algorithm(
                backend, limit, window, key_prefix=f"{name}:", **limiter_options)
        return cls(
            limiters,
            default_plan=default_plan,
            costs=costs,
            default_cost=default_cost,
            plan_for_key=plan_for_key,
            header=header,
        )

    @property
    def default_limiter(self) -> AnyLimiter:
        """The default plan's limiter (the middleware's ``limiter=``)."""
        return self.plans[self.default_plan]

    def plan_of(self, api_key: Optional[str]) -> str:
        """The plan of a caller presenting ``api_key`` (``None`` or blank: no key)."""
        if api_key and self.plan_for_key is not None:
            plan = self.plan_for_key(api_key.strip())
            if plan is not None and plan in self.plans:
                return plan
        return self.default_plan

    def limiter(self, plan: Optional[str] = None) -> AnyLimiter:
        """The limiter of ``plan`` (unknown or ``None``: the default plan's)."""
        return self.plans.get(plan or self.default_plan, self.default_limiter)

    def cost(self, path: str, method: str = "GET") -> int:
        """The cost of a request to ``path`` with ``method``."""
        cost = self._cost_table.lookup(method.upper(), path)
        return self.default_cost if cost is None else cost

    def is_allowed(
        self, key: str, *, plan: Optional[str] = None, path: str = "/", method: str = "GET"
    ) -> RateLimitResult:
        """Decide a request by ``key`` on ``plan``'s limiter at ``path``'s cost (sync)."""
        limiter: SyncLimiter = _sync_limiter(self.limiter(plan))
        return limiter.is_allowed(key, self.cost(path, method))

    # Hooks for RateLimitMiddleware (WSGI): route_limiters=..., cost=...

    def wsgi_limiter(self, environ: WSGIEnvironment) -> AnyLimiter:
        """The limiter of the caller's plan, for ``RateLimitMiddleware(route_limiters=)``."""
        return self.plans[self.plan_of(wsgi_header(environ, self.header))]

    def wsgi_cost(self, environ: WSGIEnvironment) -> int:
        """The endpoint's cost, for ``RateLimitMiddleware(cost=)``."""
        return self.cost(
            str(environ.get("PATH_INFO") or "/"), str(environ.get("REQUEST_METHOD") or "GET")
        )

    # Hooks for AsyncRateLimitMiddleware (ASGI): route_limiters=..., cost=...

    def asgi_limiter(self, scope: Scope) -> AnyLimiter:
        """The limiter of the caller's plan, for ``AsyncRateLimitMiddleware(route_limiters=)``."""
        return self.plans[self.plan_of(asgi_header(scope, self.header))]

    def asgi_cost(self, scope: Scope) -> int:
        """The endpoint's cost, for ``AsyncRateLimitMiddleware(cost=)``."""
        return self.cost(str(scope.get("path") or "/"), str(scope.get("method") or "GET"))


def _plan_limit(plan: str, spec: PlanLimit) -> tuple[int, float]:
    """``(limit, window)`` of a plan given as a string, a ``Limit`` or a tuple."""
    if not isinstance(spec, (str, Limit)):
        limit, window = spec  # (limit, window), validated by the limiter
        return limit, window
    limits = parse_limits(spec)
    if len(limits) != 1:
        # Several limits at once need an all-or-nothing decision (MultiRateLimiter), not
        # one limiter per plan.
        raise ConfigurationError(
            f"plans[{plan!r}]: give one limit per plan, got {len(limits)} in {spec!r}")
    return limits[0].amount, limits[0].window

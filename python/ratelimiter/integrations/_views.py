"""A view's limits and how one request is decided against them, for every framework.

A view carries :class:`Rule` s (one per ``@limit`` / ``@shared_limit`` decorator, or the
defaults). Rules that compute the same key are decided together by one
:class:`~ratelimiter.multi.MultiRateLimiter` (all or nothing: a rejection consumes from
none of them), each rule being one *dimension* of it so each keeps its own cost:

* a per-view rule's dimension is ``"view:<view name>:<n>"`` (its own counters);
* a shared rule's dimension is ``"shared:<scope>"``, so every view naming that scope counts
  into the same counters.

Rules with ``deduct_when`` are decided differently: before the view only a ``peek`` (is
there room for one more?), and after it the cost is charged with ``adjust`` if
``deduct_when(response)`` is true. Between the peek and the charge other requests may pass
their peeks too, so under concurrency a few more than the limit can be admitted (as in
Flask-Limiter); the count itself is exact.

The framework modules only map their request/response types onto :class:`Decider`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Union

from ..exceptions import ConfigurationError, ConfigurationTypeError
from ..limits import Limit, LimitSpec, parse_limits
from ..multi import MultiRateLimiter
from ..result import RateLimitResult
from ._policy import call_key_func
from ._quota import NearLimitAlerts

__all__ = ["Decider", "Decision", "Rule", "parse_for_view"]

Cost = Union[int, Callable[[Any], int]]


def parse_for_view(limits: LimitSpec, view: str) -> list[Limit]:
    """``parse_limits(limits)``, with a ``ConfigurationError`` that names ``view``."""
    try:
        parsed = parse_limits(limits)
    except ConfigurationTypeError as exc:
        raise ConfigurationTypeError(f"rate limit for {view}: {exc}") from exc
    except ConfigurationError as exc:
        raise ConfigurationError(f"rate limit for {view}: {exc}") from exc
    if not parsed:
        raise ConfigurationError(f"rate limit for {view}: no limit given")
    return parsed


def _check_cost(cost: object, view: str) -> Cost:
    if callable(cost):
        return cost
    if isinstance(cost, bool) or not isinstance(cost, int) or cost < 1:
        raise ConfigurationError(f"rate limit for {view}: cost must be a positive int or a "
                                 f"callable, got {cost!r}")
    return cost


def _check_callable(value: object, name: str, view: str) -> Any:
    if value is not None and not callable(value):
        raise ConfigurationTypeError(
            f"rate limit for {view}: {name} must be callable, got {type(value).__name__}")
    return value


@dataclass(frozen=True, eq=False)
class Rule:
    """One decorator's limits. Callables get the framework's request (``deduct_when`` the
    response, ``on_breach`` the request and the rejecting result)."""

    limits: list[Limit]
    dimension: str
    key_func: Optional[Callable[[Any], Any]] = None
    cost: Cost = 1
    exempt_when: Optional[Callable[[Any], bool]] = None
    deduct_when: Optional[Callable[[Any], bool]] = None
    on_breach: Optional[Callable[[Any, RateLimitResult], Any]] = None
    methods: Optional[frozenset[str]] = None

    @classmethod
    def build(cls, limits: LimitSpec, dimension: str, view: str, *,
              key_func: Any = None, cost: object = 1, exempt_when: Any = None,
              deduct_when: Any = None, on_breach: Any = None,
              methods: Optional[Sequence[str]] = None) -> Rule:
        """A rule with every argument checked now (decoration time), errors naming ``view``."""
        if isinstance(methods, str):
            methods = (methods,)
        return cls(
            parse_for_view(limits, view), dimension,
            _check_callable(key_func, "key_func", view), _check_cost(cost, view),
            _check_callable(exempt_when, "exempt_when", view),
            _check_callable(deduct_when, "deduct_when", view),
            _check_callable(on_breach, "on_breach", view),
            None if methods is None else frozenset(m.upper() for m in methods),
        )

    def applies(self, request: Any, method: str) -> bool:
        if self.methods is not None and method not in self.methods:
            return False
        return self.exempt_when is None or not self.exempt_when(request)

    def cost_for(self, request: Any) -> int:
        cost = self.cost(request) if callable(self.cost) else self.cost
        if isinstance(cost, bool) or not isinstance(cost, int) or cost < 0:
            raise ConfigurationError(f"cost callable returned {cost!r}, expected an int >= 0")
        return cost


@dataclass
class _Group:
    """Rules sharing one key function and one way of counting (now or after the view)."""

    key_func: Optional[Callable[[Any], Any]]
    deferred: bool
    rules: list[Rule]
    limiter: MultiRateLimiter


@dataclass
class _Pending:
    """A deferred group's charge, made after the view if ``deduct_when`` says so."""

    group: _Group
    key: str
    costs: dict[Rule, int]


@dataclass
class Decision:
    """The outcome for one request: ``result`` to advertise in headers (the most
    restrictive), and when rejected the ``breach`` rule whose ``on_breach`` may answer."""

    allowed: bool
    result: Optional[RateLimitResult]
    breach: Optional[Rule] = None
    pending: list[_Pending] = field(default_factory=list)


def _most_restrictive(results: Sequence[RateLimitResult]) -> Optional[RateLimitResult]:
    if not results:
        return None
    return min(results, key=lambda r: (r.remaining, -r.reset_after))


def _refusing_rule(group: _Group, result: RateLimitResult,
                   active: dict[Rule, int]) -> Optional[Rule]:
    """The first active rule of ``group`` that ``result`` (a multi result) refused."""
    refused = {entry["dimension"] for entry in result.metadata.get("limits", ())
               if not entry["allowed"]}
    for rule in group.rules:
        if rule in active and rule.dimension in refused:
            return rule
    return None


class Decider:
    """Decides requests for one view against its rules on one backend.

    Args:
        rules: The view's rules (decoration order).
        backend: Where the counters live.
        algorithm: Any algorithm ``MultiRateLimiter`` accepts.
        view: The view's name, for error messages.
        default_key_func: ``(request) -> str`` for rules without their own.
        clock: Passed to every limiter (tests).
        alerts: Near-limit alerts for every counted decision (``None``: off).
    """

    def __init__(self, rules: Sequence[Rule], backend: Any, algorithm: Any, view: str,
                 default_key_func: Callable[[Any], Any],
                 clock: Optional[Callable[[], float]] = None,
                 alerts: Optional[NearLimitAlerts] = None) -> None:
        self.view = view
        self.alerts = alerts
        self.default_key_func = default_key_func
        self.backend = backend
        groups: dict[tuple[int, bool], list[Rule]] = {}
        funcs: dict[int, Optional[Callable[[Any], Any]]] = {}
        for rule in rules:
            ident = id(rule.key_func)
            funcs[ident] = rule.key_func
            groups.setdefault((ident, rule.deduct_when is not None), []).append(rule)
        self.groups = [
            _Group(funcs[ident], deferred, members, MultiRateLimiter(
                backend, self._dimensions(members), algorithm, clock=clock))
            for (ident, deferred), members in groups.items()
        ]

    @staticmethod
    def _dimensions(rules: list[Rule]) -> dict[str, list[Limit]]:
        dims: dict[str, list[Limit]] = {}
        for rule in rules:
            dims.setdefault(rule.dimension, []).extend(rule.limits)
        return dims

    def _plan(self, request: Any, method: str, key: Optional[str]
              ) -> list[tuple[_Group, str, dict[Rule, int]]]:
        """For each group with an applicable rule: its key and each active rule's cost.
        ``key``, when given, is the default key function's answer, computed by the caller."""
        keys: dict[int, str] = {} if key is None else {id(None): key}
        plan = []
        for group in self.groups:
            active = {rule: rule.cost_for(request) for rule in group.rules
                      if rule.applies(request, method)}
            active = {rule: cost for rule, cost in active.items() if cost > 0}
            if not active:
                continue
            ident = id(group.key_func)
            if ident not in keys:
                func = group.key_func or self.default_key_func
                keys[ident] = call_key_func(func, request, self.view)
            plan.append((group, keys[ident], active))
        return plan

    @staticmethod
    def _costs(active: dict[Rule, int]) -> dict[str, int]:
        costs: dict[str, int] = {}
        for rule, cost in active.items():
            costs[rule.dimension] = costs.get(rule.dimension, 0) + cost
        return costs

    def _judge(self, group: _Group, key: str, active: dict[Rule, int],
               result: RateLimitResult, decision: Decision) -> bool:
        if result.allowed or (group.deferred and _refusing_rule(group, result, active) is None):
            if group.deferred:
                decision.pending.append(_Pending(group, key, active))
            return True
        decision.allowed = False
        decision.result = result
        decision.breach = _refusing_rule(group, result, active) or next(iter(active))
        return False

    def decide(self, request: Any, method: str, key: Optional[str] = None) -> Decision:
        """Decide ``request`` (sync). Raises ``KeyFuncError`` for a broken key function."""
        decision = Decision(True, None)
        results = []
        for group, group_key, active in self._plan(request, method, key):
            if group.deferred:
                result = group.limiter.peek(group_key)
            else:
                result = group.limiter.is_allowed(group_key, self._costs(active))
                if self.alerts is not None:
                    self.alerts.notify(group_key, result, group.limiter)
            results.append(result)
            if not self._judge(group, group_key, active, result, decision):
                return decision
        decision.result = _most_restrictive(results)
        return decision

    async def decide_async(self, request: Any, method: str, key: Optional[str] = None
                           ) -> Decision:
        """:meth:`decide` for asyncio code: never blocks the event loop (memory decides
        directly, ``AsyncRedisBackend`` is awaited, anything else runs in an executor)."""
        decision = Decision(True, None)
        results = []
        for group, group_key, active in self._plan(request, method, key):
            if group.deferred:
                result = await group.limiter.peek_async(group_key)
            else:
                result = await group.limiter.is_allowed_async(group_key,
                                                               self._costs(active))
                if self.alerts is not None:
                    await self.alerts.notify_async(group_key, result, group.limiter)
            results.append(result)
            if not self._judge(group, group_key, active, result, decision):
                return decision
        decision.result = _most_restrictive(results)
        return decision

    @staticmethod
    def _charges(pending: _Pending, response: Any) -> dict[str, int]:
        charged = {rule: cost for rule, cost in pending.costs.items()
                   if rule.deduct_when is not None and rule.deduct_when(response)}
        return Decider._costs(charged)

    def settle(self, decision: Decision, response: Any) -> Optional[RateLimitResult]:
        """Charge deferred rules whose ``deduct_when(response)`` is true; the state after
        the last charge (for headers), or ``None`` if nothing was charged."""
        last = None
        for pending in decision.pending:
            costs = self._charges(pending, response)
            if costs:
                last = pending.group.limiter.adjust(pending.key, costs)
                if self.alerts is not None:
                    self.alerts.notify(pending.key, last, pending.group.limiter)
        return last

    async def settle_async(self, decision: Decision, response: Any) -> Optional[RateLimitResult]:
        """:meth:`settle` for asyncio code."""
        last = None
        for pending in decision.pending:
            costs = self._charges(pending, response)
            if costs:
                last = await pending.group.limiter.adjust_async(pending.key, costs)
                if self.alerts is not None:
                    await self.alerts.notify_async(pending.key, last, pending.group.limiter)
        return last

    # ------------------------------------------------------------------ usage reports

    def _peek_plan(self, request: Any, key: Optional[str]
                   ) -> list[tuple[_Group, str, set[str]]]:
        """Groups with a rule that applies to this client (its ``exempt_when`` is false for
        the usage request; ``methods`` are ignored: the limit applies on those methods),
        each with the client's key and the dimensions of those rules."""
        keys: dict[int, str] = {} if key is None else {id(None): key}
        plan = []
        for group in self.groups:
            dims = {rule.dimension for rule in group.rules
                    if rule.exempt_when is None or not rule.exempt_when(request)}
            if not dims:
                continue
            ident = id(group.key_func)
            if ident not in keys:
                func = group.key_func or self.default_key_func
                keys[ident] = call_key_func(func, request, self.view)
            plan.append((group, keys[ident], dims))
        return plan

    def usage(self, request: Any, key: Optional[str] = None
              ) -> list[tuple[MultiRateLimiter, str, RateLimitResult, set[str]]]:
        """``[(limiter, client key, peeked result, dimensions)]`` for the usage report;
        nothing is consumed. Raises ``KeyFuncError`` for a broken key function."""
        return [(group.limiter, group_key, group.limiter.peek(group_key), dims)
                for group, group_key, dims in self._peek_plan(request, key)]

    async def usage_async(self, request: Any, key: Optional[str] = None
                          ) -> list[tuple[MultiRateLimiter, str, RateLimitResult, set[str]]]:
        """:meth:`usage` for asyncio code."""
        return [(group.limiter, group_key, await group.limiter.peek_async(group_key), dims)
                for group, group_key, dims in self._peek_plan(request, key)]

"""Flask: per-view rate limits as an extension, Flask-Limiter style.

::

    from ratelimiter.integrations.flask import FlaskRateLimiter

    limiter = FlaskRateLimiter(default_limits="200/hour")   # app factory friendly
    limiter.init_app(app)

    @app.post("/login")
    @limiter.limit("3/minute", deduct_when=lambda response: response.status_code == 401)
    def login(): ...

    @app.get("/search")
    @limiter.shared_limit("100/hour", scope="search")
    @limiter.limit("5/second")
    def search(): ...

    @app.get("/health")
    @limiter.exempt
    def health(): ...

* Every view without its own ``@limit``/``@shared_limit`` gets ``default_limits``, counted
  per view (like Flask-Limiter). Stacked decorators on one view are decided together,
  all or nothing, through one :class:`~ratelimiter.multi.MultiRateLimiter` (per key
  function): a rejection by one limit consumes from none.
* ``key_func(request) -> str`` (default: the peer address, ``REMOTE_ADDR``; behind your own
  proxy use ``lambda r: wsgi_ip_func(trusted_proxies=[...])(r.environ)``).
* ``exempt_when(request) -> bool`` skips a rule for this request; ``deduct_when(response)
  -> bool`` counts a request only when it returns true (the check before the view is a
  ``peek``; see :mod:`ratelimiter.integrations._views` for the race this allows);
  ``on_breach(request, result)`` may return a response to send instead of the 429.
* A rejection is the shared 429 (:class:`~ratelimiter.integrations._policy.ResponsePolicy`);
  admitted responses of limited views get the rate-limit headers (those the view set
  itself are kept).
* ``limit``/``shared_limit``/``exempt`` also take a ``Blueprint``: its rules apply to every
  view of the blueprint that has none of its own.

Configuration read by :meth:`FlaskRateLimiter.init_app` when the constructor did not set
it: ``RATELIMIT_STORAGE_URI`` (see :func:`~ratelimiter.storage_uri.backend_from_uri`,
default ``memory://``), ``RATELIMIT_DEFAULT``, ``RATELIMIT_HEADERS``, ``RATELIMIT_ALGORITHM``,
``RATELIMIT_ENABLED`` (default true), ``RATELIMIT_USAGE_PATH``.

``usage_path="/rate_limit"`` answers ``GET``/``HEAD`` on that path with the caller's own
quotas as JSON (``405`` for other methods), peeked and never counted: one resource per
limit of every view that applies to the caller (named ``"<route> <limit>"``, or
``"shared:<scope> <limit>"`` for a shared scope), with ``limit``, ``remaining``, ``reset``,
``policy``... (see :mod:`ratelimiter._usage`). Rules whose ``exempt_when`` is true for the
usage request are left out. The key is never echoed; no other client's is read.

``on_near_limit(key, result)`` is called once per key per limit per window when usage
reaches ``near_limit_ratio`` (default 0.8) of that limit; ``result`` is that limit's,
``result.metadata["policy"]`` its text (see :mod:`ratelimiter.integrations._quota`).

With a memory store every worker process counts on its own: under gunicorn ``-w N`` a client
gets N times the limit (a warning is logged once per worker). Use ``sqlite:///…`` or
``redis://…`` for a shared count.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Optional, TypeVar, Union

from flask import Blueprint, Flask, Response, current_app, g, request

from .._usage import METHOD_NOT_ALLOWED_BODY, USAGE_METHODS, check_usage_path, usage_headers
from ..exceptions import ConfigurationError
from ..key_funcs import wsgi_peer
from ..limits import Limit, LimitSpec
from ..storage_uri import backend_from_uri
from ._policy import (
    KEY_ERROR_BODY,
    HeaderStyle,
    KeyFuncError,
    ResponsePolicy,
    check_header_style,
    log_key_error_once,
    warn_if_memory_in_worker,
)
from ._quota import NearLimitAlerts, UsageReport, near_limit_alerts
from ._views import Decider, Decision, Rule, parse_for_view

__all__ = ["FlaskRateLimiter"]

F = TypeVar("F", bound=Callable[..., Any])
Target = Union[Callable[..., Any], Blueprint]

_EXTENSION = "ratelimiter"


def _peer(req: Any) -> str:
    return wsgi_peer(req.environ)


def _name(target: Target) -> str:
    if isinstance(target, Blueprint):
        return f"blueprint {target.name!r}"
    module = getattr(target, "__module__", "?")
    return f"view {module}.{getattr(target, '__qualname__', repr(target))}"


class _AppState:
    """What one app needs: its store, its defaults, and each view's decider (built on the
    view's first request, so decorators may run before ``init_app``)."""

    def __init__(self, backend: Any, default_limits: Optional[list[Limit]], algorithm: Any,
                 policy: ResponsePolicy, enabled: bool, usage_path: Optional[str],
                 alerts: Optional[NearLimitAlerts]) -> None:
        self.backend = backend
        self.usage_path = usage_path
        self.alerts = alerts
        self.default_limits = default_limits
        self.algorithm = algorithm
        self.policy = policy
        self.enabled = enabled
        self.deciders: dict[str, Optional[Decider]] = {}
        self.lock = threading.Lock()


class FlaskRateLimiter:
    """Rate limits for Flask views (see the module docstring).

    Args:
        app: The app, or ``None`` to call :meth:`init_app` later (app factories).
        backend: Where counters live (default: ``RATELIMIT_STORAGE_URI`` or a
            ``MemoryBackend``).
        default_limits: Limits for every view without its own, e.g. ``"10/second;1000/day"``.
        key_func: ``(request) -> str``; default the peer address.
        algorithm: Any algorithm ``MultiRateLimiter`` accepts (default
            ``"sliding_window_counter"``; ``"sliding_window"`` is exact, ``"token_bucket"``
            smooth).
        headers: ``"x-ratelimit"`` (default), ``"ietf"``, ``"both"`` or ``"none"``.
        on_breach: Default ``(request, result) -> response | None`` for every rule.
        clock: Zero-argument callable returning seconds (tests); default ``time.time``.
        usage_path: Exact path answering the caller's quotas as JSON (default:
            ``RATELIMIT_USAGE_PATH``, else off).
        on_near_limit: ``(key, result) -> None``, once per key per limit per window when
            usage reaches ``near_limit_ratio`` of that limit. Runs on the request path:
            queue the e-mail, don't send it; an exception is logged, never raised.
        near_limit_ratio: In (0, 1] (default 0.8).

    Raises:
        ConfigurationError: for a bad limit string (naming where it came from), header style
            or storage URI.
        ValueError, TypeError: for a bad ``usage_path``, ``near_limit_ratio`` or
            ``on_near_limit``.
    """

    def __init__(
        self,
        app: Optional[Flask] = None,
        *,
        backend: Any = None,
        default_limits: Optional[LimitSpec] = None,
        key_func: Optional[Callable[[Any], str]] = None,
        algorithm: Any = "sliding_window_counter",
        headers: Optional[HeaderStyle] = None,
        on_breach: Optional[Callable[[Any, Any], Any]] = None,
        clock: Optional[Callable[[], float]] = None,
        usage_path: Optional[str] = None,
        on_near_limit: Optional[Callable[[str, Any], Any]] = None,
        near_limit_ratio: float = 0.8,
    ) -> None:
        self.backend = backend
        self.usage_path = check_usage_path(usage_path)
        # Checked now; each app gets its own tracker in init_app.
        self._near: Optional[NearLimitAlerts] = near_limit_alerts(on_near_limit,
                                                                  near_limit_ratio)
        self.default_limits = (None if default_limits is None
                               else parse_for_view(default_limits, "default_limits"))
        self.key_func: Callable[[Any], str] = key_func or _peer
        self.algorithm = algorithm
        self.header_style = headers
        if headers is not None:
            check_header_style(headers, "headers")
        self.on_breach = on_breach
        self.clock = clock
        self._rules: dict[Any, list[Rule]] = {}   # view function or blueprint name -> rules
        self._exempt: set[Any] = set()            # view functions and blueprint names
        if app is not None:
            self.init_app(app)

    # ------------------------------------------------------------------ setup

    def init_app(self, app: Flask) -> None:
        """Attach to ``app``: read its config and decide every request before its view."""
        config = app.config
        backend = self.backend
        if backend is None:
            backend = backend_from_uri(str(config.get("RATELIMIT_STORAGE_URI", "memory://")))
        defaults = self.default_limits
        if defaults is None and config.get("RATELIMIT_DEFAULT"):
            defaults = parse_for_view(config["RATELIMIT_DEFAULT"], "RATELIMIT_DEFAULT")
        style = self.header_style or config.get("RATELIMIT_HEADERS", "x-ratelimit")
        policy = ResponsePolicy(check_header_style(style, "RATELIMIT_HEADERS"))
        algorithm = config.get("RATELIMIT_ALGORITHM", self.algorithm)
        usage_path = self.usage_path
        if usage_path is None:
            try:
                usage_path = check_usage_path(config.get("RATELIMIT_USAGE_PATH"))
            except (TypeError, ValueError) as exc:
                raise ConfigurationError(f"RATELIMIT_USAGE_PATH: {exc}") from exc
        app.extensions[_EXTENSION] = _AppState(
            backend, defaults, algorithm, policy, bool(config.get("RATELIMIT_ENABLED", True)),
            usage_path,
            None if self._near is None
            else NearLimitAlerts(self._near.callback, self._near.tracker.ratio))
        app.before_request(self._before_request)
        app.after_request(self._after_request)

    # ------------------------------------------------------------------ decorators

    def limit(
        self,
        limits: LimitSpec,
        *,
        key_func: Optional[Callable[[Any], str]] = None,
        cost: Union[int, Callable[[Any], int]] = 1,
        exempt_when: Optional[Callable[[Any], bool]] = None,
        deduct_when: Optional[Callable[[Any], bool]] = None,
        on_breach: Optional[Callable[[Any, Any], Any]] = None,
        methods: Optional[list[str]] = None,
    ) -> Callable[[F], F]:
        """Limit a view (or every view of a blueprint) by its own counters.

        Stack several to enforce several limits; they are decided together. The limit
        string is parsed now: a bad one raises ``ConfigurationError`` naming the view.
        """
        return self._decorator(limits, None, key_func=key_func, cost=cost,
                               exempt_when=exempt_when, deduct_when=deduct_when,
                               on_breach=on_breach, methods=methods)

    def shared_limit(
        self,
        limits: LimitSpec,
        scope: str,
        *,
        key_func: Optional[Callable[[Any], str]] = None,
        cost: Union[int, Callable[[Any], int]] = 1,
        exempt_when: Optional[Callable[[Any], bool]] = None,
        deduct_when: Optional[Callable[[Any], bool]] = None,
        on_breach: Optional[Callable[[Any, Any], Any]] = None,
        methods: Optional[list[str]] = None,
    ) -> Callable[[F], F]:
        """Limit a view by counters shared with every view naming the same ``scope``."""
        if not isinstance(scope, str) or not scope:
            raise ConfigurationError(f"shared_limit: scope must be a non-empty str, got {scope!r}")
        return self._decorator(limits, scope, key_func=key_func, cost=cost,
                               exempt_when=exempt_when, deduct_when=deduct_when,
                               on_breach=on_breach, methods=methods)

    def exempt(self, target: F) -> F:
        """Never limit this view (or any view of this blueprint), defaults included."""
        self._exempt.add(target.name if isinstance(target, Blueprint) else target)
        return target

    def _decorator(self, limits: LimitSpec, scope: Optional[str], **options: Any
                   ) -> Callable[[F], F]:
        def decorate(target: F) -> F:
            name = _name(target)
            ident = target.name if isinstance(target, Blueprint) else target
            # Numbered from the innermost decorator, so adding one on top keeps the counters
            # of the others.
            number = len(self._rules.get(ident, ()))
            dimension = (f"shared:{scope}" if scope is not None
                         else f"{name.replace(' ', ':')}:{number}")
            rule = Rule.build(limits, dimension, name, **options)
            self._rules.setdefault(ident, []).insert(0, rule)  # decorators apply bottom-up
            return target

        return decorate

    # ------------------------------------------------------------------ per request

    def _decider(self, state: _AppState, endpoint: Optional[str]) -> Optional[Decider]:
        if endpoint is None:  # 404s and the like: no view, nothing to limit
            return None
        decider = state.deciders.get(endpoint)
        if decider is not None or endpoint in state.deciders:
            return decider
        with state.lock:
            if endpoint not in state.deciders:
                state.deciders[endpoint] = self._build(state, endpoint)
            return state.deciders[endpoint]

    def _build(self, state: _AppState, endpoint: str) -> Optional[Decider]:
        view = current_app.view_functions.get(endpoint)
        blueprints = _blueprints(endpoint)  # innermost first, as request.blueprints
        if view in self._exempt or any(bp in self._exempt for bp in blueprints):
            return None
        rules = self._rules.get(view)
        if rules is None:
            rules = next((self._rules[bp] for bp in blueprints if bp in self._rules), None)
        if rules is None:
            # Static files are not views a client can abuse; limit them explicitly if needed.
            if state.default_limits is None or endpoint.rsplit(".", 1)[-1] == "static":
                return None
            rules = [Rule(state.default_limits, f"default:{endpoint}")]
        if self.on_breach is not None:
            rules = [rule if rule.on_breach else _with_on_breach(rule, self.on_breach)
                     for rule in rules]
        return Decider(rules, state.backend, state.algorithm, f"endpoint {endpoint!r}",
                       self.key_func, self.clock, state.alerts)

    def _usage(self, state: _AppState) -> Response:
        """The caller's quotas for every limited view, peeked (never counted)."""
        if request.method not in USAGE_METHODS:
            headers = usage_headers(METHOD_NOT_ALLOWED_BODY) + [("Allow", "GET, HEAD")]
            return Response(METHOD_NOT_ALLOWED_BODY, 405, headers=headers)
        report = UsageReport()
        url_map = current_app.url_map
        for endpoint in list(current_app.view_functions):
            decider = self._decider(state, endpoint)
            if decider is None:
                continue
            routes = [rule.rule for rule in url_map.iter_rules(endpoint)] or [endpoint]
            try:
                entries = decider.usage(request)
            except KeyFuncError as exc:  # that view's limits are left out, not the report
                log_key_error_once(exc)
                continue
            for limiter, key, result, dims in entries:
                for dim in sorted(dims):
                    label = dim if dim.startswith("shared:") else routes[0]
                    report.add(label, routes, limiter, key, result, {dim})
        body = report.body()
        return Response(body, 200, headers=usage_headers(body))

    def _before_request(self) -> Any:
        state: Optional[_AppState] = current_app.extensions.get(_EXTENSION)
        if state is None or not state.enabled:
            return None
        if state.usage_path is not None and request.path == state.usage_path:
            return self._usage(state)
        decider = self._decider(state, request.endpoint)
        if decider is None:
            return None
        warn_if_memory_in_worker(state.backend)
        try:
            decision = decider.decide(request, request.method)
        except KeyFuncError as exc:
            log_key_error_once(exc)
            return Response(KEY_ERROR_BODY, 500, content_type="application/json")
        g._ratelimiter = (decider, decision)
        if decision.allowed:
            return None
        result = decision.result
        assert result is not None
        breach = decision.breach
        if breach is not None and breach.on_breach is not None:
            custom = breach.on_breach(request, result)
            if custom is not None:
                response = current_app.make_response(custom)
                _add_missing(response, state.policy.headers(result))
                return response
        rejection = state.policy.rejection(result)
        return Response(rejection.body, rejection.status, headers=rejection.headers)

    def _after_request(self, response: Response) -> Response:
        entry: Optional[tuple[Decider, Decision]] = g.pop("_ratelimiter", None)
        if entry is None:
            return response
        decider, decision = entry
        if not decision.allowed:
            return response
        result = decider.settle(decision, response) or decision.result
        state: _AppState = current_app.extensions[_EXTENSION]
        if result is not None:
            _add_missing(response, state.policy.headers(result))
        return response


def _blueprints(endpoint: str) -> list[str]:
    """The blueprints of ``endpoint``, innermost first (``"a.b.view"`` -> ``["a.b", "a"]``),
    as Flask's ``request.blueprints`` lists them for a request routed there."""
    name = endpoint.rpartition(".")[0]
    out = []
    while name:
        out.append(name)
        name = name.rpartition(".")[0]
    return out


def _with_on_breach(rule: Rule, on_breach: Callable[[Any, Any], Any]) -> Rule:
    return Rule(rule.limits, rule.dimension, rule.key_func, rule.cost, rule.exempt_when,
                rule.deduct_when, on_breach, rule.methods)


def _add_missing(response: Response, headers: dict[str, str]) -> None:
    for name, value in headers.items():
        if name not in response.headers:
            response.headers[name] = value

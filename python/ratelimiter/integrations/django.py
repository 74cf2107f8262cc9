"""Django: a rate-limit middleware and a view decorator (``pip install smart-ratelimiter[django]``).

settings.py::

    MIDDLEWARE = [..., "ratelimiter.integrations.django.RateLimitMiddleware"]
    RATELIMITER = {
        "BACKEND": "redis://127.0.0.1:6379/0",   # any backend_from_uri URI; default memory://
        "DEFAULT_LIMITS": "100/minute;5000/day",  # every request, per client; optional
        "KEY": "ip",                 # "ip", "user" (user id, else IP), or "dotted.path.func"
        "EXEMPT_PATHS": ["/health", "/static/*"],
        "HEADERS": "x-ratelimit",    # "ietf", "both", "none"
        "ALGORITHM": "sliding_window_counter",
        "USAGE_PATH": "/rate_limit",  # the caller's own quotas as JSON; default off
        "ON_NEAR_LIMIT": "myapp.alerts.quota_warning",  # (key, result); or a callable
        "NEAR_LIMIT_RATIO": 0.8,
    }

views.py::

    from ratelimiter.integrations.django import ratelimit

    @ratelimit("5/minute", key="ip", method=("POST",))
    def login(request): ...

    @method_decorator(ratelimit("10/minute", key="user"), name="dispatch")
    class ProfileView(View): ...

* The middleware applies ``DEFAULT_LIMITS`` to every request not in ``EXEMPT_PATHS`` (one
  counter set per client for the whole site; without ``DEFAULT_LIMITS`` it only adds
  nothing and may be left out). ``@ratelimit`` limits one view with its own counters
  (``scope=`` shares them between views). Both work with sync and async views and under
  WSGI and ASGI.
* ``key``: ``"ip"`` (the peer address, ``REMOTE_ADDR``), ``"user"`` (``"user:<pk>"`` for an
  authenticated user, else the IP), a dotted path to, or a callable ``(request) -> str``.
* ``deduct_when(response) -> bool`` counts a request only when true (before the view only a
  ``peek``); ``on_breach(request, result)`` may return a response instead of the 429;
  ``exempt_when(request) -> bool`` skips the limit.
* A rejection is the shared 429 (``{"error": "rate limit exceeded"}``, ``Retry-After``,
  rate-limit headers); admitted responses get the headers too.

* ``USAGE_PATH`` (needs the middleware): ``GET``/``HEAD`` there answers the caller's own
  quotas as JSON (``405`` for other methods), peeked and never counted: one resource per
  limit, ``"default <limit>"`` for ``DEFAULT_LIMITS``, ``"<view> <limit>"`` for each
  ``@ratelimit`` view (``"shared:<scope> <limit>"`` for a scope), with ``limit``,
  ``remaining``, ``reset``, ``policy``... (see :mod:`ratelimiter._usage`). Views decorated
  through ``method_decorator`` are listed once they have served a request in the
  process. The key is never echoed; no other client's is read.
* ``ON_NEAR_LIMIT(key, result)`` is called once per key per limit per window when usage
  reaches ``NEAR_LIMIT_RATIO`` (default 0.8) of that limit (``result`` is that limit's,
  ``result.metadata["policy"]`` its text); for the middleware's and every view's limits.
* ``CLOCK``: a zero-argument callable returning seconds, for tests (default the system
  clock).

With the memory store every worker process counts on its own (gunicorn ``-w N``: N times the
limit; a warning is logged once per worker): use Redis or SQLite in production.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
from collections.abc import Sequence
from typing import Any, Callable, Optional, TypeVar, Union, cast

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.core.signals import setting_changed
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils.module_loading import import_string

from .._routes import RouteTable
from .._usage import METHOD_NOT_ALLOWED_BODY, USAGE_METHODS, check_usage_path, usage_headers
from ..exceptions import ConfigurationError, ConfigurationTypeError
from ..key_funcs import wsgi_peer
from ..limits import Limit, LimitSpec
from ..storage_uri import backend_from_uri
from ._policy import (
    KEY_ERROR_BODY,
    KeyFuncError,
    ResponsePolicy,
    check_header_style,
    log_key_error_once,
    warn_if_memory_in_worker,
)
from ._quota import UsageReport, near_limit_alerts
from ._views import Decider, Decision, Rule, parse_for_view

__all__ = ["RateLimitMiddleware", "ratelimit"]

F = TypeVar("F", bound=Callable[..., Any])
KeySpec = Union[str, Callable[[HttpRequest], str]]

_SETTING = "RATELIMITER"
_KNOWN = {"BACKEND", "DEFAULT_LIMITS", "KEY", "EXEMPT_PATHS", "HEADERS", "ALGORITHM",
          "USAGE_PATH", "ON_NEAR_LIMIT", "NEAR_LIMIT_RATIO", "CLOCK"}


def ip_key(request: HttpRequest) -> str:
    """The peer address (``X-Forwarded-For`` is not trusted: behind your own proxy pass a
    key function built on :func:`~ratelimiter.key_funcs.wsgi_ip_func` with
    ``trusted_proxies``)."""
    return wsgi_peer(request.META)


def user_key(request: HttpRequest) -> str:
    """``"user:<pk>"`` for an authenticated user, else the peer address."""
    user = getattr(request, "user", None)
    if user is not None and getattr(user, "is_authenticated", False):
        return f"user:{user.pk}"
    return ip_key(request)


def _key_func(spec: object, where: str) -> Callable[[HttpRequest], str]:
    if spec == "ip":
        return ip_key
    if spec == "user":
        return user_key
    if callable(spec):
        return cast(Callable[[HttpRequest], str], spec)
    if isinstance(spec, str) and "." in spec:
        try:
            func = import_string(spec)
        except ImportError as exc:
            raise ConfigurationError(f"{where}: cannot import {spec!r}: {exc}") from exc
        if not callable(func):
            raise ConfigurationTypeError(f"{where}: {spec!r} is not callable")
        return cast(Callable[[HttpRequest], str], func)
    raise ConfigurationError(
        f"{where} must be 'ip', 'user', a dotted path or a callable, got {spec!r}")


class _Config:
    """``settings.RATELIMITER``, checked once (and again when a test overrides it)."""

    def __init__(self, raw: object) -> None:
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ConfigurationTypeError(f"settings.{_SETTING} must be a dict, got "
                                         f"{type(raw).__name__}")
        unknown = set(raw) - _KNOWN
        if unknown:
            raise ConfigurationError(f"settings.{_SETTING}: unknown option(s) "
                                     f"{', '.join(sorted(map(str, unknown)))}")
        self.backend = backend_from_uri(str(raw.get("BACKEND", "memory://")))
        limits = raw.get("DEFAULT_LIMITS")
        self.default_limits: Optional[list[Limit]] = (
            None if not limits
            else parse_for_view(limits, f"settings.{_SETTING}['DEFAULT_LIMITS']"))
        self.key_func = _key_func(raw.get("KEY", "ip"), f"settings.{_SETTING}['KEY']")
        paths = raw.get("EXEMPT_PATHS", ())
        if isinstance(paths, str):
            paths = (paths,)
        self.exempt_paths: RouteTable[bool] = RouteTable.from_patterns(
            paths, True, param=f"settings.{_SETTING}['EXEMPT_PATHS']")
        self.policy = ResponsePolicy(check_header_style(
            raw.get("HEADERS", "x-ratelimit"), f"settings.{_SETTING}['HEADERS']"))
        self.algorithm = raw.get("ALGORITHM", "sliding_window_counter")
        where = f"settings.{_SETTING}"
        try:
            self.usage_path = check_usage_path(raw.get("USAGE_PATH"))
            callback = raw.get("ON_NEAR_LIMIT")
            if isinstance(callback, str):
                callback = _import(callback, f"{where}['ON_NEAR_LIMIT']")
            self.alerts = near_limit_alerts(callback, raw.get("NEAR_LIMIT_RATIO", 0.8))
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"{where}: {exc}") from exc
        clock = raw.get("CLOCK")
        if clock is not None and not callable(clock):
            raise ConfigurationTypeError(f"{where}['CLOCK'] must be callable, got "
                                         f"{type(clock).__name__}")
        self.clock = clock
        self.middleware_decider = None if self.default_limits is None else Decider(
            [Rule(self.default_limits, "site")], self.backend, self.algorithm,
            f"settings.{_SETTING}['DEFAULT_LIMITS']", self.key_func, clock, self.alerts)


def _import(path: str, where: str) -> Any:
    try:
        return import_string(path)
    except ImportError as exc:
        raise ConfigurationError(f"{where}: cannot import {path!r}: {exc}") from exc


_config_cache: Optional[_Config] = None
_config_lock = threading.Lock()
_generation = 0  # bumped when settings change, so decorators rebuild their deciders


def _config() -> _Config:
    global _config_cache
    config = _config_cache
    if config is None:
        with _config_lock:
            if _config_cache is None:
                _config_cache = _Config(getattr(settings, _SETTING, None))
            config = _config_cache
    return config


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    global _config_cache, _generation
    if setting == _SETTING:
        with _config_lock:
            _config_cache = None
            _generation += 1


setting_changed.connect(_on_setting_changed)


# ---------------------------------------------------------------------------- responses


def _rejection(policy: ResponsePolicy, rule: Optional[Rule], request: HttpRequest,
               decision: Decision) -> HttpResponseBase:
    result = decision.result
    assert result is not None
    if rule is not None and rule.on_breach is not None:
        custom = rule.on_breach(request, result)
        if custom is not None:
            _add_missing(custom, policy.headers(result))
            return cast(HttpResponseBase, custom)
    rejection = policy.rejection(result)
    response = HttpResponse(rejection.body, status=rejection.status)
    for name, value in rejection.headers:
        response[name] = value
    return response


def _key_error(exc: KeyFuncError) -> HttpResponse:
    log_key_error_once(exc)
    return HttpResponse(KEY_ERROR_BODY, status=500, content_type="application/json")


def _add_missing(response: Any, headers: dict[str, str]) -> None:
    for name, value in headers.items():
        if not response.has_header(name):
            response[name] = value


def _finish(policy: ResponsePolicy, decider: Decider, decision: Decision,
            response: Any, settled: Any) -> Any:
    result = settled or decision.result
    if result is not None and isinstance(response, HttpResponseBase):
        _add_missing(response, policy.headers(result))
    return response


# ---------------------------------------------------------------------------- middleware


class RateLimitMiddleware:
    """``settings.RATELIMITER["DEFAULT_LIMITS"]`` for every request (see the module
    docstring). Works in sync and async middleware chains."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self._async = iscoroutinefunction(get_response)
        if self._async:
            markcoroutinefunction(self)
        _config()  # a misconfiguration fails at startup, not on the first request

    def _decider(self, request: HttpRequest) -> tuple[_Config, Optional[Decider]]:
        config = _config()
        decider = config.middleware_decider
        if decider is None or request.method == "OPTIONS":
            return config, None
        method = str(request.method or "GET")
        if config.exempt_paths and config.exempt_paths.lookup(method, request.path) is not None:
            return config, None
        warn_if_memory_in_worker(config.backend)
        return config, decider

    def __call__(self, request: HttpRequest) -> Any:
        if self._async:
            return self.__acall__(request)
        config = _config()
        if config.usage_path is not None and request.path == config.usage_path:
            return _usage(config, request)
        config, decider = self._decider(request)
        if decider is None:
            return self.get_response(request)
        try:
            decision = decider.decide(request, str(request.method))
        except KeyFuncError as exc:
            return _key_error(exc)
        if not decision.allowed:
            return _rejection(config.policy, None, request, decision)
        return _finish(config.policy, decider, decision, self.get_response(request), None)

    async def __acall__(self, request: HttpRequest) -> Any:
        config = _config()
        if config.usage_path is not None and request.path == config.usage_path:
            return await _usage_async(config, request)
        config, decider = self._decider(request)
        if decider is None:
            return await self.get_response(request)
        try:
            decision = await decider.decide_async(request, str(request.method))
        except KeyFuncError as exc:
            return _key_error(exc)
        if not decision.allowed:
            return _rejection(config.policy, None, request, decision)
        response = await self.get_response(request)
        return _finish(config.policy, decider, decision, response, None)


# ---------------------------------------------------------------------------- usage


def _usage_sources(config: _Config) -> list[tuple[str, Decider]]:
    """``(label, decider)`` for the site-wide defaults and every decorated view."""
    sources = []
    if config.middleware_decider is not None:
        sources.append(("default", config.middleware_decider))
    with _registry_lock:
        states = list(_registry.values())
    sources.extend((state.label, state.get()[1]) for state in states)
    return sources


def _usage_response(report: UsageReport, request: HttpRequest) -> HttpResponse:
    body = report.body()
    response = HttpResponse(b"" if request.method == "HEAD" else body, status=200)
    for name, value in usage_headers(body):
        response[name] = value
    return response


def _not_allowed() -> HttpResponse:
    response = HttpResponse(METHOD_NOT_ALLOWED_BODY, status=405)
    for name, value in usage_headers(METHOD_NOT_ALLOWED_BODY) + [("Allow", "GET, HEAD")]:
        response[name] = value
    return response


def _add(report: UsageReport, label: str, entries: Any) -> None:
    for limiter, key, result, dims in entries:
        for dim in sorted(dims):
            name = dim if dim.startswith("shared:") else label
            report.add(name, [label], limiter, key, result, {dim})


def _usage(config: _Config, request: HttpRequest) -> HttpResponse:
    """The caller's quotas, peeked (never counted)."""
    if request.method not in USAGE_METHODS:
        return _not_allowed()
    report = UsageReport()
    for label, decider in _usage_sources(config):
        try:
            entries = decider.usage(request)
        except KeyFuncError as exc:  # that view's limits are left out, not the report
            log_key_error_once(exc)
            continue
        _add(report, label, entries)
    return _usage_response(report, request)


async def _usage_async(config: _Config, request: HttpRequest) -> HttpResponse:
    if request.method not in USAGE_METHODS:
        return _not_allowed()
    report = UsageReport()
    for label, decider in _usage_sources(config):
        try:
            entries = await decider.usage_async(request)
        except KeyFuncError as exc:
            log_key_error_once(exc)
            continue
        _add(report, label, entries)
    return _usage_response(report, request)


# ---------------------------------------------------------------------------- decorator


def ratelimit(
    limits: LimitSpec,
    *,
    key: KeySpec = "ip",
    method: Optional[Union[str, Sequence[str]]] = None,
    cost: Union[int, Callable[[HttpRequest], int]] = 1,
    scope: Optional[str] = None,
    exempt_when: Optional[Callable[[HttpRequest], bool]] = None,
    deduct_when: Optional[Callable[[Any], bool]] = None,
    on_breach: Optional[Callable[[HttpRequest, Any], Any]] = None,
    backend: Any = None,
) -> Callable[[F], F]:
    """Limit a Django view (function, or class-based through ``method_decorator``).

    Args:
        limits: ``"5/minute"``, ``"10/second;1000/day"``, a ``Limit`` or a list of them.
        key: ``"ip"``, ``"user"``, a dotted path or a callable ``(request) -> str``.
        method: Only limit these methods (default: all), e.g. ``("POST",)``.
        cost: Units per request: an int or ``(request) -> int``.
        scope: Share counters with every view using the same scope (default: this view's
            own).
        exempt_when: ``(request) -> bool``: true skips the limit.
        deduct_when: ``(response) -> bool``: count the request only when true.
        on_breach: ``(request, result) -> HttpResponse | None``, instead of the 429.
        backend: Where counters live (default: ``settings.RATELIMITER["BACKEND"]``).

    Raises:
        ConfigurationError: for a bad limit string (naming the view), key, method or cost.
    """
    if scope is not None and (not isinstance(scope, str) or not scope):
        raise ConfigurationError(f"ratelimit: scope must be a non-empty str, got {scope!r}")
    key_func = None if key == "ip" else _key_func(key, "ratelimit(key=...)")
    methods = [method] if isinstance(method, str) else method

    def decorate(view: F) -> F:
        name = f"view {getattr(view, '__module__', '?')}." \
               f"{getattr(view, '__qualname__', type(view).__qualname__)}"
        rule = Rule.build(limits, "", name, key_func=key_func, cost=cost,
                          exempt_when=exempt_when, deduct_when=deduct_when,
                          on_breach=on_breach, methods=methods)
        # Stacked decorators on one view keep apart by their limits.
        own = f"{name.replace(' ', ':')}:{';'.join(map(str, rule.limits))}"
        rule = dataclasses.replace(rule, dimension=f"shared:{scope}" if scope else own)
        state = _DecoratorState(rule, backend, name,
                                getattr(view, "__qualname__", type(view).__qualname__))
        with _registry_lock:  # for usage reports (method_decorator: on each request)
            state = _registry.setdefault((name, rule.dimension), state)

        if iscoroutinefunction(view):
            @functools.wraps(view)
            async def async_wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                config, decider = state.get()
                try:
                    decision = await decider.decide_async(request, str(request.method))
                except KeyFuncError as exc:
                    return _key_error(exc)
                if not decision.allowed:
                    return _rejection(config.policy, decision.breach, request, decision)
                response = await view(request, *args, **kwargs)
                settled = await decider.settle_async(decision, response)
                return _finish(config.policy, decider, decision, response, settled)

            return cast(F, async_wrapper)

        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            config, decider = state.get()
            try:
                decision = decider.decide(request, str(request.method))
            except KeyFuncError as exc:
                return _key_error(exc)
            if not decision.allowed:
                return _rejection(config.policy, decision.breach, request, decision)
            response = view(request, *args, **kwargs)
            settled = decider.settle(decision, response)
            return _finish(config.policy, decider, decision, response, settled)

        return cast(F, wrapper)

    return decorate


# ``method_decorator`` applies the decorator anew on every request; deciders are kept here,
# per view, so that costs a dict lookup, not a new limiter.
_deciders: dict[tuple[str, str, int], tuple[_Config, Decider]] = {}
_deciders_lock = threading.Lock()
# Every decorated view's state, by (view, dimension): what a usage report lists.
_registry: dict[tuple[str, str], _DecoratorState] = {}
_registry_lock = threading.Lock()


class _DecoratorState:
    def __init__(self, rule: Rule, backend: Any, view: str, label: str) -> None:
        self.rule = rule
        self.backend = backend
        self.view = view
        self.label = label  # the name a usage report shows (no module path)

    def get(self) -> tuple[_Config, Decider]:
        config = _config()
        cache_key = (self.view, self.rule.dimension, _generation)
        entry = _deciders.get(cache_key)
        if entry is None:
            with _deciders_lock:
                entry = _deciders.get(cache_key)
                if entry is None:
                    backend = self.backend if self.backend is not None else config.backend
                    entry = (config, Decider([self.rule], backend, config.algorithm, self.view,
                                             ip_key, config.clock, config.alerts))
                    _deciders[cache_key] = entry
        warn_if_memory_in_worker(entry[1].backend)
        return entry

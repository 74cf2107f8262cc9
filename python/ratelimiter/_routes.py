"""Route patterns shared by the middleware and the tier helper.

A pattern is a path, optionally preceded by an HTTP method and a space:

* ``"/health"`` matches exactly that path;
* ``"/static/*"`` matches every path starting with ``/static/`` (longest prefix wins);
* ``"*"`` matches every path (the fallback);
* ``"POST /upload"`` matches only that method; it beats a method-less pattern of the same
  kind and length.

Exact patterns beat prefixes. Matching is on the raw request path, case-sensitive.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Generic, Optional, TypeVar

__all__ = ["RouteTable"]

T = TypeVar("T")


def _parse(pattern: object, param: str) -> tuple[str, str, bool]:
    """Split a pattern into ``(method, path, is_prefix)``; ``method`` is ``""`` for any."""
    if not isinstance(pattern, str):
        raise ValueError(f"{param}: route pattern must be a str, got {pattern!r}")
    text = pattern.strip()
    method = ""
    if " " in text:
        method, _, text = text.partition(" ")
        method = method.upper()
        text = text.strip()
        if not method.isalpha():
            raise ValueError(f"{param}: bad method in route pattern {pattern!r}")
    if text == "*":
        return method, "", True
    if not text.startswith("/"):
        raise ValueError(f"{param}: route pattern must start with '/' or be '*': {pattern!r}")
    if text.endswith("*"):
        return method, text[:-1], True
    return method, text, False


class RouteTable(Generic[T]):
    """Look up a value by request method and path (see the module docstring for patterns)."""

    __slots__ = ("_exact", "_prefixes")

    def __init__(self, rules: Mapping[str, T], *, param: str) -> None:
        self._exact: dict[tuple[str, str], T] = {}
        prefixes: list[tuple[str, str, T]] = []
        for pattern, value in rules.items():
            method, path, is_prefix = _parse(pattern, param)
            if is_prefix:
                prefixes.append((path, method, value))
            else:
                self._exact[(method, path)] = value
        # Longest prefix first; for equal prefixes the method-specific one first.
        prefixes.sort(key=lambda rule: (len(rule[0]), rule[1] != ""), reverse=True)
        self._prefixes = tuple(prefixes)

    @classmethod
    def from_patterns(cls, patterns: Iterable[str], value: T, *, param: str) -> RouteTable[T]:
        """A table mapping every pattern in ``patterns`` to ``value``."""
        if isinstance(patterns, str):
            patterns = (patterns,)
        return cls(dict.fromkeys(patterns, value), param=param)

    def __bool__(self) -> bool:
        return bool(self._exact) or bool(self._prefixes)

    def lookup(self, method: str, path: str) -> Optional[T]:
        """The value of the best pattern matching ``method`` and ``path``, or ``None``."""
        exact = self._exact
        if exact:
            value = exact.get((method, path))
            if value is not None:
                return value
            value = exact.get(("", path))
            if value is not None:
                return value
        for prefix, rule_method, value in self._prefixes:
            if path.startswith(prefix) and (not rule_method or rule_method == method):
                return value
        return None

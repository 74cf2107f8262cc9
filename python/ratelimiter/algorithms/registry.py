"""The built-in limiter classes by algorithm name, derived from the C++ core's list.

``_core.algorithms()`` lists every algorithm of the core (name, native class, metadata names)
in its id order; each built-in public class names its native class (``_native_class``). So
tables keyed by algorithm (the test matrix, benchmarks, the simulator's ``--algorithms``)
follow the core: adding an algorithm adds it everywhere, with no list to edit here.
"""

from __future__ import annotations

from functools import cache

from .. import _core
from .base import NativeRateLimiter

__all__ = ["builtin_limiters", "metadata_names"]


def _subclasses(cls: type[NativeRateLimiter]) -> list[type[NativeRateLimiter]]:
    out: list[type[NativeRateLimiter]] = []
    for sub in cls.__subclasses__():
        out.append(sub)
        out.extend(_subclasses(sub))
    return out


@cache
def _by_name() -> dict[str, type[NativeRateLimiter]]:
    package = __name__.rpartition(".")[0]  # the built-in classes are defined in this package
    by_native = {
        cls.__dict__["_native_class"]: cls
        for cls in _subclasses(NativeRateLimiter)
        if "_native_class" in cls.__dict__ and cls.__module__.startswith(package + ".")
    }
    out: dict[str, type[NativeRateLimiter]] = {}
    for name, native, _metadata in _core.algorithms():
        if native not in by_native:
            raise RuntimeError(f"the core's {name!r} algorithm has no public class in "
                               f"{package} (a class with _native_class = _core.{native.__name__})")
        out[name] = by_native[native]
    return out


def builtin_limiters() -> dict[str, type[NativeRateLimiter]]:
    """``{algorithm name: public class}`` for every built-in algorithm, in the core's order."""
    return dict(_by_name())


def metadata_names(algorithm: str) -> tuple[str, ...]:
    """The keys of ``result.metadata`` for ``algorithm`` (besides ``insufficient_capacity``
    and ``on_error``, present only when they apply)."""
    for name, _native, metadata in _core.algorithms():
        if name == algorithm:
            return tuple(metadata)
    raise KeyError(algorithm)

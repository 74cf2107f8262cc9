"""Per-algorithm tables derive from the core's list (_core.algorithms())."""

from __future__ import annotations

import pytest
from conftest import ALL_LIMITERS, FakeClock

import ratelimiter
from ratelimiter import MemoryBackend, _core
from ratelimiter.algorithms.base import NativeRateLimiter
from ratelimiter.algorithms.registry import builtin_limiters, metadata_names


def test_every_core_algorithm_has_its_public_class_in_core_order() -> None:
    names = [name for name, _native, _metadata in _core.algorithms()]
    assert names == ["fixed_window", "sliding_window", "sliding_window_counter",
                     "token_bucket", "leaky_bucket", "adaptive", "gcra"]
    limiters = builtin_limiters()
    assert list(limiters) == names
    assert list(limiters.values()) == ALL_LIMITERS
    public = {getattr(ratelimiter, n) for n in ratelimiter.__all__}
    assert {cls for cls in public if isinstance(cls, type) and
            issubclass(cls, NativeRateLimiter) and "_native_class" in cls.__dict__} == \
        set(limiters.values())
    for name, native, _metadata in _core.algorithms():
        assert native.algorithm == name
        assert limiters[name]._native_class is native
        assert issubclass(native, _core._NativeLimiter)


@pytest.mark.parametrize("name", list(builtin_limiters()))
def test_result_metadata_keys_are_the_core_metadata_names(name: str, clock: FakeClock) -> None:
    limiter = builtin_limiters()[name](MemoryBackend(), 5, 10.0, clock=clock)
    assert tuple(limiter.is_allowed("k").metadata) == metadata_names(name)
    assert tuple(limiter.peek("k").metadata) == metadata_names(name)


def test_metadata_names_of_an_unknown_algorithm() -> None:
    with pytest.raises(KeyError):
        metadata_names("no_such_algorithm")

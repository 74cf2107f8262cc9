"""RateLimitResult: fields, headers, equality, repr, immutability."""

from __future__ import annotations

import base64
import math
import pathlib
import pickle

import pytest
from conftest import FakeClock

import ratelimiter
from ratelimiter import MemoryBackend, RateLimitResult


def test_constructed_in_python_like_a_dataclass() -> None:
    r = RateLimitResult(allowed=True, key="k", limit=10, remaining=9, reset_after=6.0,
                        retry_after=0.0, metadata={"x": 1})
    assert r == RateLimitResult(allowed=True, key="k", limit=10, remaining=9, reset_after=6.0,
                                retry_after=0.0, metadata={"x": 1})
    assert r != RateLimitResult(allowed=True, key="k", limit=10, remaining=8, reset_after=6.0,
                                retry_after=0.0, metadata={"x": 1})
    assert repr(r) == ("RateLimitResult(allowed=True, key='k', limit=10, remaining=9, "
                       "reset_after=6.0, retry_after=0.0, metadata={'x': 1})")
    with pytest.raises(AttributeError):
        r.allowed = False  # type: ignore[misc]
    assert hash(r) == hash(pickle.loads(pickle.dumps(r)))
    assert pickle.loads(pickle.dumps(r)) == r


# pickle.dumps(result, protocol=2) of a rejected token-bucket decision, written when the class
# lived in ratelimiter.algorithms.base (the pickle names ...algorithms.base._rebuild_result).
OLD_PICKLE = base64.b64decode(
    "gAJjcmF0ZWxpbWl0ZXIuYWxnb3JpdGhtcy5iYXNlCl9yZWJ1aWxkX3Jlc3VsdApxAH1xAShYBwAAAGFsbG93ZWRx"
    "AolYAwAAAGtleXEDWAYAAAB1c2VyOjFxBFgFAAAAbGltaXRxBUsDWAkAAAByZW1haW5pbmdxBksAWAsAAAByZXNl"
    "dF9hZnRlcnEHR0AkAAAAAAAAWAsAAAByZXRyeV9hZnRlcnEIR0AKqqqqqq8AWAgAAABtZXRhZGF0YXEJfXEKKFgG"
    "AAAAdG9rZW5zcQtHAAAAAAAAAABYCwAAAHJlZmlsbF9yYXRlcQxHP9MzMzMzMzN1dUdAJAAAAAAAAIZxDVJxDi4="
)


def test_pickles_from_the_old_module_path_still_load() -> None:
    assert b"ratelimiter.algorithms.base\n_rebuild_result" in OLD_PICKLE
    r = pickle.loads(OLD_PICKLE)
    assert type(r) is RateLimitResult
    assert r == RateLimitResult(allowed=False, key="user:1", limit=3, remaining=0,
                                reset_after=10.0, retry_after=3.333333333333826,
                                metadata={"tokens": 0.0, "refill_rate": 0.3})
    assert r.window == 10.0
    # The class lives in a leaf module now; the documented path is the same object.
    from ratelimiter.algorithms.base import RateLimitResult as documented
    from ratelimiter.result import RateLimitResult as leaf

    assert documented is leaf is RateLimitResult
    assert b"ratelimiter.result\n_rebuild_result" in pickle.dumps(r, protocol=2)


def test_headers_allowed_and_rejected(clock: FakeClock) -> None:
    limiter = ratelimiter.FixedWindowRateLimiter(MemoryBackend(), 2, 60.0, clock=clock)
    clock.now = 1_020.5  # window [1020, 1080)
    assert limiter.is_allowed("k").headers == {
        "X-RateLimit-Limit": "2", "X-RateLimit-Remaining": "1", "X-RateLimit-Reset": "60",
    }
    limiter.is_allowed("k")
    rejected = limiter.is_allowed("k")
    assert rejected.headers == {
        "X-RateLimit-Limit": "2", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "60",
        "Retry-After": "60",
    }
    assert rejected.retry_after == pytest.approx(59.5)
    assert rejected.ietf_headers == {
        "RateLimit-Policy": '"default";q=2;w=60',
        "RateLimit": '"default";r=0;t=60',
        "Retry-After": "60",
    }


def test_retry_after_is_whole_seconds_rounded_up(clock: FakeClock) -> None:
    limiter = ratelimiter.TokenBucketRateLimiter(MemoryBackend(), 1, 4.0, clock=clock)
    limiter.is_allowed("k")
    clock.advance(1.5)
    rejected = limiter.is_allowed("k")
    assert rejected.retry_after == pytest.approx(2.5)
    assert rejected.headers["Retry-After"] == "3"


def test_metadata_is_a_fresh_dict_and_result_fields(clock: FakeClock) -> None:
    r = ratelimiter.GCRARateLimiter(MemoryBackend(), 4, 8.0, clock=clock).is_allowed("k", 2)
    assert (r.allowed, r.key, r.limit, r.remaining, r.retry_after) == (True, "k", 4, 2, 0.0)
    assert r.reset_after == pytest.approx(4.0)
    assert r.metadata == {"tat": pytest.approx(1_004.0)}
    assert bool(r) is True
    assert math.isfinite(r.reset_after)


def _imports(module: object) -> set[str]:
    """The modules a source file imports (relative ones spelled as written: ``..result``)."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(module))  # type: ignore[arg-type]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
    return names


def test_result_is_a_leaf_and_limiters_do_not_reach_into_backends() -> None:
    import ratelimiter.algorithms.base as base
    import ratelimiter.result as result

    # The result imports only the compiled core (and the standard library), so any module
    # can build one without an import cycle.
    assert {name for name in _imports(result) if name.startswith(".")} == {"."}
    # The limiter base neither type-checks for a concrete backend nor reads a private field
    # of one: backends say never_blocks / binary_replies themselves.
    assert "..backends.memory" not in _imports(base)
    source = pathlib.Path(str(base.__file__)).read_text()
    assert "_reply_format" not in source and "MemoryBackend" not in source
    assert MemoryBackend.never_blocks is True
    assert ratelimiter.SQLiteBackend.never_blocks is False


def test_results_are_plain_objects_outside_the_cyclic_gc(clock: FakeClock) -> None:
    """A result holds no reference that could form a cycle, so the collector never tracks
    it; subclasses that add slots (MultiRateLimitResult, a user's) keep their own GC."""
    import gc

    limiter = ratelimiter.TokenBucketRateLimiter(MemoryBackend(), 5, 60.0, clock=clock)
    results = [limiter.is_allowed("a"), *limiter.is_allowed_many(["a", "b"]),
               RateLimitResult(allowed=True, key="k", limit=1, remaining=0, reset_after=1.0,
                               retry_after=0.0, metadata={"x": 1})]
    assert [gc.is_tracked(r) for r in results] == [False] * 4
    assert results[3].metadata == {"x": 1}
    assert pickle.loads(pickle.dumps(results[1])) == results[1]

    class Tagged(RateLimitResult):
        __slots__ = ("tag",)

    tagged = Tagged(allowed=False, key="t", limit=1, remaining=0, reset_after=2.0,
                    retry_after=2.0)
    tagged.tag = tagged  # a cycle through the subclass's own slot
    assert gc.is_tracked(tagged)
    assert (tagged.key, tagged.allowed, tagged.retry_after) == ("t", False, 2.0)
    del tagged
    gc.collect()

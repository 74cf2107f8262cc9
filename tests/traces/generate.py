"""Writes the golden traces tests/traces/<algorithm>.csv from the scenarios below.

Regenerate only when the documented semantics (docs/ALGORITHMS.md) change, and review the
diff row by row: these files are the expected behaviour, not a snapshot to refresh whenever
a test fails. Run from the repository root with the package installed:

    python tests/traces/generate.py

The inputs (time, op, cost, params) are written here by hand; the expected outputs are
computed by the current implementation (MemoryBackend, the C++ step functions), except the
rows a scenario marks with ``expect=``: those values were derived by hand from
docs/ALGORITHMS.md and the generator refuses to write a file where the implementation
disagrees with them. Such rows say ``doc`` in the ``check`` column.

File format (read by tests/cpp/test_golden_traces.cpp and tests/python/test_golden_traces.py):
``#`` lines are comments; the first other line names the columns:
``scenario,now,op,cost,limit,window,<algorithm params>,`` then
``allowed,remaining,retry_after,reset_after,check``.
One scenario is one key; rows run in order; ``op`` is ``consume`` (``is_allowed(key, cost)``)
or ``peek`` (``peek(key)``, cost 1). ``limit``/``window``/params may change between rows of a
scenario (a config change: the state carries over as docs/ALGORITHMS.md "Parameter changes"
says). An empty param means the default. Floats are written with ``repr`` (shortest
round-trip), so readers compare them exactly; ``inf`` is infinity.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import ratelimiter
from ratelimiter import MemoryBackend

HERE = Path(__file__).resolve().parent
E = 1_700_000_000.0  # epoch-scale start: ulp(1.7e9) ≈ 2.4e-7 s stresses every boundary

# Per-algorithm parameter columns (beyond limit, window), in file order.
PARAMS: dict[str, list[str]] = {
    "fixed_window": [],
    "sliding_window": [],
    "sliding_window_counter": [],
    "token_bucket": ["refill_rate"],
    "leaky_bucket": ["leak_rate"],
    "gcra": ["burst"],
    "adaptive": ["burst_multiplier", "adaptive_window", "penalty"],
}
CLASSES = {
    "fixed_window": ratelimiter.FixedWindowRateLimiter,
    "sliding_window": ratelimiter.SlidingWindowRateLimiter,
    "sliding_window_counter": ratelimiter.SlidingWindowCounterRateLimiter,
    "token_bucket": ratelimiter.TokenBucketRateLimiter,
    "leaky_bucket": ratelimiter.LeakyBucketRateLimiter,
    "gcra": ratelimiter.GCRARateLimiter,
    "adaptive": ratelimiter.AdaptiveRateLimiter,
}
INT_PARAMS = {"burst"}

# A time is +dt (relative to the previous row), "=t" (absolute) or "retry" (the previous
# row's retry_after later: waiting exactly retry_after must admit the same request).
When = Union[float, str]
Expect = tuple[bool, int, float, float]


@dataclass
class Step:
    when: When
    cost: int = 1
    op: str = "consume"
    config: dict[str, Any] = field(default_factory=dict)  # limit/window/params from here on
    expect: Optional[Expect] = None  # derived by hand from docs/ALGORITHMS.md


def at(t: float) -> str:
    """An absolute time (rows checked by hand avoid "retry", whose wait carries the nudge)."""
    return "=" + repr(t)


def c(when: When, cost: int = 1, expect: Optional[Expect] = None, **config: Any) -> Step:
    return Step(when, cost, "consume", config, expect)


def p(when: When, expect: Optional[Expect] = None, **config: Any) -> Step:
    return Step(when, 1, "peek", config, expect)


@dataclass
class Scenario:
    name: str
    start: float
    config: dict[str, Any]
    steps: list[Step]


def common(algorithm: str, extra: dict[str, Any]) -> list[Scenario]:
    """The shapes every algorithm goes through; `extra` are its default params."""
    base = {"limit": 5, "window": 10.0, **extra}
    burst = [c(0.0) for _ in range(6)] + [p(0.0), c("retry"), c(0.001, 2)]
    return [
        Scenario("burst_then_retry", E, base, burst + [c(3.3), c(10.0, 3), p(25.0)]),
        Scenario("subsecond_window", E + 0.05, {**base, "limit": 3, "window": 0.25},
                 [c(0.0), c(0.0, 2), c(0.0), c("retry"), c(0.1), c(0.1, 3), c(0.1),
                  c(0.125), p(0.25), c(1.0, 3)]),
        Scenario("cost_above_capacity", E, base,
                 [c(0.0, 50), c(0.0, 2), c(0.0, 50), p(0.0), c(0.5, 4), c(0.0, 3)]),
        Scenario("clock_steps_back", E + 5.0, base,
                 [c(0.0, 3), c(-0.5), c(-2.0), c(-30.0), c(0.0), p(-1.0), c(40.0), c(-7.5, 2)]),
        Scenario("forward_glitch_beyond_tolerance", E, base,
                 [c(0.0, 2), c(120.0, 2), c(-120.0), c(0.0), c(0.0), p(0.0), c(1.0),
                  c(59.0), c(-59.0)]),
        Scenario("forward_glitch_within_tolerance", E, base,
                 [c(0.0, 2), c(45.0, 3), c(-45.0), p(0.0), c(2.0), c(50.0)]),
        Scenario("config_change", E + 0.4, {**base, "limit": 3, "window": 1.0},
                 [c(0.0, 2), c(0.1, 1, window=60.0), c(0.1), c(0.6), c(0.0, 2, limit=8),
                  c(0.5, 1, window=1.0, limit=3), c(0.0), p(1.0, limit=2), c(0.0, 2),
                  c(30.0, 1, window=0.5), c(0.0, 2), c("retry", 2)]),
        Scenario("small_epoch_and_long_run", 1_000.0, {**base, "limit": 4, "window": 2.5},
                 [c(0.0, 1 + i % 3) if i % 4 else p(0.7) for i in range(24)]),
    ]


def specific(algorithm: str) -> tuple[dict[str, Any], list[Scenario]]:
    """Each algorithm's own defaults and the scenarios whose rows are checked by hand."""
    if algorithm == "fixed_window":
        # limit 5, window 10 at E = 1.7e9 (a multiple of 10: the window starts at E).
        return {}, [Scenario("doc_checked", E + 2.0, {"limit": 5, "window": 10.0}, [
            c(0.0, 1, expect=(True, 4, 0.0, 8.0)),      # reset = (k+1)·window − now = 8
            c(0.0, 4, expect=(True, 0, 0.0, 8.0)),
            c(1.0, 1, expect=(False, 0, 7.0, 7.0)),     # count 5 + 1 > 5; retry = reset
            c(at(E + 10.0), 2, expect=(True, 3, 0.0, 10.0)),  # window k+1 starts empty
            c(0.0, 6, expect=(False, 3, math.inf, 10.0)),  # cost > limit: insufficient
        ])]
    if algorithm == "sliding_window":
        return {}, [Scenario("doc_checked", E, {"limit": 3, "window": 10.0}, [
            c(0.0, 2, expect=(True, 1, 0.0, 10.0)),     # reset = newest.t + window − now
            c(4.0, 1, expect=(True, 0, 0.0, 10.0)),
            c(1.0, 1, expect=(False, 0, 5.0, 9.0)),     # need 1: oldest t=E leaves at E+10
            c(at(E + 10.0), 2, expect=(True, 0, 0.0, 10.0)),  # (E, 2) dropped: 1 + 2
        ])]
    if algorithm == "sliding_window_counter":
        return {}, [Scenario("doc_checked", E, {"limit": 4, "window": 10.0}, [
            c(0.0, 4, expect=(True, 0, 0.0, 20.0)),     # curr 4: reset (k+2)·window − now
            c(15.0, 1, expect=(True, 1, 0.0, 15.0)),    # prev 4·0.5 = 2 + 1 → remaining 1
            # rejected: curr 1 + cost 2 ≤ 4 → t = k·w + w·(1 − (4 − 2 − 1)/4) = +7.5
            c(0.0, 2, expect=(False, 1, 2.5, 15.0)),
            c(at(E + 17.5), 2, expect=(True, 0, 0.0, 12.5)),  # prev 4·0.25 + 1 + 2
        ])]
    if algorithm == "token_bucket":
        return {"refill_rate": None}, [Scenario("doc_checked", E, {"limit": 4, "window": 8.0}, [
            c(0.0, 3, expect=(True, 1, 0.0, 6.0)),      # rate 0.5: reset = 3/0.5
            c(0.0, 2, expect=(False, 1, 2.0, 6.0)),     # (2 − 1)/0.5
            c(at(E + 2.0), 2, expect=(True, 0, 0.0, 8.0)),
            c(1.0, 1, refill_rate=2.0, expect=(True, 1, 0.0, 1.5)),  # tokens 0.5 + 2 − 1
        ])]
    if algorithm == "leaky_bucket":
        return {"leak_rate": None}, [Scenario("doc_checked", E, {"limit": 4, "window": 8.0}, [
            c(0.0, 3, expect=(True, 1, 0.0, 6.0)),      # level 3 / rate 0.5
            c(0.0, 2, expect=(False, 1, 2.0, 6.0)),     # (3 + 2 − 4)/0.5
            c(at(E + 2.0), 2, expect=(True, 0, 0.0, 8.0)),
            c(2.0, 1, leak_rate=1.0, expect=(True, 1, 0.0, 3.0)),  # level 4 − 2 + 1
        ])]
    if algorithm == "gcra":
        return {"burst": None}, [Scenario("doc_checked", E, {"limit": 4, "window": 8.0}, [
            c(0.0, 3, expect=(True, 1, 0.0, 6.0)),      # T = 2: reset = level·T
            c(0.0, 2, expect=(False, 1, 2.0, 6.0)),     # (3 + 2 − 4)·T
            c(at(E + 2.0), 2, expect=(True, 0, 0.0, 8.0)),
            c(0.0, 1, burst=6, expect=(True, 1, 0.0, 10.0)),  # burst 6: level 5
        ])]
    if algorithm == "adaptive":
        extra = {"burst_multiplier": 1.0, "adaptive_window": None, "penalty": None}
        # limit 4, window 8, multiplier 1: a quiet key gets 4 at once, refills at 0.5/s.
        return extra, [Scenario("doc_checked", E, {"limit": 4, "window": 8.0, **extra}, [
            c(0.0, 1, expect=(True, 3, 0.0, 16.0)),     # guard curr > 0: (gk+2)·window − now
            c(0.0, 3, expect=(True, 0, 0.0, 16.0)),
            c(0.0, 9, expect=(False, 0, math.inf, 16.0)),  # cost > max_burst = 4
        ]), Scenario("burst_multiplier_2", E, {"limit": 4, "window": 8.0,
                                                  "burst_multiplier": 2.0}, [
            c(0.0, 8), c(0.0), p(1.0), c(4.0, 2), c("retry"), c(0.0, 5), c(40.0, 8),
        ])]
    raise ValueError(algorithm)


def _nudged(now: float, expect: Expect) -> Expect:
    """The doc's values with the binding's retry_after nudge (cpp/bindings/limiter.hpp
    `wait_until_representable`): ``now + retry_after`` is moved 4 ulps later, so a caller
    waiting exactly retry_after lands at or after the admitting instant."""
    allowed, remaining, retry_after, reset_after = expect
    if not allowed and math.isfinite(retry_after):
        at = now + retry_after
        for _ in range(4):
            at = math.nextafter(at, math.inf)
        retry_after = max(retry_after, at - now)
    return allowed, remaining, retry_after, reset_after


def _value(config: dict[str, Any], name: str) -> Any:
    value = config.get(name)
    return None if value is None else value


def run(algorithm: str) -> list[dict[str, Any]]:
    extra, own = specific(algorithm)
    scenarios = own + common(algorithm, extra)
    assert len({s.name for s in scenarios}) == len(scenarios)
    rows: list[dict[str, Any]] = []
    backend = MemoryBackend()
    for scenario in scenarios:
        now = scenario.start
        config = dict(scenario.config)
        last_retry = 0.0
        first = True
        for step in scenario.steps:
            config.update(step.config)
            if step.when == "retry":
                assert math.isfinite(last_retry) and last_retry > 0, (scenario.name, "retry")
                now += last_retry
            elif isinstance(step.when, str):
                now = float(step.when[1:])
            elif not first:
                now += step.when
            first = False
            kwargs = {k: v for k, v in config.items()
                      if k not in ("limit", "window") and v is not None}
            limiter = CLASSES[algorithm](backend, config["limit"], config["window"],
                                         clock=lambda now=now: now, **kwargs)
            result = (limiter.peek(scenario.name) if step.op == "peek"
                      else limiter.is_allowed(scenario.name, step.cost))
            got = (result.allowed, result.remaining, result.retry_after, result.reset_after)
            if step.expect is not None and got != _nudged(now, step.expect):
                sys.exit(f"{algorithm}/{scenario.name} at {now!r}: the implementation gives "
                         f"{got}, docs/ALGORITHMS.md gives {step.expect}")
            last_retry = result.retry_after
            row = {"scenario": scenario.name, "now": now, "op": step.op, "cost": step.cost,
                   "limit": config["limit"], "window": config["window"]}
            row.update({name: _value(config, name) for name in PARAMS[algorithm]})
            row.update(allowed=int(result.allowed), remaining=result.remaining,
                       retry_after=result.retry_after, reset_after=result.reset_after,
                       check="doc" if step.expect is not None else "")
            rows.append(row)
    return rows


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "inf" if value == math.inf else repr(value)
    return str(value)


HEADER = """\
# Golden trace: {algorithm}. Generated by tests/traces/generate.py (read its docstring before
# regenerating); rows with check=doc were derived by hand from docs/ALGORITHMS.md, the rest
# come from the implementation. Every store must reproduce every row exactly.
"""


def write(algorithm: str) -> None:
    rows = run(algorithm)
    columns = (["scenario", "now", "op", "cost", "limit", "window"] + PARAMS[algorithm]
               + ["allowed", "remaining", "retry_after", "reset_after", "check"])
    lines = [HEADER.format(algorithm=algorithm).rstrip("\n"), ",".join(columns)]
    lines += [",".join(_cell(row[col]) for col in columns) for row in rows]
    (HERE / f"{algorithm}.csv").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    for name in PARAMS:
        write(name)

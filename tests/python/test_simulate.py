"""The simulator's figures: exact counts on scripted traffic, peaks, bins, traces."""

from __future__ import annotations

import bisect
import math
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ratelimiter.simulate import ALGORITHMS, CsvTrace, TraceError, make_pattern, simulate
from ratelimiter.simulate.engine import TimeBins, _PeakTracker, run_source
from ratelimiter.simulate.traffic import Chunk, Source


def _brute_peak(times: list[float], costs: list[int], window: float) -> int:
    """Most units in any [t, t + window), by checking every start."""
    best = 0
    for i, t in enumerate(times):
        j = bisect.bisect_left(times, t + window)
        best = max(best, sum(costs[i:j]))
    return best


def _by_name(pattern_run):
    return {run.algorithm: run for run in pattern_run.runs}


def test_boundary_attack_exact_figures() -> None:
    # limit just before and just after the boundaries at 1, 4 and 7 s
    result = simulate([make_pattern("boundary", 10, 1.0)], limit=10, window=1.0)
    runs = _by_name(result.patterns[0])
    assert result.patterns[0].requests == 60
    fixed = runs["fixed_window"]
    assert (fixed.admitted, fixed.rejected, fixed.peak_in_window) == (60, 0, 20)
    assert fixed.peak_start == pytest.approx(0.999)
    log = runs["sliding_window"]
    assert (log.admitted, log.rejected, log.peak_in_window) == (30, 30, 10)
    for name in ("sliding_window_counter", "token_bucket", "leaky_bucket", "gcra"):
        assert (runs[name].admitted, runs[name].peak_in_window) == (30, 10), name
    assert (runs["adaptive"].admitted, runs["adaptive"].peak_in_window) == (46, 20)


def test_the_table_matches_the_old_demo() -> None:
    # The figures examples/compare_algorithms.py printed before it became a thin call.
    result = simulate(
        [make_pattern(p, 10, 1.0) for p in ("steady", "bursts", "boundary")], limit=10
    )
    got = {
        (p.name, r.algorithm): (
            r.admitted,
            r.rejected,
            r.peak_in_window,
            round(r.mean_retry_after, 3),
        )
        for p in result.patterns
        for r in p.runs
    }
    assert got[("steady", "fixed_window")] == (100, 50, 11, 0.2)
    assert got[("steady", "sliding_window")] == (100, 50, 10, 0.111)
    assert got[("steady", "sliding_window_counter")] == (91, 59, 10, 0.057)
    assert got[("steady", "token_bucket")] == (109, 41, 16, 0.033)
    assert got[("bursts", "adaptive")] == (45, 105, 20, 0.572)
    assert got[("bursts", "sliding_window")] == (30, 120, 10, 1.0)
    assert got[("boundary", "sliding_window")] == (30, 30, 10, 0.998)


def test_params_reach_the_limiter() -> None:
    # Bursts of 50 at 0.5, 3.5, 6.5 s: a full bucket of 10, then 3 s of refill each time.
    pattern = [make_pattern("bursts", 10, 1.0)]
    slow = simulate(pattern, ["token_bucket"], 10, 1.0, {"token_bucket": {"refill_rate": 2}})
    assert slow.patterns[0].runs[0].admitted == 10 + 6 + 6
    fast = simulate(pattern, ["token_bucket"], 10, 1.0)
    assert fast.patterns[0].runs[0].admitted == 30


def test_requests_scales_each_pattern() -> None:
    assert make_pattern("steady", 10, 1.0, 1000).total == 1000
    assert make_pattern("bursts", 10, 1.0, 1000).total == 1000  # 20 bursts of 50
    assert make_pattern("boundary", 10, 1.0, 1000).total == 1000
    ramp = make_pattern("ramp", 10, 1.0, 1000)
    times = [t for chunk in ramp.chunks() for t in chunk.times]
    assert len(times) == 1000 and times == sorted(times)
    assert times[-1] <= ramp.span[1]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"limit": 0}, "limit"),
        ({"limit": True}, "limit"),
        ({"window": -1.0}, "window"),
        ({"window": math.nan}, "window"),
        ({"algorithms": ["nope"]}, "unknown algorithm 'nope'"),
        ({"algorithms": []}, "at least one"),
        ({"algorithms": ["gcra", "gcra"]}, "once"),
        ({"params": {"gcra": {"burst": 5}}, "algorithms": ["token_bucket"]}, "not among"),
        ({"params": {"token_bucket": {"nonsense": 1}}}, "token_bucket"),
        ({"params": {"token_bucket": {"refill_rate": -1}}}, "refill_rate"),
    ],
)
def test_bad_configuration_is_a_value_error(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        simulate([make_pattern("steady", 10, 1.0)], **kwargs)


def test_unknown_pattern() -> None:
    with pytest.raises(ValueError, match="unknown pattern 'zigzag'"):
        make_pattern("zigzag", 10, 1.0)
    with pytest.raises(ValueError, match="requests"):
        make_pattern("steady", 10, 1.0, 0)


@settings(max_examples=60, deadline=None)
@given(
    gaps=st.lists(st.sampled_from([0.0, 0.001, 0.1, 0.25, 0.5, 0.999, 1.0, 2.5]), max_size=80),
    cut=st.lists(st.integers(min_value=1, max_value=20), max_size=10),
    window=st.sampled_from([0.5, 1.0, 3.0]),
)
def test_streaming_peak_equals_brute_force(
    gaps: list[float], cut: list[int], window: float
) -> None:
    times = []
    t = 0.0
    for g in gaps:
        t += g
        times.append(t)
    # Split into chunks at arbitrary places, as the engine does.
    chunks, i = [], 0
    for size in cut or [len(times) or 1]:
        chunks.append(times[i : i + size])
        i += size
    chunks.append(times[i:])
    unit, weighted = _PeakTracker(window), _PeakTracker(window)
    costs = [1 + (k % 3) for k in range(len(times))]
    j = 0
    for chunk in chunks:
        unit.add_unit("k", list(chunk))
        weighted.add("k", chunk, costs[j : j + len(chunk)])
        j += len(chunk)
    assert unit.peak == _brute_peak(times, [1] * len(times), window)
    assert weighted.peak == _brute_peak(times, costs, window)


@settings(max_examples=60, deadline=None)
@given(
    gaps=st.lists(st.sampled_from([0.0, 0.001, 0.1, 0.5, 1.0]), max_size=120),
    nkeys=st.sampled_from([1, 2, 40]),  # few keys (grouped path) and many (one pass)
    chunk=st.integers(min_value=1, max_value=70),
)
def test_per_key_peak_equals_brute_force(gaps: list[float], nkeys: int, chunk: int) -> None:
    times, t = [], 0.0
    for g in gaps:
        t += g
        times.append(t)
    keys = [f"k{(i * 7) % nkeys}" for i in range(len(times))]
    tracker = _PeakTracker(1.0)
    for i in range(0, len(times), chunk):
        tracker.add_keyed_unit(keys[i : i + chunk], times[i : i + chunk])
    expected = max(
        (
            _brute_peak([t for t, k in zip(times, keys) if k == key], [1] * len(times), 1.0)
            for key in set(keys)
        ),
        default=0,
    )
    assert tracker.peak == expected


def test_time_bins_double_and_stay_exact() -> None:
    bins = TimeBins(10, 0.0, 0.5, ["a"])
    times = [0.1 * i for i in range(200)]  # up to 19.9 s: 0.5 -> 1 -> 2 -> 4 s bins
    for start in range(0, 200, 37):
        chunk = times[start : start + 37]
        bins.fit(chunk[-1])
        for i in bins.indices(chunk):
            bins.total[i] += 1
    assert bins.width == 2.0
    assert sum(bins.total) == 200
    assert bins.total == [sum(1 for t in times if int(t / 2.0) == b) for b in range(10)]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "trace.csv"
    path.write_text(text)
    return path


def _run_trace(path: Path, algorithms=("sliding_window",), limit=10):
    return simulate([CsvTrace(path)], list(algorithms), limit, 1.0).patterns[0]


def test_trace_with_keys_and_costs(tmp_path: Path) -> None:
    lines = ["timestamp,key,cost"]
    lines += ["100.0,a,3" for _ in range(4)]  # 9 units fit, the 4th request does not
    lines += ["100.5,b,1" for _ in range(12)]  # 10 fit
    lines += ["# a comment", "", "101.2,a,1"]
    run = _run_trace(_write(tmp_path, "\n".join(lines) + "\n"), ["sliding_window"]).runs[0]
    assert (run.admitted, run.rejected, run.admitted_units) == (14, 3, 20)
    assert (run.peak_in_window, run.peak_key) == (10, "b")


def test_trace_timestamps_only(tmp_path: Path) -> None:
    text = "".join(f"{0.01 * i:.2f}\n" for i in range(25))
    pattern = _run_trace(_write(tmp_path, text), ALGORITHMS)
    runs = _by_name(pattern)
    assert pattern.requests == 25
    assert runs["sliding_window"].admitted == 10
    assert runs["fixed_window"].admitted == 10


def test_cost_above_capacity_is_counted_apart(tmp_path: Path) -> None:
    text = "0,a,11\n0,a,10\n0,a,1\n0.5,a,20\n"
    run = _run_trace(_write(tmp_path, text), ["token_bucket"]).runs[0]
    # 11 and 20 exceed the capacity of 10; 10 fits; the 1 then waits 0.1 s for a token.
    assert (run.admitted, run.rejected, run.insufficient_capacity) == (1, 3, 2)
    assert run.mean_retry_after == pytest.approx(0.1)


@pytest.mark.parametrize(
    "text, message",
    [
        ("1.0\n2.0\n1.5\n", "line 3: timestamp 1.5 is earlier than the previous line's 2.0"),
        ("1.0\nabc\n", "line 2: timestamp 'abc' is not a number"),
        ("1.0\nnan\n", "line 2: timestamp 'nan' is not finite"),
        ("1.0\ninf\n", "line 2: timestamp 'inf' is not finite"),
        ("1,a,1\n2,a,-1\n", "line 2: cost must be a positive integer, got -1"),
        ("1,a,1\n2,a,0\n", "line 2: cost must be a positive integer, got 0"),
        ("1,a,1.5\n", "line 1: cost '1.5' is not an integer"),
        ("1,a,x\n", "line 1: cost 'x' is not an integer"),
        ("1,,1\n", "line 1: key is empty"),
        ("1,a,1,9\n", "line 1: expected timestamp\\[,key\\[,cost\\]\\], got 4 columns"),
        ("1,a\n2\n", "line 2: expected 2 columns like the first line, got 1"),
        ("timestamp,cost\n1,1\n", "line 1: header must be"),
        ("# header comment\n\n1.0\n0.5\n", "line 4: timestamp 0.5 is earlier"),
    ],
)
def test_bad_trace_lines_name_the_line(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(TraceError, match=message) as info:
        _run_trace(path)
    assert str(path) in str(info.value)


def test_trace_not_utf8_or_missing(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(b"1.0\n\xff\xfe\n")
    with pytest.raises(TraceError, match="not UTF-8"):
        _run_trace(path)
    with pytest.raises(TraceError, match="does not exist"):
        CsvTrace(tmp_path / "missing.csv")


def test_long_trace_runs_in_bounded_memory(tmp_path: Path) -> None:
    # 120,000 lines; holding per-request lists would take tens of MB. Chunks of 1,000
    # requests and 64 bins keep the simulator's own allocations far below that.
    path = tmp_path / "long.csv"
    with open(path, "w") as f:
        for i in range(120_000):
            f.write(f"{i * 0.01:.2f},k{i % 7},1\n")
    tracemalloc.start()
    try:
        run = run_source(CsvTrace(path), ["gcra"], 5, 1.0, bins=64, chunk_size=1_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert run.requests == 120_000
    assert run.runs[0].admitted + run.runs[0].rejected == 120_000
    assert sum(run.bins.total) == 120_000
    assert peak < 2_000_000, peak  # per-request lists alone would be ~4 MB


class _Empty(Source):
    name = "empty"
    description = "nothing"
    total = 0
    span = None

    def chunks(self, size: int = 1):  # type: ignore[override]
        return iter(())


def test_empty_source() -> None:
    run = simulate([_Empty()], ["gcra"]).patterns[0]
    assert (run.requests, run.runs[0].admitted, run.runs[0].peak_in_window) == (0, 0, 0)


def test_chunk_defaults() -> None:
    assert Chunk([1.0]).keys is None and Chunk([1.0]).costs is None

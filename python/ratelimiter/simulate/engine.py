"""Run traffic through limiters on a simulated clock and collect the figures.

Speed comes from keeping the per-request work in C: a chunk of timestamps is loaded into
a deque whose ``popleft`` *is* the limiter's clock (the C++ core reads the clock exactly
once per decision), and ``map(limiter.is_allowed, keys)`` drives the chunk without a
Python frame per request. The flags, retry waits and per-bin counts are then gathered
with ``map``/``compress``/``Counter``, also in C. Only the peak-in-window scan loops in
Python, over admitted requests.

Memory is bounded whatever the trace length: per algorithm a few counters, the admitted
requests of the last window per key (for the exact peak), and a fixed number of time
bins for the chart.
"""

from __future__ import annotations

import gc
import math
import sys
import time
from bisect import bisect_left
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import accumulate, compress, groupby, islice, repeat
from operator import add, attrgetter, lt, mul, sub
from typing import Any, Callable, Optional, TextIO

from ..algorithms import BaseAlgorithm
from ..algorithms.registry import builtin_limiters
from ..backends import MemoryBackend
from .traffic import CHUNK_SIZE, DEFAULT_KEY, Source

__all__ = [
    "ALGORITHMS",
    "AlgorithmRun",
    "PatternRun",
    "Progress",
    "Simulation",
    "TimeBins",
    "peak_in_any_window",
    "run_source",
    "simulate",
    "format_table",
]

#: Algorithm names accepted by ``--algorithms``, in the order tables and charts use (the
#: core's algorithm order).
ALGORITHMS: dict[str, type[BaseAlgorithm]] = dict(builtin_limiters())


_allowed = attrgetter("allowed")
_retry_after = attrgetter("retry_after")


def peak_in_any_window(times: Sequence[float], window: float) -> int:
    """Most timestamps of sorted ``times`` in any half-open span ``[t, t + window)``.

    Two pointers, O(n): the span worth checking starts at some timestamp.
    """
    best = 0
    lo = 0
    for hi, t in enumerate(times):
        while times[lo] + window <= t:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


class _PeakTracker:
    """The exact peak of admitted units in any window-length span, per key, streaming.

    Keeps only the admitted requests of each key's last window (two pointers over the
    stream: append at the right, drop from the left what fell out of the span).
    """

    def __init__(self, window: float) -> None:
        self.window = window
        self.peak = 0
        self.peak_key: Optional[str] = None
        self.peak_start = 0.0
        self._spans: dict[str, tuple[deque[tuple[float, int]], list[int]]] = {}
        self._tails: dict[str, list[float]] = {}

    def add(self, key: str, times: Iterable[float], costs: Iterable[int]) -> None:
        span = self._spans.get(key)
        if span is None:
            span = self._spans[key] = (deque(), [0])
        q, running = span
        window = self.window
        total = running[0]
        peak = self.peak
        for t, c in zip(times, costs):
            q.append((t, c))
            total += c
            while q[0][0] + window <= t:
                total -= q.popleft()[1]
            if total > peak:
                peak = total
                self.peak_key = key
                self.peak_start = q[0][0]
        running[0] = total
        self.peak = peak

    def add_unit(self, key: str, times: list[float]) -> None:
        """``add`` for cost-1 requests, with the scans in C (the common, hot case).

        ``p`` admitted requests fit in one span iff some ``a[i + p - 1] < a[i] + window``:
        one C-level pass (``any(map(lt, ...))``) answers it, and the peak only grows, so
        usually a single pass per chunk confirms it did not (galloping search when it
        did). The requests of the last window are carried over to the next call, so
        spans crossing a chunk boundary are counted whole.
        """
        tail = self._tails.get(key)
        a = tail + times if tail else times
        if not a:
            return
        window = self.window
        ends = list(map(add, a, repeat(window)))

        def fits(p: int) -> bool:
            return p <= len(a) and any(map(lt, islice(a, p - 1, None), ends))

        if fits(self.peak + 1):
            lo, step = self.peak + 1, 1  # lo fits; find hi that does not
            while fits(lo + step):
                lo, step = lo + step, step * 2
            hi = lo + step
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if fits(mid):
                    lo = mid
                else:
                    hi = mid
            self.peak = lo
            self.peak_key = key
            self.peak_start = a[
                next(i for i, (x, e) in enumerate(zip(islice(a, lo - 1, None), ends)) if x < e)
            ]
        # Keep the starts whose span may still reach a later request: a + window > last.
        last = a[-1]
        k = bisect_left(a, last - window)
        while k < len(a) and a[k] + window <= last:
            k += 1
        while k > 0 and a[k - 1] + window > last:
            k -= 1
        self._tails[key] = a[k:]

    def add_keyed_unit(self, keys: list[str], times: list[float]) -> None:
        """``add_unit`` for cost-1 requests of many keys (``times`` ascending)."""
        m = len(keys)
        if m == 0:
            return
        if len(set(keys)) * 16 <= m:
            # Few keys: a stable sort of the positions by key (in C) gathers each key's
            # requests, still in time order, for one ``add_unit`` per key.
            order = sorted(range(m), key=keys.__getitem__)
            by_key = list(map(keys.__getitem__, order))
            by_time = list(map(times.__getitem__, order))
            pos = 0
            for key, group in groupby(by_key):
                size = len(list(group))
                self.add_unit(key, by_time[pos : pos + size])
                pos += size
            return
        # Many keys with a few requests each: one pass, keeping each key's last window.
        tails = self._tails
        window = self.window
        peak = self.peak
        for key, t in zip(keys, times):
            tail = tails.get(key)
            if tail is None:
                tail = tails[key] = [t]
            else:
                tail.append(t)
                if tail[0] + window <= t:
                    k = 1
                    while tail[k] + window <= t:
                        k += 1
                    del tail[:k]
            if len(tail) > peak:
                peak = len(tail)
                self.peak_key = key
                self.peak_start = tail[0]
        self.peak = peak


class TimeBins:
    """Request counts in a fixed number of equal time bins, for the chart.

    When the span is unknown (a streamed trace) the bins start narrow and double in
    width, merging neighbours, whenever a request falls past the last one: memory stays
    ``bins`` counters per series and the counts stay exact.
    """

    def __init__(self, bins: int, origin: float, width: float, series: Sequence[str]) -> None:
        if bins < 2:
            raise ValueError(f"bins must be at least 2, got {bins}")
        self.size = bins
        self.origin = origin
        self.width = width
        self.total = [0] * bins
        self.admitted = {name: [0] * bins for name in series}
        self.end = origin  # the latest timestamp seen

    def fit(self, t: float) -> None:
        """Widen the bins until ``t`` falls inside them."""
        self.end = max(self.end, t)
        while (t - self.origin) / self.width >= self.size:
            self.width *= 2
            for counts in (self.total, *self.admitted.values()):
                merged = [counts[i] + counts[i + 1] for i in range(0, self.size - 1, 2)]
                if self.size % 2:
                    merged.append(counts[-1])
                counts[:] = merged + [0] * (self.size - len(merged))

    def indices(self, times: list[float]) -> list[int]:
        """Bin index of each timestamp (call ``fit`` with the last one first)."""
        inv, last = 1.0 / self.width, self.size - 1
        # int((t - origin) * inv) for each t, in C; times ascend, so only the end can
        # round past the last bin.
        out = list(map(int, map(mul, map(sub, times, repeat(self.origin)), repeat(inv))))
        i = len(out) - 1
        while i >= 0 and out[i] > last:
            out[i] = last
            i -= 1
        return out

    def used(self) -> int:
        """Number of bins up to the one holding the latest request."""
        return min(self.size, int((self.end - self.origin) / self.width) + 1)


@dataclass
class AlgorithmRun:
    """One algorithm's figures on one source."""

    algorithm: str
    params: dict[str, Any]
    admitted: int = 0
    rejected: int = 0
    admitted_units: int = 0
    peak_in_window: int = 0
    peak_key: Optional[str] = None
    peak_start: float = 0.0
    retry_after_sum: float = 0.0
    retry_after_count: int = 0  # rejections with a finite wait
    insufficient_capacity: int = 0  # rejections that no wait can fix (cost > capacity)

    @property
    def mean_retry_after(self) -> float:
        if not self.retry_after_count:
            return 0.0
        return self.retry_after_sum / self.retry_after_count

    def as_dict(self) -> dict[str, Any]:
        return {
            "algorithm": self.algorithm,
            "params": self.params,
            "admitted": self.admitted,
            "rejected": self.rejected,
            "admitted_units": self.admitted_units,
            "peak_in_window": self.peak_in_window,
            "peak_key": self.peak_key,
            "peak_start": self.peak_start,
            "mean_retry_after": self.mean_retry_after,
            "insufficient_capacity": self.insufficient_capacity,
        }


@dataclass
class PatternRun:
    """Every algorithm's figures on one source, plus the time bins for its chart."""

    name: str
    description: str
    requests: int
    limit: int
    window: float
    runs: list[AlgorithmRun]
    bins: TimeBins
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        used = self.bins.used()
        return {
            "pattern": self.name,
            "description": self.description,
            "requests": self.requests,
            "limit": self.limit,
            "window": self.window,
            "seconds": round(self.seconds, 6),
            "algorithms": [run.as_dict() for run in self.runs],
            "bins": {
                "origin": self.bins.origin,
                "width": self.bins.width,
                "total": self.bins.total[:used],
                "admitted": {k: v[:used] for k, v in self.bins.admitted.items()},
            },
        }


@dataclass
class Simulation:
    """The result of one ``simulate`` invocation: one ``PatternRun`` per source."""

    limit: int
    window: float
    algorithms: list[str]
    params: dict[str, dict[str, Any]]
    patterns: list[PatternRun] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "limit": self.limit,
            "window": self.window,
            "algorithms": self.algorithms,
            "params": self.params,
            "store": "memory",
            "clock": "simulated",
            "patterns": [p.as_dict() for p in self.patterns],
        }


class Progress:
    """A one-line progress indicator on a stream (stderr), redrawn at most 5 times a second."""

    def __init__(self, stream: TextIO = sys.stderr, interval: float = 0.2) -> None:
        self.stream = stream
        self.interval = interval
        self._last = 0.0
        self._shown = False

    def update(self, label: str, done: int, fraction: float) -> None:
        now = time.monotonic()
        if now - self._last < self.interval:
            return
        self._last = now
        self._shown = True
        self.stream.write(f"\rsimulating {label}: {fraction:6.1%} ({done:,} requests)   ")
        self.stream.flush()

    def done(self) -> None:
        if self._shown:
            self.stream.write("\r" + " " * 72 + "\r")
            self.stream.flush()
            self._shown = False
            self._last = 0.0


def _make_limiter(
    name: str, limit: int, window: float, params: Mapping[str, Any], clock: Callable[[], float]
) -> BaseAlgorithm:
    try:
        cls: Callable[..., BaseAlgorithm] = ALGORITHMS[name]
    except KeyError:
        raise ValueError(
            f"unknown algorithm {name!r}; choose from {', '.join(ALGORITHMS)}"
        ) from None
    try:
        return cls(MemoryBackend(), limit, window, clock=clock, **params)
    except TypeError as exc:
        raise ValueError(f"{name}: {exc}") from None


def run_source(
    source: Source,
    algorithms: Sequence[str],
    limit: int,
    window: float,
    params: Optional[Mapping[str, Mapping[str, Any]]] = None,
    *,
    bins: int = 120,
    progress: Optional[Progress] = None,
    chunk_size: int = CHUNK_SIZE,
) -> PatternRun:
    """Send every request of ``source`` through each algorithm (fresh memory store each).

    Each chunk goes through every limiter in turn, so the trace is read once.
    """
    # Each chunk allocates one result object per decision; with the cyclic GC on, those
    # allocations trigger collections that walk them all: half the run time. The engine
    # makes no reference cycles, so the GC is paused for the run and restored after.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _run_source(
            source,
            algorithms,
            limit,
            window,
            params,
            bins=bins,
            progress=progress,
            chunk_size=chunk_size,
        )
    finally:
        if gc_was_enabled:
            gc.enable()


def _run_source(
    source: Source,
    algorithms: Sequence[str],
    limit: int,
    window: float,
    params: Optional[Mapping[str, Mapping[str, Any]]] = None,
    *,
    bins: int = 120,
    progress: Optional[Progress] = None,
    chunk_size: int = CHUNK_SIZE,
) -> PatternRun:
    """The body of ``run_source``."""
    params = params or {}
    clock_feed: deque[float] = deque()
    # The clock the C++ core calls once per decision: the next queued timestamp.
    clock = clock_feed.popleft
    limiters = [
        (name, _make_limiter(name, limit, window, params.get(name, {}), clock))
        for name in algorithms
    ]
    runs = [AlgorithmRun(name, dict(params.get(name, {}))) for name in algorithms]
    trackers = [_PeakTracker(window) for _ in algorithms]
    if source.span is not None:
        start, end = source.span
        width = _bin_width(end - start, window, bins)
        time_bins = TimeBins(bins, start, width, algorithms)
        time_bins.end = end  # the chart spans the whole pattern, not just to the last request
    else:
        time_bins = None

    requests = 0
    started = time.perf_counter()
    for chunk in source.chunks(chunk_size):
        times = chunk.times
        n = len(times)
        if time_bins is None:
            # Narrow bins to start with; they double as the trace goes on.
            time_bins = TimeBins(bins, times[0], window / 8, algorithms)
        time_bins.fit(times[-1])
        indices = time_bins.indices(times)
        # Where each bin's requests start in the chunk (indices ascend): per-bin counts
        # are then differences of prefix sums, computed in C.
        first_bin = indices[0]
        starts = [bisect_left(indices, b) for b in range(first_bin, indices[-1] + 2)]
        total = time_bins.total
        for b, (lo, hi) in enumerate(zip(starts, starts[1:]), first_bin):
            total[b] += hi - lo
        for (name, limiter), run, tracker in zip(limiters, runs, trackers):
            keys: Iterable[str] = chunk.keys if chunk.keys is not None else repeat(DEFAULT_KEY, n)
            clock_feed.extend(times)
            if chunk.costs is None:
                results = list(map(limiter.is_allowed, keys))
            else:
                results = list(map(limiter.is_allowed, keys, chunk.costs))
            if len(results) != n or clock_feed:
                raise RuntimeError(f"{name} read the simulated clock other than once per decision")
            flags = list(map(_allowed, results))
            prefix = list(accumulate(flags, initial=0))
            admitted = prefix[-1]
            run.admitted += admitted
            run.rejected += n - admitted
            if admitted < n:
                waits = sum(map(_retry_after, results))
                if math.isinf(waits):
                    # Some cost exceeded the capacity (retry_after inf): no wait helps.
                    finite = [w for w in map(_retry_after, results) if math.isfinite(w)]
                    run.insufficient_capacity += n - len(finite)
                    waits = sum(finite)
                    run.retry_after_count += len(finite) - admitted  # admitted wait 0
                else:
                    run.retry_after_count += n - admitted
                run.retry_after_sum += waits
            counts = time_bins.admitted[name]
            for b, (lo, hi) in enumerate(zip(starts, starts[1:]), first_bin):
                counts[b] += prefix[hi] - prefix[lo]
            admitted_times = compress(times, flags)
            if chunk.costs is None:
                run.admitted_units += admitted
                admitted_costs: Iterable[int] = repeat(1)
            else:
                admitted_cost_list = list(compress(chunk.costs, flags))
                run.admitted_units += sum(admitted_cost_list)
                admitted_costs = admitted_cost_list
            if chunk.keys is None and chunk.costs is None:
                tracker.add_unit(DEFAULT_KEY, list(admitted_times))
            elif chunk.keys is None:
                tracker.add(DEFAULT_KEY, admitted_times, admitted_costs)
            elif chunk.costs is None or max(chunk.costs) == 1:
                tracker.add_keyed_unit(list(compress(chunk.keys, flags)), list(admitted_times))
            else:
                _add_per_key(tracker, compress(chunk.keys, flags), admitted_times, admitted_costs)
        requests += n
        if progress is not None:
            progress.update(source.name, requests, source.progress(requests))
    if progress is not None:
        progress.done()
    if time_bins is None:  # an empty trace
        time_bins = TimeBins(bins, 0.0, window / 8, algorithms)
    for run, tracker in zip(runs, trackers):
        run.peak_in_window = tracker.peak
        run.peak_key = tracker.peak_key
        run.peak_start = tracker.peak_start
    return PatternRun(
        source.name,
        source.description,
        requests,
        limit,
        window,
        runs,
        time_bins,
        seconds=time.perf_counter() - started,
    )


def _bin_width(span: float, window: float, bins: int) -> float:
    """A bin width for ``span`` seconds in at most ``bins`` bins, that tiles the window.

    A whole number of bins per window (or of windows per bin) lets the chart show the
    count in each window-length span exactly.
    """
    per_window = math.floor(bins * window / span) if span > 0 else bins
    if per_window >= 1:
        return window / per_window
    return window * math.ceil(span / (window * bins))


def _add_per_key(
    tracker: _PeakTracker,
    keys: Iterable[str],
    times: Iterable[float],
    costs: Iterable[int],
) -> None:
    # Group consecutive requests of one key, so a mostly-one-key trace stays cheap.
    run_key: Optional[str] = None
    run_times: list[float] = []
    run_costs: list[int] = []
    for key, t, c in zip(keys, times, costs):
        if key != run_key:
            if run_key is not None:
                tracker.add(run_key, run_times, run_costs)
            run_key, run_times, run_costs = key, [], []
        run_times.append(t)
        run_costs.append(c)
    if run_key is not None:
        tracker.add(run_key, run_times, run_costs)


def format_table(simulation: Simulation) -> str:
    """The comparison table: one block per pattern, one row per algorithm."""
    limit, window = simulation.limit, simulation.window
    lines = [f"limit {limit} per {window:g} s window, memory store, simulated clock", ""]
    header = (
        f"{'algorithm':<24} {'admitted':>9} {'rejected':>9} {'peak/window':>11} "
        f"{'mean retry_after':>16}"
    )
    for pattern in simulation.patterns:
        lines.append(f"== {pattern.name}: {pattern.description} ({pattern.requests:,} requests)")
        lines.append(header)
        for run in pattern.runs:
            flag = "  <- over limit" if run.peak_in_window > limit else ""
            lines.append(
                f"{run.algorithm:<24} {run.admitted:>9} {run.rejected:>9} "
                f"{run.peak_in_window:>11} {run.mean_retry_after:>15.3f}s{flag}"
            )
        lines.append("")
    if set(simulation.algorithms) == set(ALGORITHMS):
        lines.append(_READING)
    return "\n".join(lines)


_READING = """\
peak/window above the limit: fixed window lets 2x through at a boundary; the
buckets and GCRA admit a full bucket plus what refills during the window; adaptive
allows bursts up to burst_multiplier x limit for quiet clients by design. The
sliding window log is the only one exact in every window."""


def simulate(
    sources: Sequence[Source],
    algorithms: Optional[Sequence[str]] = None,
    limit: int = 10,
    window: float = 1.0,
    params: Optional[Mapping[str, Mapping[str, Any]]] = None,
    *,
    bins: int = 120,
    progress: Optional[Progress] = None,
) -> Simulation:
    """Run each source through each algorithm (all seven by default); see ``run_source``."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be a positive int, got {limit!r}")
    if isinstance(window, bool) or not isinstance(window, (int, float)):
        raise ValueError(f"window must be a number of seconds, got {window!r}")
    if not (math.isfinite(window) and window > 0):
        raise ValueError(f"window must be finite and > 0, got {window!r}")
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 2:
        raise ValueError(f"bins must be an int >= 2, got {bins!r}")
    names = list(algorithms) if algorithms is not None else list(ALGORITHMS)
    if not names:
        raise ValueError("algorithms: choose at least one")
    for name in names:
        if name not in ALGORITHMS:
            raise ValueError(f"unknown algorithm {name!r}; choose from {', '.join(ALGORITHMS)}")
    if len(set(names)) != len(names):
        raise ValueError(f"algorithms: each may appear once, got {','.join(names)}")
    extras = {k: dict(v) for k, v in (params or {}).items()}
    for name in extras:
        if name not in names:
            raise ValueError(f"params given for {name!r}, which is not among the algorithms")
    result = Simulation(int(limit), float(window), names, extras)
    for source in sources:
        result.patterns.append(
            run_source(source, names, limit, float(window), extras, bins=bins, progress=progress)
        )
    return result

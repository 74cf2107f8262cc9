"""Traffic for the simulator: scripted patterns and recorded CSV traces.

Every source yields *chunks* of requests in time order: a list of timestamps plus,
optionally, a list of keys and a list of costs (``None`` means "all ``client``" /
"all cost 1"). Chunks keep the engine's per-request work in C (one ``map`` over a chunk)
and keep memory bounded however long the trace is: nothing holds the whole trace.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Callable, Optional

__all__ = [
    "CHUNK_SIZE",
    "PATTERNS",
    "Chunk",
    "CsvTrace",
    "Pattern",
    "TraceError",
    "boundary_attack",
    "bursts",
    "make_pattern",
    "ramp",
    "steady",
]

CHUNK_SIZE = 65_536
DEFAULT_KEY = "client"


class TraceError(ValueError):
    """A trace file that cannot be simulated; the message names the file and line."""


@dataclass
class Chunk:
    """Consecutive requests: ``times`` ascending; ``keys``/``costs`` parallel or ``None``."""

    times: list[float]
    keys: Optional[list[str]] = None
    costs: Optional[list[int]] = None


class Source:
    """Something the engine can run: a name, an optional request count, and chunks."""

    name: str
    description: str
    #: Number of requests if known up front (patterns), else ``None`` (streamed traces).
    total: Optional[int]
    #: Time span ``(start, end)`` if known up front, so chart bins fit it exactly.
    span: Optional[tuple[float, float]]

    def chunks(self, size: int = CHUNK_SIZE) -> Iterator[Chunk]:
        raise NotImplementedError

    def progress(self, done: int) -> float:
        """Fraction of the source consumed after ``done`` requests (for the indicator)."""
        return done / self.total if self.total else 0.0


class Pattern(Source):
    """A scripted pattern: a generator of timestamps, each request cost 1, one key."""

    def __init__(
        self,
        name: str,
        description: str,
        total: int,
        span: tuple[float, float],
        times: Callable[[], Iterable[float]],
    ) -> None:
        self.name = name
        self.description = description
        self.total = total
        self.span = span
        self._times = times

    def chunks(self, size: int = CHUNK_SIZE) -> Iterator[Chunk]:
        it = iter(self._times())
        while True:
            times = list(islice(it, size))
            if not times:
                return
            yield Chunk(times)


def _repeats(requests: Optional[int], per_repeat: int, default: int) -> int:
    if requests is None:
        return default
    return max(1, math.ceil(requests / per_repeat))


def steady(limit: int, window: float, requests: Optional[int] = None) -> Pattern:
    """1.5x the allowed rate, evenly spaced (10 windows by default)."""
    count = requests if requests is not None else 15 * limit
    step = window / (1.5 * limit)
    return Pattern(
        "steady",
        "1.5x the allowed rate, evenly spaced",
        count,
        (0.0, count * step),
        lambda: (i * step for i in range(count)),
    )


def bursts(limit: int, window: float, requests: Optional[int] = None) -> Pattern:
    """Bursts of 5x limit at one instant, 3 windows apart (three by default)."""
    size = 5 * limit
    n = _repeats(requests, size, 3)

    def times() -> Iterator[float]:
        for b in range(n):
            t = (0.5 + 3 * b) * window
            for _ in range(size):
                yield t

    return Pattern(
        "bursts",
        "bursts of 5x limit at one instant, 3 windows apart",
        n * size,
        (0.0, (3 * (n - 1) + 1.5) * window),  # one window past the last burst
        times,
    )


def boundary_attack(limit: int, window: float, requests: Optional[int] = None) -> Pattern:
    """``limit`` requests just before a window boundary and ``limit`` just after, repeated.

    The spike a fixed window admits twice over: both halves fit their own window.
    """
    n = _repeats(requests, 2 * limit, 3)
    eps = 0.001 * window

    def times() -> Iterator[float]:
        for b in range(n):
            boundary = (1 + 3 * b) * window
            for _ in range(limit):
                yield boundary - eps
            for _ in range(limit):
                yield boundary + eps

    return Pattern(
        "boundary",
        "limit just before a window boundary, limit just after",
        n * 2 * limit,
        (0.0, (3 * (n - 1) + 2) * window),  # one window past the last spike
        times,
    )


def ramp(limit: int, window: float, requests: Optional[int] = None) -> Pattern:
    """A rate rising linearly from 0 to 3x the allowed rate (over 10 windows by default).

    With rate ``r(t) = peak·t/T`` the i-th arrival is at ``sqrt(2·i·T/peak)``.
    """
    count = requests if requests is not None else 15 * limit
    peak = 3.0 * limit / window
    duration = 2.0 * count / peak
    scale = 2.0 * duration / peak
    return Pattern(
        "ramp",
        "rate rising linearly from 0 to 3x the allowed rate",
        count,
        (0.0, duration),
        lambda: (math.sqrt(i * scale) for i in range(count)),
    )


PATTERNS: dict[str, Callable[[int, float, Optional[int]], Pattern]] = {
    "steady": steady,
    "bursts": bursts,
    "boundary": boundary_attack,
    "ramp": ramp,
}


def make_pattern(name: str, limit: int, window: float, requests: Optional[int] = None) -> Pattern:
    """The pattern called ``name`` (see ``PATTERNS``); ``requests`` scales its length."""
    try:
        factory = PATTERNS[name]
    except KeyError:
        raise ValueError(f"unknown pattern {name!r}; choose from {', '.join(PATTERNS)}") from None
    if requests is not None and (
        isinstance(requests, bool) or not isinstance(requests, int) or requests < 1
    ):
        raise ValueError(f"requests must be a positive int, got {requests!r}")
    return factory(limit, window, requests)


_HEADER_NAMES = ("timestamp", "key", "cost")


class CsvTrace(Source):
    """A recorded trace: CSV lines ``timestamp[,key[,cost]]``, sorted by timestamp.

    Timestamps are seconds (any origin: Unix time or 0-based); a header line naming the
    columns, blank lines and lines starting with ``#`` are skipped. The file is read
    lazily, one chunk at a time, so a trace of any length runs in bounded memory. Bad
    lines raise ``TraceError`` naming the file and line number: a timestamp that is not a
    finite number or is earlier than the previous line's, an empty key, a cost that is not
    a positive integer, or more than three columns.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        if not os.path.isfile(self.path):
            raise TraceError(f"trace file {self.path!r} does not exist or is not a file")
        self.name = os.path.basename(self.path)
        self.description = f"recorded trace {self.path}"
        self.total = None
        self.span = None
        self._size = max(1, os.path.getsize(self.path))
        self._raw: Optional[io.BufferedReader] = None

    def progress(self, done: int) -> float:
        raw = self._raw
        if raw is None or raw.closed:
            return 1.0
        return min(1.0, raw.tell() / self._size)

    def _fail(self, line: int, message: str) -> TraceError:
        return TraceError(f"{self.path} line {line}: {message}")

    def chunks(self, size: int = CHUNK_SIZE) -> Iterator[Chunk]:
        with open(self.path, newline="", encoding="utf-8") as f:
            self._raw = f.buffer  # type: ignore[assignment]
            try:
                yield from self._parse(csv.reader(f), size)
            except UnicodeDecodeError as exc:
                raise TraceError(f"{self.path}: not UTF-8 text ({exc.reason})") from None
            except csv.Error as exc:
                raise TraceError(f"{self.path}: malformed CSV ({exc})") from None

    def _parse(self, reader: Iterator[list[str]], size: int) -> Iterator[Chunk]:
        fail = self._fail
        columns = 0  # fixed by the first data line: every line must have the same shape
        previous = -math.inf
        times: list[float] = []
        keys: list[str] = []
        costs: list[int] = []
        first = True
        for row in reader:
            if not row or not row[0].strip() and len(row) == 1:
                continue
            head = row[0].strip()
            if head.startswith("#"):
                continue
            line = reader.line_num  # type: ignore[attr-defined]
            if first:
                first = False
                if head.lower() in _HEADER_NAMES:
                    names = [c.strip().lower() for c in row]
                    if names != list(_HEADER_NAMES[: len(names)]):
                        raise fail(
                            line, f"header must be 'timestamp[,key[,cost]]', got {','.join(row)!r}"
                        )
                    continue
            n = len(row)
            if n > 3:
                raise fail(line, f"expected timestamp[,key[,cost]], got {n} columns")
            if columns == 0:
                columns = n
            elif n != columns:
                raise fail(line, f"expected {columns} columns like the first line, got {n}")
            try:
                t = float(head)
            except ValueError:
                raise fail(line, f"timestamp {head!r} is not a number") from None
            if not math.isfinite(t):
                raise fail(line, f"timestamp {head!r} is not finite")
            if t < previous:
                raise fail(
                    line,
                    f"timestamp {t!r} is earlier than the previous line's {previous!r} "
                    "(the trace must be sorted by time)",
                )
            previous = t
            times.append(t)
            if n >= 2:
                key = row[1].strip()
                if not key:
                    raise fail(line, "key is empty")
                keys.append(key)
            if n == 3:
                text = row[2].strip()
                try:
                    cost = int(text)
                except ValueError:
                    raise fail(line, f"cost {text!r} is not an integer") from None
                if cost < 1:
                    raise fail(line, f"cost must be a positive integer, got {cost}")
                costs.append(cost)
            if len(times) >= size:
                yield Chunk(times, keys or None, costs or None)
                times, keys, costs = [], [], []
        if times:
            yield Chunk(times, keys or None, costs or None)

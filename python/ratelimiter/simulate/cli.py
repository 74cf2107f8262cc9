"""``python -m ratelimiter simulate``: traffic through the algorithms, as a table and a chart.

    python -m ratelimiter simulate                       # all patterns, all seven algorithms
    python -m ratelimiter simulate --algorithms token_bucket,gcra --limit 100 --window 60 \\
        --pattern boundary --out boundary.svg
    python -m ratelimiter simulate --trace requests.csv --json

Exit status: 0 on success, 2 for bad arguments or a bad trace (the message says which
line), 3 when a PNG/HTML chart needs matplotlib that is not installed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from typing import Any, Optional

from .charts import FORMATS, PlotDependencyError, write_chart
from .engine import ALGORITHMS, Progress, format_table, simulate
from .traffic import PATTERNS, CsvTrace, Source, make_pattern

__all__ = ["build_parser", "main"]


def _csv_names(text: str, known: Sequence[str], what: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if names == ["all"]:
        return list(known)
    for name in names:
        if name not in known:
            raise argparse.ArgumentTypeError(
                f"unknown {what} {name!r}; choose from {', '.join(known)} or all"
            )
    if not names:
        raise argparse.ArgumentTypeError(f"name at least one {what}")
    return names


def _value(text: str) -> Any:
    if text.lower() == "none":
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"parameter value {text!r} is not a number") from None


def _param(text: str) -> tuple[str, str, Any]:
    target, sep, raw = text.partition("=")
    algorithm, dot, name = target.partition(".")
    if not sep or not dot or not name:
        raise argparse.ArgumentTypeError(
            f"--param wants ALGORITHM.NAME=VALUE (e.g. token_bucket.refill_rate=5), got {text!r}"
        )
    if algorithm not in ALGORITHMS:
        raise argparse.ArgumentTypeError(
            f"--param {text!r}: unknown algorithm {algorithm!r}; "
            f"choose from {', '.join(ALGORITHMS)}"
        )
    return algorithm, name, _value(raw)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _window(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be finite and > 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ratelimiter simulate",
        description="Send simulated traffic through rate-limiting algorithms (memory store, "
        "simulated clock) and print a comparison table, optionally a chart.",
    )
    parser.add_argument(
        "--algorithms",
        type=lambda s: _csv_names(s, list(ALGORITHMS), "algorithm"),
        default=list(ALGORITHMS),
        metavar="A,B,...",
        help=f"comma-separated, default all: {', '.join(ALGORITHMS)}",
    )
    parser.add_argument(
        "--pattern",
        type=lambda s: _csv_names(s, list(PATTERNS), "pattern"),
        default=None,
        metavar="P,Q,...",
        help=f"traffic patterns, default all ({', '.join(PATTERNS)}) unless --trace is given",
    )
    parser.add_argument(
        "--trace",
        metavar="CSV",
        help="a recorded trace: lines of timestamp[,key[,cost]] sorted by time",
    )
    parser.add_argument("--limit", type=_positive_int, default=10, help="per window (10)")
    parser.add_argument("--window", type=_window, default=1.0, help="seconds (1.0)")
    parser.add_argument(
        "--param",
        type=_param,
        action="append",
        default=[],
        metavar="ALGO.NAME=VALUE",
        help="an algorithm's extra parameter, e.g. token_bucket.refill_rate=5 (repeatable)",
    )
    parser.add_argument(
        "--requests",
        type=_positive_int,
        default=None,
        metavar="N",
        help="requests per pattern (default: 10 windows' worth)",
    )
    parser.add_argument(
        "--out",
        metavar="FILE",
        help=f"write the chart; format from the extension: {', '.join(FORMATS)} "
        '(.png/.html need pip install "smart-ratelimiter[plot]")',
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--progress",
        action="store_true",
        help="show progress on stderr (default: only when stderr is a terminal)",
    )
    parser.add_argument(
        "--bins", type=_positive_int, default=120, help="time bins per chart panel (120)"
    )
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the simulator CLI; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    params: dict[str, dict[str, Any]] = {}
    for algorithm, name, value in args.param:
        if algorithm not in args.algorithms:
            parser.error(f"--param for {algorithm}, which is not in --algorithms")
        params.setdefault(algorithm, {})[name] = value
    if args.out is not None and not args.out.lower().endswith(FORMATS):
        parser.error(f"--out {args.out!r}: use a file ending in {', '.join(FORMATS)}")
    if args.bins < 2:
        parser.error("--bins must be at least 2")
    try:
        sources: list[Source] = []
        if args.trace is not None:
            sources.append(CsvTrace(args.trace))
        pattern_names = args.pattern
        if pattern_names is None and args.trace is None:
            pattern_names = list(PATTERNS)
        for name in pattern_names or []:
            sources.append(make_pattern(name, args.limit, args.window, args.requests))
        show_progress = args.progress or sys.stderr.isatty()
        result = simulate(
            sources,
            args.algorithms,
            args.limit,
            args.window,
            params,
            bins=args.bins,
            progress=Progress(sys.stderr) if show_progress else None,
        )
        if args.out is not None:
            # Matplotlib is checked before anything is printed, so a failure is clean.
            path = write_chart(result, args.out)
    except PlotDependencyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result.as_dict(), indent=2, allow_nan=False))
    else:
        print(format_table(result))
    if args.out is not None:
        where = os.path.abspath(path)
        print(f"chart written to {where}", file=sys.stderr if args.json else sys.stdout)
    return 0

"""Simulate traffic through the rate-limiting algorithms and chart what each admits.

The decisions run in the C++ core on the memory store with a simulated clock, so a
million requests take seconds and no test sleeps. From the command line::

    python -m ratelimiter simulate --pattern boundary --out boundary.svg

From Python::

    from ratelimiter.simulate import make_pattern, simulate, format_table, write_chart

    result = simulate([make_pattern("boundary", 10, 1.0)], ["fixed_window", "gcra"])
    print(format_table(result))
    write_chart(result, "boundary.svg")
"""

from .charts import PlotDependencyError, build_figure, render_svg, write_chart
from .engine import (
    ALGORITHMS,
    AlgorithmRun,
    PatternRun,
    Progress,
    Simulation,
    format_table,
    peak_in_any_window,
    simulate,
)
from .traffic import PATTERNS, CsvTrace, TraceError, make_pattern

__all__ = [
    "ALGORITHMS",
    "PATTERNS",
    "AlgorithmRun",
    "CsvTrace",
    "PatternRun",
    "PlotDependencyError",
    "Progress",
    "Simulation",
    "TraceError",
    "build_figure",
    "format_table",
    "make_pattern",
    "peak_in_any_window",
    "render_svg",
    "simulate",
    "write_chart",
]

"""Charts of a simulation: one panel per algorithm (a column per traffic pattern).

Each panel shows requests over time as stacked bars, admitted below and rejected above,
as a rate in requests per window so that the limit is one horizontal line; a dashed line
marks the algorithm's peak: the most units it admitted in any window-length span. SVG
needs nothing beyond the standard library; PNG and HTML use matplotlib, installed with
``pip install "smart-ratelimiter[plot]"``.
"""

from __future__ import annotations

import html
import io
import os
from typing import Any, Callable, TypeVar

from .engine import PatternRun, Simulation, format_table
from .svg import Svg

__all__ = ["PlotDependencyError", "build_figure", "render_svg", "write_chart", "FORMATS"]

T = TypeVar("T")
FORMATS = (".svg", ".png", ".html")
ADMITTED = "#2e7d32"
REJECTED = "#ef9a9a"
LIMIT = "#1a237e"
PEAK = "#ef6c00"

PANEL_W, PANEL_H = 300, 110
LEFT, TOP, GAP_X, GAP_Y, BOTTOM = 64, 74, 56, 64, 40


class PlotDependencyError(ImportError):
    """A PNG or HTML chart was asked for but matplotlib is not installed."""


def _per_window(counts: list[int], window: float, width: float) -> list[float]:
    """Requests per window at each bin.

    When a whole number of bins makes one window, each bin shows the count in the
    window-length span ending with it (a trailing sum, comparable with the limit line
    and never above the exact peak); bins wider than a window show their average rate.
    """
    k = round(window / width)
    if k >= 1 and abs(k * width - window) <= 1e-9 * window:
        out: list[float] = []
        running = 0
        for i, c in enumerate(counts):
            running += c
            if i >= k:
                running -= counts[i - k]
            out.append(float(running))
        return out
    scale = window / width
    return [c * scale for c in counts]


def _series(pattern: PatternRun, algorithm: str) -> tuple[list[float], list[float], list[float]]:
    """Bin left edges (seconds from the first bin) and admitted/rejected per window."""
    bins = pattern.bins
    used = bins.used()
    admitted = bins.admitted[algorithm][:used]
    rejected = [t - a for t, a in zip(bins.total[:used], admitted)]
    lefts = [i * bins.width for i in range(used)]
    return (
        lefts,
        _per_window(admitted, pattern.window, bins.width),
        _per_window(rejected, pattern.window, bins.width),
    )


def _identity(value: Any) -> Any:
    return value


def _runs(values: list[T], key: Callable[[T], float] = _identity) -> list[tuple[int, int, T]]:
    """``(first index, length, value)`` of each run of equal values whose key is > 0."""
    out: list[tuple[int, int, T]] = []
    for i, v in enumerate(values):
        if key(v) <= 0:
            continue
        if out and out[-1][2] == v and out[-1][0] + out[-1][1] == i:
            start, n, _ = out[-1]
            out[-1] = (start, n + 1, v)
        else:
            out.append((i, 1, v))
    return out


def _y_max(pattern: PatternRun) -> float:
    bins = pattern.bins
    offered = _per_window(bins.total[: bins.used()], pattern.window, bins.width)
    peaks = [run.peak_in_window for run in pattern.runs]
    top = max([max(offered, default=0.0), float(pattern.limit), *peaks])
    return top * 1.1 if top > 0 else 1.0


def _x_max(pattern: PatternRun) -> float:
    return pattern.bins.used() * pattern.bins.width


def _ylabel(pattern: PatternRun) -> str:
    return f"requests per {pattern.window:g} s"


def _xlabel(pattern: PatternRun) -> str:
    origin = pattern.bins.origin
    return "time (s)" if origin == 0 else f"time (s) since {origin:.10g}"


def render_svg(simulation: Simulation) -> str:
    """The chart as SVG text: rows are algorithms, columns are traffic patterns."""
    patterns = simulation.patterns
    algorithms = simulation.algorithms
    cols, rows = max(1, len(patterns)), max(1, len(algorithms))
    width = LEFT + cols * (PANEL_W + GAP_X)
    height = TOP + rows * (PANEL_H + GAP_Y) + BOTTOM - GAP_Y + 20
    svg = Svg(width, height, font_family="sans-serif", font_size=11)
    svg.rect(0, 0, width, height, fill="white", class_="background")
    svg.text_at(
        LEFT,
        20,
        f"limit {simulation.limit} per {simulation.window:g} s, memory store, simulated clock",
        font_size=14,
        font_weight="bold",
        class_="title",
    )
    legend = svg.group(class_="legend", transform=f"translate({LEFT},32)")
    for i, (label, color, kind) in enumerate(
        [
            ("admitted", ADMITTED, "rect"),
            ("rejected", REJECTED, "rect"),
            ("limit", LIMIT, "line"),
            ("peak in any window", PEAK, "dash"),
        ]
    ):
        x = i * 130
        if kind == "rect":
            legend.rect(x, 0, 12, 12, fill=color)
        else:
            legend.line(
                x,
                6,
                x + 14,
                6,
                stroke=color,
                stroke_width=2,
                stroke_dasharray="4 2" if kind == "dash" else "none",
            )
        legend.text_at(x + 18, 10, label)

    for c, pattern in enumerate(patterns):
        x0 = LEFT + c * (PANEL_W + GAP_X)
        svg.text_at(
            x0,
            TOP - 12,
            f"{pattern.name} ({pattern.requests:,} requests)",
            font_weight="bold",
            class_="pattern-title",
        )
        y_max, x_max = _y_max(pattern), _x_max(pattern)
        for r, run in enumerate(pattern.runs):
            y0 = TOP + r * (PANEL_H + GAP_Y) + 14
            _panel(svg, pattern, run.algorithm, run.peak_in_window, x0, y0, x_max, y_max)
    return svg.to_string()


def _panel(
    svg: Svg,
    pattern: PatternRun,
    algorithm: str,
    peak: int,
    x0: float,
    y0: float,
    x_max: float,
    y_max: float,
) -> None:
    g = svg.group(class_="panel", data_algorithm=algorithm, data_pattern=pattern.name)
    over = ", over the limit" if peak > pattern.limit else ""
    g.text_at(
        x0,
        y0 - 4,
        f"{algorithm}: peak {peak} in any {pattern.window:g} s{over}",
        class_="panel-title",
    )
    g.rect(x0, y0, PANEL_W, PANEL_H, fill="#fafafa", stroke="#9e9e9e", class_="frame")

    def sx(t: float) -> float:
        return x0 + PANEL_W * t / x_max

    def sy(v: float) -> float:
        return y0 + PANEL_H * (1 - v / y_max)

    lefts, admitted, rejected = _series(pattern, algorithm)
    bar_w = PANEL_W * pattern.bins.width / x_max
    # crispEdges: adjacent bars meet without anti-aliased seams between them.
    adm = g.group(class_="series admitted", fill=ADMITTED, shape_rendering="crispEdges")
    rej = g.group(class_="series rejected", fill=REJECTED, shape_rendering="crispEdges")
    # Neighbouring bins of equal height become one rectangle: same picture, smaller file.
    for i, n, a in _runs(admitted):
        adm.rect(sx(lefts[i]), sy(a), bar_w * n, sy(0) - sy(a))
    for i, n, (a, rj) in _runs(list(zip(admitted, rejected)), key=lambda v: v[1]):
        rej.rect(sx(lefts[i]), sy(a + rj), bar_w * n, sy(a) - sy(a + rj))
    g.line(
        x0,
        sy(pattern.limit),
        x0 + PANEL_W,
        sy(pattern.limit),
        stroke=LIMIT,
        stroke_width=1.5,
        class_="limit-line",
        data_value=pattern.limit,
    )
    g.line(
        x0,
        sy(peak),
        x0 + PANEL_W,
        sy(peak),
        stroke=PEAK,
        stroke_width=1.5,
        stroke_dasharray="4 2",
        class_="peak-line",
        data_value=peak,
    )
    axes = g.group(class_="axes", font_size=9, fill="#424242")
    axes.text_at(x0, y0 + PANEL_H + 12, "0", class_="tick x")
    axes.text_at(
        x0 + PANEL_W, y0 + PANEL_H + 12, f"{x_max:.3g}", text_anchor="end", class_="tick x"
    )
    axes.text_at(x0 - 4, sy(0), "0", text_anchor="end", class_="tick y")
    top = y_max / 1.1
    below = sy(0)
    for value in sorted({pattern.limit, round(top)}):
        if below - sy(value) >= 10:  # skip a label that would overprint the one below
            axes.text_at(x0 - 4, sy(value) + 3, f"{value:g}", text_anchor="end", class_="tick y")
            below = sy(value)
    axes.text_at(
        x0 + PANEL_W / 2,
        y0 + PANEL_H + 14,
        _xlabel(pattern),
        text_anchor="middle",
        class_="axis-label x",
    )
    axes.text_at(
        x0 - 30,
        y0 + PANEL_H / 2,
        _ylabel(pattern),
        text_anchor="middle",
        transform=f"rotate(-90 {x0 - 30:.2f} {y0 + PANEL_H / 2:.2f})",
        class_="axis-label y",
    )


def build_figure(simulation: Simulation) -> Any:
    """The chart as a matplotlib ``Figure`` (no pyplot, so no global state or GUI)."""
    try:
        from matplotlib.figure import Figure  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        raise PlotDependencyError(
            'PNG and HTML charts need matplotlib: pip install "smart-ratelimiter[plot]" '
            "(or write an .svg, which needs nothing)"
        ) from None
    patterns = simulation.patterns
    rows, cols = max(1, len(simulation.algorithms)), max(1, len(patterns))
    fig = Figure(figsize=(4.2 * cols, 1.9 * rows + 0.8), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    fig.suptitle(
        f"limit {simulation.limit} per {simulation.window:g} s, memory store, simulated clock",
        x=0.01,
        ha="left",
    )
    for c, pattern in enumerate(patterns):
        y_max = _y_max(pattern)
        for r, run in enumerate(pattern.runs):
            ax = axes[r][c]
            lefts, admitted, rejected = _series(pattern, run.algorithm)
            edges = [*lefts, len(lefts) * pattern.bins.width]
            offered = [a + r for a, r in zip(admitted, rejected)]
            # One step patch per series (not a bar per bin): fast to draw and to save.
            ax.stairs(admitted, edges, fill=True, color=ADMITTED, label="admitted")
            ax.stairs(
                offered, edges, baseline=admitted, fill=True, color=REJECTED, label="rejected"
            )
            ax.axhline(pattern.limit, color=LIMIT, linewidth=1.2, label="limit")
            ax.axhline(
                run.peak_in_window,
                color=PEAK,
                linewidth=1.2,
                linestyle="--",
                label="peak in any window",
            )
            ax.set_xlim(0, _x_max(pattern))
            ax.set_ylim(0, y_max)
            ax.set_title(f"{pattern.name}: {run.algorithm} (peak {run.peak_in_window})", fontsize=9)
            ax.set_xlabel(_xlabel(pattern), fontsize=8)
            ax.set_ylabel(_ylabel(pattern), fontsize=8)
            ax.tick_params(labelsize=7)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(
        handles,
        labels,
        loc="upper right",
        ncol=4,
        fontsize=8,
        frameon=False,
        bbox_to_anchor=(1.0, 1.0),
    )
    return fig


def _render_html(simulation: Simulation) -> str:
    fig = build_figure(simulation)
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    chart = buf.getvalue()
    chart = chart[chart.index("<svg") :]  # drop the XML prolog and doctype for inline use
    table = html.escape(format_table(simulation))
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        "<title>smart-ratelimiter simulation</title></head>\n<body>\n"
        f"<pre>{table}</pre>\n{chart}\n</body></html>\n"
    )


def write_chart(simulation: Simulation, path: str | os.PathLike[str]) -> str:
    """Write the chart to ``path``, the format chosen by its extension; returns the path."""
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if ext not in FORMATS:
        raise ValueError(
            f"out: cannot tell the chart format from {path!r}; use one of {', '.join(FORMATS)}"
        )
    if ext == ".svg":
        content = render_svg(simulation)
        with open(path, "w", encoding="utf-8") as f:
            f.write(content)
    elif ext == ".png":
        build_figure(simulation).savefig(path, format="png", dpi=100)
    else:
        content = _render_html(simulation)
        with open(path, "w", encoding="utf-8") as f:
            f.write(content)
    return path

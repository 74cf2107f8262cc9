"""The charts' structure, read back from the SVG tree and the matplotlib Figure."""

from __future__ import annotations

import struct
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ratelimiter.simulate import (
    PlotDependencyError,
    Simulation,
    make_pattern,
    render_svg,
    simulate,
    write_chart,
)
from ratelimiter.simulate.charts import _per_window
from ratelimiter.simulate.svg import Element, Svg

NS = {"s": "http://www.w3.org/2000/svg"}


@pytest.fixture(scope="module")
def boundary() -> Simulation:
    return simulate(
        [make_pattern("boundary", 10, 1.0)], ["fixed_window", "sliding_window", "gcra"], 10, 1.0
    )


@pytest.fixture(scope="module")
def four_patterns() -> Simulation:
    names = ("steady", "bursts", "boundary", "ramp")
    return simulate([make_pattern(p, 10, 1.0) for p in names], limit=10, window=1.0)


def _panels(root: ET.Element) -> list[ET.Element]:
    return root.findall(".//s:g[@class='panel']", NS)


def _count_runs(values: list, key=lambda v: v) -> int:
    """Runs of equal neighbouring values whose key is positive (written independently)."""
    runs, previous = 0, None
    for v in values:
        if key(v) > 0 and v != previous:
            runs += 1
        previous = v if key(v) > 0 else None
    return runs


def test_svg_has_one_panel_per_algorithm_and_pattern(four_patterns: Simulation) -> None:
    root = ET.fromstring(render_svg(four_patterns))
    panels = _panels(root)
    assert len(panels) == 7 * 4
    assert {(p.get("data-algorithm"), p.get("data-pattern")) for p in panels} == {
        (a, p) for a in four_patterns.algorithms for p in ("steady", "bursts", "boundary", "ramp")
    }
    titles = [t.text for t in root.findall("s:text[@class='pattern-title']", NS)]
    assert titles == [
        "steady (150 requests)",
        "bursts (150 requests)",
        "boundary (60 requests)",
        "ramp (150 requests)",
    ]
    legend = [t.text for t in root.findall("s:g[@class='legend']/s:text", NS)]
    assert legend == ["admitted", "rejected", "limit", "peak in any window"]


def test_svg_panel_contents(boundary: Simulation) -> None:
    root = ET.fromstring(render_svg(boundary))
    pattern = boundary.patterns[0]
    panels = _panels(root)
    assert [p.get("data-algorithm") for p in panels] == ["fixed_window", "sliding_window", "gcra"]
    for panel, run in zip(panels, pattern.runs):
        labels = {t.get("class"): t.text for t in panel.findall(".//s:text", NS)}
        assert labels["axis-label x"] == "time (s)"
        assert labels["axis-label y"] == "requests per 1 s"
        assert labels["panel-title"].startswith(
            f"{run.algorithm}: peak {run.peak_in_window} in any 1 s"
        )
        frame = panel.find("s:rect[@class='frame']", NS)
        used = pattern.bins.used()
        admitted = _per_window(pattern.bins.admitted[run.algorithm][:used], 1.0, pattern.bins.width)
        total = _per_window(pattern.bins.total[:used], 1.0, pattern.bins.width)
        adm = panel.findall("s:g[@class='series admitted']/s:rect", NS)
        rej = panel.findall("s:g[@class='series rejected']/s:rect", NS)
        # One rectangle per run of equal, non-zero neighbouring bins, as wide as the run.
        bar_w = float(frame.get("width")) * pattern.bins.width / (used * pattern.bins.width)
        rejected = [t - a for a, t in zip(admitted, total)]
        assert len(adm) == _count_runs(admitted)
        assert len(rej) == _count_runs(list(zip(admitted, rejected)), lambda v: v[1])
        assert sum(float(r.get("width")) for r in adm) == pytest.approx(
            bar_w * sum(1 for a in admitted if a > 0), abs=0.05
        )
        assert sum(float(r.get("width")) for r in rej) == pytest.approx(
            bar_w * sum(1 for r in rejected if r > 0), abs=0.05
        )
        limit = panel.find("s:line[@class='limit-line']", NS)
        peak = panel.find("s:line[@class='peak-line']", NS)
        assert limit.get("data-value") == "10"
        assert peak.get("data-value") == str(run.peak_in_window)
        # The limit line spans the panel at the height the y scale gives 10.
        x0, y0 = float(frame.get("x")), float(frame.get("y"))
        w, h = float(frame.get("width")), float(frame.get("height"))
        assert (float(limit.get("x1")), float(limit.get("x2"))) == (x0, x0 + w)
        y_max = 20 * 1.1  # fixed window's peak of 20 (the offered load is 20 too)
        assert float(limit.get("y1")) == pytest.approx(y0 + h * (1 - 10 / y_max), abs=0.01)
        # Bars stay inside the frame.
        for rect in adm + rej:
            assert x0 - 0.01 <= float(rect.get("x")) <= x0 + w
            assert y0 - 0.01 <= float(rect.get("y")) <= y0 + h


def test_fixed_window_bar_shows_the_spike(boundary: Simulation) -> None:
    pattern = boundary.patterns[0]
    bins = pattern.bins
    # Trailing-window counts: the fixed window admits 20 within one window, the log 10.
    fixed = _per_window(bins.admitted["fixed_window"], 1.0, bins.width)
    log = _per_window(bins.admitted["sliding_window"], 1.0, bins.width)
    assert max(fixed) == 20 and max(log) == 10


def test_per_window_trailing_sum_and_average() -> None:
    assert _per_window([1, 2, 3, 4], 0.5, 0.25) == [1, 3, 5, 7]  # 2 bins per window
    assert _per_window([4, 8], 1.0, 2.0) == [2, 4]  # bins wider than a window: rate


def test_svg_writer_escapes_and_formats() -> None:
    svg = Svg(10, 5)
    svg.text_at(1.005, 2, 'a < b & "c"', class_="t", data_x=0.1)
    with pytest.raises(ValueError, match="finite"):
        svg.rect(float("nan"), 0, 1, 1)
    with pytest.raises(TypeError):
        Element("g", stroke_width=True)
    text = svg.to_string()
    root = ET.fromstring(text)
    node = root.find("s:text", NS)
    assert node.text == 'a < b & "c"'
    assert node.get("class") == "t" and node.get("data-x") == "0.1"
    assert node.get("x") == "1" and root.get("viewBox") == "0 0 10 5"


def test_write_svg_and_refuse_unknown_extension(boundary: Simulation, tmp_path: Path) -> None:
    out = write_chart(boundary, tmp_path / "chart.svg")
    assert len(_panels(ET.parse(out).getroot())) == 3
    with pytest.raises(ValueError, match="chart format"):
        write_chart(boundary, tmp_path / "chart.jpg")


def test_png_figure_structure(four_patterns: Simulation, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from ratelimiter.simulate import build_figure

    fig = build_figure(four_patterns)
    axes = fig.axes
    assert len(axes) == 7 * 4
    first = axes[0]
    assert first.get_xlabel() == "time (s)"
    assert first.get_ylabel() == "requests per 1 s"
    assert first.get_title() == "steady: fixed_window (peak 11)"
    # Two step series (admitted, rejected stacked on it) of one step per bin, the limit
    # and peak lines.
    used = four_patterns.patterns[0].bins.used()
    series = first.patches
    assert [p.get_label() for p in series] == ["admitted", "rejected"]
    assert [len(p.get_data().values) for p in series] == [used, used]
    assert list(series[1].get_data().baseline) == list(series[0].get_data().values)
    assert [line.get_label() for line in first.get_lines()] == ["limit", "peak in any window"]
    assert first.get_lines()[0].get_ydata()[0] == 10
    assert first.get_lines()[1].get_ydata()[0] == 11
    titles = [ax.get_title() for ax in axes]
    assert "boundary: fixed_window (peak 20)" in titles
    assert "boundary: sliding_window (peak 10)" in titles


def test_png_file(boundary: Simulation, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from ratelimiter.simulate import build_figure

    path = write_chart(boundary, tmp_path / "chart.png")
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk
    w_in, h_in = build_figure(boundary).get_size_inches()
    assert (width, height) == (round(w_in * 100), round(h_in * 100))


def test_html_embeds_chart_and_table(boundary: Simulation, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    text = Path(write_chart(boundary, tmp_path / "chart.html")).read_text()
    assert text.startswith("<!DOCTYPE html>")
    assert "<svg" in text and "fixed_window" in text
    assert "== boundary" in text


def test_png_without_matplotlib_names_the_extra(
    boundary: Simulation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(PlotDependencyError, match=r'pip install "smart-ratelimiter\[plot\]"'):
        write_chart(boundary, tmp_path / "chart.png")
    assert not (tmp_path / "chart.png").exists()

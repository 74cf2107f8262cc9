"""``python -m ratelimiter.simulate`` as a user runs it: a subprocess, exit codes, output."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _sim(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ratelimiter.simulate", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_json_figures_for_the_boundary_attack() -> None:
    run = _sim("--pattern", "boundary", "--algorithms", "fixed_window,sliding_window", "--json")
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert (data["limit"], data["window"], data["store"], data["clock"]) == (
        10,
        1.0,
        "memory",
        "simulated",
    )
    [pattern] = data["patterns"]
    assert (pattern["pattern"], pattern["requests"]) == ("boundary", 60)
    figures = {
        a["algorithm"]: (a["admitted"], a["rejected"], a["peak_in_window"])
        for a in pattern["algorithms"]
    }
    assert figures == {"fixed_window": (60, 0, 20), "sliding_window": (30, 30, 10)}
    assert sum(pattern["bins"]["total"]) == 60
    assert sum(pattern["bins"]["admitted"]["fixed_window"]) == 60
    assert run.stderr == ""  # no progress indicator when stderr is not a terminal


def test_table_and_svg_chart(tmp_path: Path) -> None:
    run = _sim("--out", "sim.svg", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert "limit 10 per 1 s window, memory store, simulated clock" in out
    for name in ("== steady", "== bursts", "== boundary", "== ramp"):
        assert name in out
    assert "fixed_window                    60         0          20" in out
    assert f"chart written to {tmp_path / 'sim.svg'}" in out
    root = ET.parse(tmp_path / "sim.svg").getroot()
    panels = root.findall(".//{http://www.w3.org/2000/svg}g[@class='panel']")
    assert len(panels) == 7 * 4


def test_params_and_progress() -> None:
    run = _sim(
        "--pattern",
        "bursts",
        "--algorithms",
        "token_bucket",
        "--param",
        "token_bucket.refill_rate=2",
        "--json",
        "--progress",
    )
    assert run.returncode == 0, run.stderr
    [algo] = json.loads(run.stdout)["patterns"][0]["algorithms"]
    assert (algo["params"], algo["admitted"]) == ({"refill_rate": 2}, 22)
    assert "simulating bursts" in run.stderr


def test_trace_file(tmp_path: Path) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text("timestamp,key\n" + "".join(f"{i * 0.05:.2f},u{i % 2}\n" for i in range(40)))
    run = _sim("--trace", str(trace), "--algorithms", "sliding_window", "--limit", "5", "--json")
    assert run.returncode == 0, run.stderr
    [pattern] = json.loads(run.stdout)["patterns"]
    [algo] = pattern["algorithms"]
    # Two keys, each sending 20 requests over 2 s at 10/s: 5 per key per second pass.
    assert (pattern["pattern"], pattern["requests"]) == ("t.csv", 40)
    assert (algo["admitted"], algo["peak_in_window"]) == (20, 5)


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["--algorithms", "fixed_window,bogus"], 2, "unknown algorithm 'bogus'"),
        (["--pattern", "zigzag"], 2, "unknown pattern 'zigzag'"),
        (["--limit", "0"], 2, "must be a positive integer"),
        (["--window", "nan"], 2, "must be finite and > 0"),
        (["--param", "gcra.burst"], 2, "ALGORITHM.NAME=VALUE"),
        (["--param", "gcra.burst=x"], 2, "not a number"),
        (
            ["--algorithms", "gcra", "--param", "token_bucket.refill_rate=1"],
            2,
            "not in --algorithms",
        ),
        (["--param", "gcra.burst=-3"], 2, "burst"),
        (["--out", "chart.jpg"], 2, ".svg, .png, .html"),
        (["--trace", "/nonexistent/trace.csv"], 2, "does not exist"),
    ],
)
def test_bad_arguments(args: list[str], code: int, message: str) -> None:
    run = _sim(*args)
    assert run.returncode == code
    assert message in run.stderr
    assert "Traceback" not in run.stderr


def test_bad_trace_names_the_line(tmp_path: Path) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text("1.0,a,1\n2.0,a,1\n3.0,a,-2\n")
    run = _sim("--trace", str(trace))
    assert run.returncode == 2
    assert f"error: {trace} line 3: cost must be a positive integer, got -2" in run.stderr
    assert "Traceback" not in run.stderr


def test_png_without_matplotlib_exits_3(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['matplotlib'] = None; sys.modules['matplotlib.figure'] = None\n"
        "from ratelimiter.simulate.cli import main\n"
        "raise SystemExit(main(['--pattern', 'boundary', '--out', 'c.png']))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 3
    assert 'pip install "smart-ratelimiter[plot]"' in run.stderr
    assert run.stdout == "" and not (tmp_path / "c.png").exists()


def test_example_is_the_same_command(tmp_path: Path) -> None:
    example = ROOT / "examples" / "compare_algorithms.py"
    run = subprocess.run(
        [sys.executable, str(example), "--pattern", "boundary", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["patterns"][0]["requests"] == 60

"""The package and the examples type-check under mypy --strict, and ruff is clean."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


def test_mypy_strict_on_package_and_examples() -> None:
    run = _run("mypy", "--strict", "python/ratelimiter", "examples")
    assert run.returncode == 0, run.stdout + run.stderr


def test_ruff_clean() -> None:
    run = _run("ruff", "check", "python", "examples", "tests", "bench")
    assert run.returncode == 0, run.stdout + run.stderr

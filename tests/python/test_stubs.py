"""The hand-written stubs of the C++ extension match the compiled module (no drift)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ALLOWLIST = Path(__file__).with_name("stubtest_allowlist.txt")


def test_core_stubs_match_the_extension() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "ratelimiter._core", "--allowlist",
         str(ALLOWLIST)],
        capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr

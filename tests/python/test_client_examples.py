"""The client examples run (each against the local demo API it starts) and see no 429."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from http_servers import EXAMPLES

import ratelimiter

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]


def run_example(script: str, *args: str) -> str:
    env = dict(os.environ)
    package_root = str(Path(ratelimiter.__file__).parent.parent)
    if package_root in sys.path:  # the example imports the ratelimiter this test imports
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root,
                                                          env.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, str(EXAMPLES / script), *args], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_client_requests_example() -> None:
    out = run_example("client_requests.py", "--rate", "10", "--count", "12")
    assert re.search(r"sent 12 requests in [\d.]+ s: \{200: 12\}; "
                     r"the server answered \{200: 12\}", out), out


def test_client_httpx_async_example() -> None:
    out = run_example("client_httpx_async.py", "--rate", "50", "--count", "30",
                      "--concurrency", "3")
    match = re.search(r"30 tasks in [\d.]+ s: \{200: 30\}; the server answered \{200: 30\}, "
                      r"at most (\d+) in flight", out)
    assert match, out
    assert 1 <= int(match.group(1)) <= 3

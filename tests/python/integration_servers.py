"""Multi-process servers for the framework integration tests: gunicorn (sync or uvicorn
workers) started on a free 127.0.0.1 port, with the examples directory on its path."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import ratelimiter

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_env(extra: dict[str, str]) -> dict[str, str]:
    """The environment for a server process: the same ``ratelimiter`` as this process."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    package_root = str(Path(ratelimiter.__file__).parent.parent)
    paths = [str(EXAMPLES)]
    if package_root in sys.path:
        paths.append(package_root)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (*paths, env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


def _wait_listening(proc: subprocess.Popen[bytes], port: int, timeout: float = 60.0) -> None:
    """Wait until the server accepts connections (not a timing assertion: a readiness poll
    with a generous deadline; the server's own start-up time is what it waits for)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not listen in time")


@contextmanager
def gunicorn(app: str, env: dict[str, str], *, workers: int = 2,
             args: Sequence[str] = ()) -> Iterator[str]:
    """``gunicorn -w <workers> <app>`` on a free port; yields the base URL once it listens.

    ``--preload`` is off, so each worker imports the app itself (as in most deployments).
    """
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{port}",
         "--log-level", "warning", *args, app],
        env=child_env(env), cwd=str(ROOT),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        _wait_listening(proc, port)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

"""Real HTTP servers for integration tests: werkzeug (WSGI) and uvicorn (ASGI) in a thread,
and example scripts in a subprocess, all on 127.0.0.1 with an OS-assigned port.

Sockets are bound and listening before the server thread starts, so a request made right
away waits in the backlog instead of racing the server's startup (no sleeps needed).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Literal, Optional

import uvicorn
from werkzeug.serving import make_server

import ratelimiter

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


@contextmanager
def serve_wsgi(app: Callable[..., Any]) -> Iterator[str]:
    """Serve a WSGI app with werkzeug's threaded server; yield its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def listening_socket() -> socket.socket:
    # proto=IPPROTO_TCP so asyncio sets TCP_NODELAY on accepted connections (else 40 ms
    # Nagle / delayed-ACK stalls per response).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    return sock


@contextmanager
def serve_asgi(app: Any, *, lifespan: Literal["auto", "on", "off"] = "on") -> Iterator[str]:
    """Serve an ASGI app with uvicorn in a thread; yield its base URL."""
    sock = listening_socket()
    port = sock.getsockname()[1]
    # proxy_headers=False: uvicorn would otherwise rewrite the client address from
    # X-Forwarded-For for peers in forwarded_allow_ips (127.0.0.1 by default).
    config = uvicorn.Config(
        app, lifespan=lifespan, log_level="warning", access_log=False, proxy_headers=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


class ExampleProcess:
    """A running example script; ``url`` is where it listens."""

    def __init__(self, proc: subprocess.Popen[str], url: str) -> None:
        self.proc = proc
        self.url = url


@contextmanager
def run_example(
    script: str, args: Sequence[str] = (), env: Optional[dict[str, str]] = None
) -> Iterator[ExampleProcess]:
    """Start ``examples/<script> --port 0 ...``; it prints ``listening on <url>`` when ready."""
    full_env = dict(os.environ)
    full_env["PYTHONUNBUFFERED"] = "1"
    # The example must import the same ratelimiter as this process: if it came from a
    # sys.path entry (PYTHONPATH, pytest pythonpath), pass that entry on.
    package_root = str(Path(ratelimiter.__file__).parent.parent)
    if package_root in sys.path:
        full_env["PYTHONPATH"] = os.pathsep.join(
            p for p in (package_root, full_env.get("PYTHONPATH", "")) if p
        )
    full_env.update(env or {})
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / script), "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=full_env,
        cwd=str(ROOT),
    )
    try:
        url = _wait_for_url(proc)
        yield ExampleProcess(proc, url)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def _wait_for_url(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    seen: list[str] = []
    for line in proc.stdout:  # blocks until the example prints, or exits
        seen.append(line)
        if line.startswith("listening on "):
            url = line.split("listening on ", 1)[1].strip()
            # Keep draining output so the child never blocks on a full pipe.
            threading.Thread(target=_drain, args=(proc,), daemon=True).start()
            return url
    raise RuntimeError(f"example exited with {proc.wait()} before listening:\n{''.join(seen)}")


def _drain(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    try:
        for _ in proc.stdout:
            pass
    except ValueError:  # closed
        pass

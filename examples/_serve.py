"""How the example web apps run, written once so each example shows only its limits.

``--host`` / ``--port`` (defaults ``$HOST`` / ``$PORT``, else 127.0.0.1:8000; ``--port 0``
picks a free port). The first line printed is ``listening on <url>``, once the socket
accepts; tests wait for it. SIGTERM or Ctrl-C stops the server cleanly. The server faces
clients directly, so ``X-Forwarded-For`` is never trusted.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import threading
from types import FrameType
from typing import Any, Callable, Optional


def _address(doc: Optional[str], argv: Optional[list[str]]) -> tuple[str, int]:
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    args = parser.parse_args(argv)
    return args.host, args.port


def serve_wsgi(create_app: Callable[[], Any], doc: Optional[str],
               argv: Optional[list[str]] = None) -> None:
    """Serve ``create_app()`` with werkzeug's threaded server until SIGTERM or Ctrl-C."""
    from werkzeug.serving import make_server

    host, port = _address(doc, argv)
    server = make_server(host, port, create_app(), threaded=True)

    def stop(signum: int, frame: Optional[FrameType]) -> None:
        # shutdown() waits for serve_forever() to return: not from this (its) thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    print(f"listening on http://{host}:{server.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def serve_asgi(create_app: Callable[[], Any], doc: Optional[str],
               argv: Optional[list[str]] = None) -> None:
    """Serve ``create_app()`` with uvicorn until SIGTERM or Ctrl-C."""
    import uvicorn

    host, port = _address(doc, argv)
    # Bind first, so the printed URL is accurate (port 0) and accepting when printed.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    config = uvicorn.Config(create_app(), log_level="warning", proxy_headers=False)
    print(f"listening on http://{host}:{sock.getsockname()[1]}", flush=True)
    uvicorn.Server(config).run(sockets=[sock])

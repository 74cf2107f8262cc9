"""A real local Redis Sentinel setup for tests: one master, one replica, three sentinels,
all on free 127.0.0.1 ports, persistence off.

    with RedisSentinel() as s:
        client = redis.sentinel.Sentinel(s.sentinels).master_for(s.name)
        s.kill(s.master_port)   # SIGKILL: the sentinels promote the replica
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time

import redis
from redis_cluster import _free_ports


class RedisSentinel:
    name = "mymaster"

    def __init__(self, down_after_ms: int = 1000) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.executable = executable
        self.down_after_ms = down_after_ms
        ports = _free_ports(5)
        self.master_port, self.replica_port = ports[0], ports[1]
        self.sentinel_ports = ports[2:]
        self.dir = tempfile.mkdtemp(prefix="rl-sentinel-")
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def sentinels(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", port) for port in self.sentinel_ports]

    def _server(self, port: int, *extra: str) -> None:
        node_dir = os.path.join(self.dir, str(port))
        os.makedirs(node_dir, exist_ok=True)
        self.processes[port] = subprocess.Popen(
            [self.executable, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", node_dir, "--loglevel", "warning", *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _sentinel(self, port: int) -> None:
        path = os.path.join(self.dir, f"sentinel-{port}.conf")  # sentinels rewrite it
        with open(path, "w") as f:
            f.write(f"port {port}\nbind 127.0.0.1\ndir {self.dir}\n"
                    f"sentinel monitor {self.name} 127.0.0.1 {self.master_port} 2\n"
                    f"sentinel down-after-milliseconds {self.name} {self.down_after_ms}\n"
                    f"sentinel failover-timeout {self.name} 5000\n")
        self.processes[port] = subprocess.Popen(
            [self.executable, path, "--sentinel"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start(self, timeout: float = 30.0) -> None:
        self._server(self.master_port)
        self._server(self.replica_port, "--replicaof", "127.0.0.1", str(self.master_port))
        for port in self.sentinel_ports:
            self._sentinel(port)
        deadline = time.monotonic() + timeout
        while not self._ready():
            if time.monotonic() > deadline:
                raise RuntimeError("sentinel setup not ready in time")
            time.sleep(0.05)

    def _ready(self) -> bool:
        """Every sentinel knows the master, its replica and the two other sentinels."""
        for port in self.sentinel_ports:
            node = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1)
            try:
                master = node.sentinel_master(self.name)
                if int(master["num-slaves"]) < 1 or int(master["num-other-sentinels"]) < 2:
                    return False
            except redis.exceptions.RedisError:
                return False
            finally:
                node.close()
        return True

    def kill(self, port: int) -> None:
        proc = self.processes[port]
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()

    def close(self) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.processes.values():
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> RedisSentinel:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

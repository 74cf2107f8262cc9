"""A real local Redis Sentinel setup for tests: one master, one replica, three sentinels,
all on free 127.0.0.1 ports, persistence off.

    with RedisSentinel() as s:
        client = redis.sentinel.Sentinel(s.sentinels).master_for(s.name)
        s.kill(s.master_port)   # SIGKILL: the sentinels promote the replica
"""

from __future__ import annotations

import os
import time

import redis
from redis_server import ServerGroup, free_ports, redis_executable


class RedisSentinel(ServerGroup):
    name = "mymaster"

    def __init__(self, down_after_ms: int = 1000) -> None:
        self.executable = redis_executable()
        self.down_after_ms = down_after_ms
        ports = free_ports(5)
        self.master_port, self.replica_port = ports[0], ports[1]
        self.sentinel_ports = ports[2:]
        super().__init__("rl-sentinel-")

    @property
    def sentinels(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", port) for port in self.sentinel_ports]

    def _server(self, port: int, *extra: str) -> None:
        node_dir = os.path.join(self.dir, str(port))
        os.makedirs(node_dir, exist_ok=True)
        self.spawn(port, [self.executable, "--port", str(port), "--bind", "127.0.0.1",
                          "--save", "", "--appendonly", "no", "--dir", node_dir,
                          "--loglevel", "warning", *extra])

    def _sentinel(self, port: int) -> None:
        path = os.path.join(self.dir, f"sentinel-{port}.conf")  # sentinels rewrite it
        with open(path, "w") as f:
            f.write(f"port {port}\nbind 127.0.0.1\ndir {self.dir}\n"
                    f"sentinel monitor {self.name} 127.0.0.1 {self.master_port} 2\n"
                    f"sentinel down-after-milliseconds {self.name} {self.down_after_ms}\n"
                    f"sentinel failover-timeout {self.name} 5000\n")
        self.spawn(port, [self.executable, path, "--sentinel"])

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

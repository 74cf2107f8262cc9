"""A real local Redis Cluster for tests: 3 masters + 3 replicas on free 127.0.0.1 ports.

    with RedisCluster() as cluster:
        client = redis.cluster.RedisCluster(host="127.0.0.1", port=cluster.ports[0])
        cluster.kill(port)             # SIGKILL one node (a crash)
        cluster.wait_ok()              # until CLUSTER INFO says cluster_state:ok everywhere

Each node is a plain ``redis-server --cluster-enabled yes`` (its bus on a second free port,
``--cluster-port``, so nothing assumes port+10000 is free); ``redis-cli --cluster create
--cluster-replicas 1`` assigns the 16384 slots. ``cluster-node-timeout`` is short (1 s) so a
killed master's replica is promoted within a few seconds; ``cluster-require-full-coverage`` is
off by default (``full_coverage=True`` turns it on) so the other masters keep serving.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from typing import Optional

import redis
from redis_server import ServerGroup, free_ports, redis_executable


class RedisCluster(ServerGroup):
    """Six cluster-enabled servers (3 masters, 3 replicas), persistence off."""

    def __init__(self, executable: Optional[str] = None, masters: int = 3,
                 replicas: int = 1, node_timeout_ms: int = 1000,
                 full_coverage: bool = False) -> None:
        executable = executable or redis_executable()
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RuntimeError("redis-cli is not installed (apt-get install redis-server)")
        self.executable = executable
        self.cli = cli
        self.node_timeout_ms = node_timeout_ms
        # Off (the setting for a rate limiter): while a master fails over, the other masters
        # keep serving their slots instead of the whole cluster answering CLUSTERDOWN.
        self.full_coverage = full_coverage
        self.replicas = replicas
        count = masters * (1 + replicas)
        if count != 1 and masters < 3:
            raise ValueError("a cluster needs 3 masters (or one lone node: masters=1, replicas=0)")
        ports = free_ports(2 * count)
        self.ports = ports[:count]
        self.bus_ports = dict(zip(self.ports, ports[count:]))
        super().__init__("rl-cluster-")

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.ports[0]}"

    def client(self, **kwargs: object) -> redis.cluster.RedisCluster:
        return redis.cluster.RedisCluster(host="127.0.0.1", port=self.ports[0],
                                          **kwargs)  # type: ignore[arg-type]

    def node(self, port: int) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=2,
                           socket_connect_timeout=1)

    def start_node(self, port: int) -> None:
        node_dir = os.path.join(self.dir, str(port))
        os.makedirs(node_dir, exist_ok=True)
        self.spawn(port, [
            self.executable, "--port", str(port), "--bind", "127.0.0.1",
            "--cluster-enabled", "yes", "--cluster-port", str(self.bus_ports[port]),
            "--cluster-config-file", os.path.join(node_dir, "nodes.conf"),
            "--cluster-node-timeout", str(self.node_timeout_ms),
            "--cluster-require-full-coverage", "yes" if self.full_coverage else "no",
            "--save", "", "--appendonly", "no", "--dir", node_dir,
            "--maxclients", "1000", "--loglevel", "warning",
        ])

    def start(self, timeout: float = 30.0) -> None:
        for port in self.ports:
            self.start_node(port)
        deadline = time.monotonic() + timeout
        for port in self.ports:
            self.wait_ping(port, deadline)
        if len(self.ports) == 1:  # redis-cli wants 3 masters: one node takes every slot
            node = self.node(self.ports[0])
            node.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
            node.close()
            self.wait_ok(timeout)
            return
        subprocess.run(
            [self.cli, "--cluster", "create",
             *[f"127.0.0.1:{port}" for port in self.ports],
             "--cluster-replicas", str(self.replicas), "--cluster-yes"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout,
        )
        self.wait_ok(timeout)
        self.wait_replicas(timeout)

    def wait_replicas(self, timeout: float = 30.0) -> None:
        """Until every live replica's link to its master is up (a replica that never synced
        would refuse to take over when its master fails)."""
        deadline = time.monotonic() + timeout
        for port in self.alive():
            node = self.node(port)
            try:
                while True:
                    try:
                        info = node.info("replication")
                        if info["role"] == "master" or info.get("master_link_status") == "up":
                            break
                    except redis.exceptions.RedisError:  # still starting
                        pass
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"replica {port} did not sync in time")
                    time.sleep(0.05)
            finally:
                node.close()

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Until every live node reports cluster_state:ok and agrees all slots are served."""
        deadline = time.monotonic() + timeout
        while True:
            if all(self._ok(port) for port in self.alive()):
                return
            if time.monotonic() > deadline:
                raise RuntimeError("the cluster did not reach cluster_state:ok in time")
            time.sleep(0.05)

    def _ok(self, port: int) -> bool:
        node = self.node(port)
        try:
            info = node.cluster("info")
            return bool(info.get("cluster_state") == "ok"
                        and int(info.get("cluster_slots_ok", 0)) == 16384)
        except redis.exceptions.RedisError:
            return False
        finally:
            node.close()

    def masters(self) -> list[int]:
        """Ports of the live masters, each owning some slots."""
        out = []
        for port in self.alive():
            node = self.node(port)
            try:
                if node.info("replication")["role"] == "master":
                    out.append(port)
            finally:
                node.close()
        return sorted(out)

    def master_of_slot(self, slot: int) -> int:
        node = self.node(self.alive()[0])
        try:
            for start, end, master, *_ in node.execute_command("CLUSTER", "SLOTS"):
                if int(start) <= slot <= int(end):
                    return int(master[1])
        finally:
            node.close()
        raise LookupError(f"slot {slot} is not served")

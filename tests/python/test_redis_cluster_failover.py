"""Redis Cluster under change, through redis-py's RedisCluster: a slot migrated while traffic
runs (MIGRATING/IMPORTING + MIGRATE: ASK and MOVED redirections), and a master SIGKILLed
(its replica promoted; on_error answers meanwhile; other slots unaffected)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from conftest import ALL_LIMITERS, FakeClock, make_exact
from redis.crc import key_slot
from redis_cluster import RedisCluster
from redis_server import wait_replicated

from ratelimiter import RedisBackend

pytestmark = [pytest.mark.slow, pytest.mark.redis]

BY_NAME = {cls.__name__: cls for cls in ALL_LIMITERS}
PATHS = ["native", "redis-py"]


def cluster_backend(cluster: RedisCluster, path: str, **kwargs: Any) -> RedisBackend:
    """The native cluster transport (a redis+cluster:// URL) or redis-py's RedisCluster."""
    if path == "native":
        return RedisBackend(url=cluster.url, **kwargs)
    return RedisBackend(cluster.client(socket_timeout=kwargs.pop("timeout", 0.5),
                                       socket_connect_timeout=kwargs.pop("connect_timeout", 0.25)),
                        **kwargs)


def node_id(cluster: RedisCluster, port: int) -> str:
    node = cluster.node(port)
    try:
        return str(node.execute_command("CLUSTER", "MYID").decode())
    finally:
        node.close()


def migrate_slot(cluster: RedisCluster, slot: int, source: int, target: int) -> None:
    """Move `slot` from master `source` to master `target` as redis-cli --cluster reshard
    does: IMPORTING/MIGRATING, MIGRATE every key, then SETSLOT NODE on every master."""
    src, dst = cluster.node(source), cluster.node(target)
    try:
        src_id, dst_id = node_id(cluster, source), node_id(cluster, target)
        dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
        src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
        while True:
            keys = src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100)
            if not keys:
                break
            src.execute_command("MIGRATE", "127.0.0.1", target, "", 0, 5000, "KEYS", *keys)
        # Target first, then source (as redis-cli does), then everyone else.
        for port in [target, source, *(p for p in cluster.masters() if p not in (source, target))]:
            node = cluster.node(port)
            try:
                node.execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
            finally:
                node.close()
    finally:
        src.close()
        dst.close()


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("cls", ALL_LIMITERS, ids=lambda c: c.__name__)
def test_slot_migration_under_traffic_is_exact_and_silent(cluster: RedisCluster,
                                                          cls: type, path: str) -> None:
    # on_error="raise": no error may escape.
    backend = cluster_backend(cluster, path, use_server_time=False)
    limiter = make_exact(cls, backend, 300, 60.0, clock=FakeClock())
    key = f"migrating-{cls.__name__}-{path}"
    storage = limiter.backend.storage_key(key, _algorithm(limiter))
    slot = key_slot(storage.encode())
    source = cluster.master_of_slot(slot)
    target = next(p for p in cluster.masters() if p != source)
    admitted = [0] * 4
    errors: list[BaseException] = []
    started = threading.Barrier(5)
    decided = threading.Semaphore(0)

    def worker(i: int) -> None:
        started.wait()
        try:
            for _ in range(150):
                admitted[i] += limiter.is_allowed(key).allowed
                decided.release()
        except BaseException as exc:  # noqa: BLE001 - recorded and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    moved_before = redirections(cluster, source)
    started.wait()
    for _ in range(100):  # let traffic run, then move the slot under it
        decided.acquire()
    migrate_slot(cluster, slot, source, target)
    for t in threads:
        t.join()
    assert errors == []
    assert sum(admitted) == 300  # 600 tries, exactly the limit admitted
    assert cluster.master_of_slot(slot) == target
    assert cluster.node(target).exists(storage) == 1
    assert limiter.backend.counters["errors"] == 0
    # The client really was redirected (MOVED and/or ASK) and followed without a word.
    assert redirections(cluster, source) > moved_before


def redirections(cluster: RedisCluster, port: int) -> int:
    """MOVED + ASK replies the node has sent (INFO errorstats)."""
    node = cluster.node(port)
    try:
        stats = node.info("errorstats")
    finally:
        node.close()
    return sum(int(stats.get(f"errorstat_{kind}", {}).get("count", 0))
               for kind in ("MOVED", "ASK"))


def _algorithm(limiter: Any) -> str:
    return {
        "FixedWindowRateLimiter": "fixed_window",
        "SlidingWindowRateLimiter": "sliding_window",
        "SlidingWindowCounterRateLimiter": "sliding_window_counter",
        "TokenBucketRateLimiter": "token_bucket",
        "LeakyBucketRateLimiter": "leaky_bucket",
        "AdaptiveRateLimiter": "adaptive",
        "GCRARateLimiter": "gcra",
    }[type(limiter).__name__]


def key_on(cluster: RedisCluster, backend: RedisBackend, master: int, prefix: str,
           others: bool = False) -> str:
    """A limiter key whose token-bucket state lives on `master` (or, with others=True, not)."""
    for i in range(100_000):
        key = f"{prefix}{i}"
        on = cluster.master_of_slot(key_slot(backend.storage_key(key, "token_bucket").encode()))
        if (on == master) != others:
            return key
    raise LookupError("no such key")


@pytest.mark.parametrize("path", PATHS)
def test_master_killed_replica_promoted_on_error_meanwhile(cluster: RedisCluster,
                                                           path: str) -> None:
    clock = FakeClock()
    backend = cluster_backend(cluster, path, use_server_time=False, on_error="deny",
                              timeout=0.5, connect_timeout=0.2)
    limiter = make_exact(BY_NAME["TokenBucketRateLimiter"], backend, 10, 3600.0, clock=clock)
    probe = make_exact(BY_NAME["FixedWindowRateLimiter"], backend, 10**9, 3600.0, clock=clock)
    victim = cluster.masters()[0]
    doomed = key_on(cluster, backend, victim, f"doomed-{path}-")
    safe = key_on(cluster, backend, victim, f"safe-{path}-", others=True)
    assert [limiter.is_allowed(doomed).allowed for _ in range(4)] == [True] * 4
    assert [limiter.is_allowed(safe).allowed for _ in range(4)] == [True] * 4
    wait_replicated(victim)

    cluster.kill(victim)
    # Until the replica is promoted, decisions on the dead master's slots are the on_error
    # answer (deny, marked) — never an exception and never a decision from lost state.
    fallbacks = 0
    deadline = time.monotonic() + 30
    while True:
        result = limiter.is_allowed(doomed)
        if not result.metadata.get("on_error"):
            break
        assert result.allowed is False
        fallbacks += 1
        # Other masters' slots decide normally meanwhile.
        assert not probe.is_allowed(safe).metadata.get("on_error")
        assert time.monotonic() < deadline, "no failover within 30 s"
    assert fallbacks >= 1
    # The first real decision after the failover continues from the replicated state: 4
    # taken before the kill, this one is the 5th.
    assert result.allowed and result.remaining == 5
    assert [limiter.is_allowed(doomed).allowed for _ in range(6)] == [True] * 5 + [False]
    assert [limiter.is_allowed(safe).allowed for _ in range(7)] == [True] * 6 + [False]
    assert backend.counters["fallback_denied"] == fallbacks
    assert victim not in cluster.masters()
    # The killed node comes back as a replica, so the next test has a full cluster again.
    cluster.start_node(victim)
    cluster.wait_ok()
    cluster.wait_replicas()

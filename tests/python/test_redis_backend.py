"""RedisBackend against a real redis-server: exactness under concurrency, outages, script
cache flushes, TTLs and one round trip per decision."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis
import redis.asyncio
from conftest import ALL_LIMITERS, make_exact
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.retry import Retry
from redis_server import RedisServer

import ratelimiter
from ratelimiter import _core
from ratelimiter.backends import AsyncRedisBackend, MemoryBackend, RedisBackend
from ratelimiter.backends._redis_common import multi_scripts, single_scripts
from ratelimiter.exceptions import BackendConnectionError, BackendError, ConfigurationError

LIMIT = 100
ATTEMPTS = 20_000
FAKE_NOW = 1_000.0
WINDOWED = {"FixedWindowRateLimiter", "SlidingWindowRateLimiter",
            "SlidingWindowCounterRateLimiter"}
BY_NAME = {cls.__name__: cls for cls in ALL_LIMITERS}


def fixed_clock() -> float:
    return FAKE_NOW


def make_limiter(name: str, port: int, server_time: bool, **backend_kwargs: Any) -> Any:
    """limit 100 per 60 s; adaptive without burst so that exactly 100 fit at once.

    In server-time mode real time passes while the test runs, so the algorithms that refill
    continuously (token/leaky bucket, GCRA, adaptive) get a one-day window: less than one
    unit refills during the test and the count stays exact.
    """
    # A generous timeout: these tests count admissions, and a loaded CI machine may stall a
    # thread longer than the 0.5 s default (a timeout would lose a decision, not test one).
    backend_kwargs.setdefault("timeout", 5.0)
    backend = RedisBackend(redis.Redis(port=port), use_server_time=server_time,
                           **backend_kwargs)
    window = 86_400.0 if server_time and name not in WINDOWED else 60.0
    kwargs: dict[str, Any] = {} if server_time else {"clock": fixed_clock}
    if name == "AdaptiveRateLimiter":
        kwargs["burst_multiplier"] = 1.0
    return BY_NAME[name](backend, LIMIT, window, **kwargs)


def hammer(name: str, port: int, server_time: bool, threads: int, attempts: int) -> int:
    """`threads` threads share one limiter and try `attempts` requests in all on one key."""
    limiter = make_limiter(name, port, server_time)
    admitted = [0] * threads

    def worker(i: int) -> None:
        for _ in range(attempts // threads):
            if limiter.is_allowed("hot").allowed:
                admitted[i] += 1

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return sum(admitted)


def wait_clear_of_window_edge(window: float = 60.0, margin: float = 15.0) -> None:
    """Server time: start a windowed run well inside one window (it must not cross an edge)."""
    into = time.time() % window
    if into > window - margin:
        time.sleep(window - into + 0.05)


@pytest.mark.slow
@pytest.mark.parametrize("server_time", [False, True], ids=["client_clock", "server_time"])
@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_eight_threads_admit_exactly_the_limit(client: Any, server: RedisServer, name: str,
                                               server_time: bool) -> None:
    if server_time:
        wait_clear_of_window_edge()
    assert hammer(name, server.port, server_time, 8, ATTEMPTS) == LIMIT


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.parametrize("server_time", [False, True], ids=["client_clock", "server_time"])
@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_four_processes_of_four_threads_admit_exactly_the_limit(
    client: Any, server: RedisServer, process_pool: Any, name: str, server_time: bool
) -> None:
    if server_time:
        wait_clear_of_window_edge()
    futures = [process_pool.submit(hammer, name, server.port, server_time, 4, ATTEMPTS // 4)
               for _ in range(4)]
    assert sum(f.result() for f in futures) == LIMIT


def test_one_evalsha_per_decision(client: Any, server: RedisServer) -> None:
    limiters = [make_limiter(name, server.port, False) for name in sorted(BY_NAME)]
    for limiter in limiters:  # connect (and SCRIPT LOAD) before counting
        limiter.is_allowed("warm")
    client.config_resetstat()
    decisions = 0
    for limiter in limiters:
        for i in range(150):
            limiter.is_allowed(f"user:{i % 7}", cost=1 + i % 3)
            decisions += 1
        limiter.peek("user:1")
        decisions += 1
    stats = client.info("commandstats")
    assert stats["cmdstat_evalsha"]["calls"] == decisions
    # Redis also counts the commands a script runs; nothing else reached the server.
    script_commands = {"get", "set", "llen", "lindex", "lrange", "lset", "ltrim", "rpush",
                       "pexpire", "time"}
    others = {name.removeprefix("cmdstat_") for name in stats} - {"evalsha"}
    assert others <= script_commands | {"config|resetstat", "info"}


@pytest.mark.slow
def test_script_flush_during_load_is_invisible(client: Any, server: RedisServer) -> None:
    limiters = [make_limiter(name, server.port, False) for name in sorted(BY_NAME)]
    errors: list[BaseException] = []
    stop = threading.Event()

    def flusher() -> None:
        c = server.client()
        while not stop.is_set():
            c.script_flush()
            time.sleep(0.001)
        c.close()

    def worker(i: int) -> None:
        try:
            for j in range(400):
                limiters[(i + j) % len(limiters)].is_allowed(f"k{j % 13}")
        except BaseException as exc:  # noqa: BLE001 - any error is a failure here
            errors.append(exc)

    f = threading.Thread(target=flusher)
    f.start()
    workers = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    stop.set()
    f.join()
    assert errors == []
    stats = client.info("commandstats")
    assert stats["cmdstat_eval"]["calls"] > 0  # NOSCRIPT did happen and was absorbed
    assert all(limiter.backend.counters["errors"] == 0 for limiter in limiters)


@pytest.mark.slow
@pytest.mark.parametrize("on_error", ["allow", "deny", "raise"])
def test_kill_and_restart_mid_load(server: RedisServer, client: Any, on_error: str) -> None:
    timeout, connect_timeout = 0.5, 0.25
    # A limit that is never reached, so that any decision Redis makes admits.
    backend = RedisBackend(redis.Redis(port=server.port), on_error=on_error, timeout=timeout,
                           connect_timeout=connect_timeout)
    limiter = ratelimiter.TokenBucketRateLimiter(backend, 10**9, 1)
    outcomes: list[tuple[float, float, str]] = []  # (start, duration, outcome)
    stop = threading.Event()

    def worker() -> None:
        while not stop.is_set():
            start = time.monotonic()
            try:
                allowed = limiter.is_allowed("k").allowed
                outcome = "redis" if allowed and on_error != "allow" else (
                    "allowed" if allowed else "denied")
            except BackendError as exc:
                outcome = "noscript" if "NOSCRIPT" in str(exc) else "error"
            outcomes.append((start, time.monotonic() - start, outcome))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    killed_at = time.monotonic()
    server.kill()
    time.sleep(0.7)
    restarted_at = time.monotonic()
    server.start()
    started_at = time.monotonic()
    time.sleep(1.5)
    stop.set()
    for t in threads:
        t.join()

    assert all(duration < timeout + connect_timeout + 0.25 for _, duration, _ in outcomes)
    assert not any(o == "noscript" for _, _, o in outcomes)
    during = [o for start, _, o in outcomes if killed_at + 0.05 < start < restarted_at]
    assert during, "no call was made while Redis was down"
    expected = {"allow": "allowed", "deny": "denied", "raise": "error"}[on_error]
    if on_error == "allow":
        # Fail-open answers are counted; Redis' own answers are not.
        assert backend.counters["fallback_allowed"] >= len(during)
    else:
        assert set(during) == {expected}
    after = [(start, o) for start, _, o in outcomes if start > started_at + 1.0]
    assert after, "no call after the restart"
    if on_error != "allow":
        assert {o for _, o in after} == {"redis"}  # resumed within a second of the restart
    counters = backend.counters
    assert counters["errors"] >= len(during)
    if on_error == "deny":
        assert counters["fallback_denied"] == counters["errors"]
    if on_error == "raise":
        assert counters["fallback_allowed"] == counters["fallback_denied"] == 0


def test_fail_open_resumes_real_decisions(server: RedisServer, client: Any) -> None:
    backend = RedisBackend(redis.Redis(port=server.port), on_error="allow")
    limiter = ratelimiter.FixedWindowRateLimiter(backend, 1, 3600)
    server.kill()
    assert [limiter.is_allowed("k").allowed for _ in range(3)] == [True] * 3
    assert backend.counters == {"errors": 3, "fallback_allowed": 3, "fallback_denied": 0}
    server.start()
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline and backend.counters["errors"] == 3:
        limiter.is_allowed("probe")
    time.sleep(0.15)  # past the reconnect back-off
    assert [limiter.is_allowed("k").allowed for _ in range(2)] == [True, False]


def test_unreachable_server_raises_connection_error() -> None:
    backend = RedisBackend(url="redis://127.0.0.1:1/0", connect_timeout=0.1)
    limiter = ratelimiter.FixedWindowRateLimiter(backend, 5, 60)
    with pytest.raises(BackendConnectionError, match="127.0.0.1:1"):
        limiter.is_allowed("k")
    assert backend.ping() is False


@pytest.mark.slow
def test_every_key_has_a_ttl_after_ten_thousand_keys(client: Any, server: RedisServer) -> None:
    now = [FAKE_NOW]
    backend = RedisBackend(redis.Redis(port=server.port), use_server_time=False)
    limiters = [cls(backend, 5, 60, clock=lambda: now[0]) for cls in ALL_LIMITERS]
    # 10,000 keys, each used by one of the seven algorithms.
    keys = [[f"user:{i}" for i in range(n, 10_000, 7)] for n in range(7)]
    with ThreadPoolExecutor(7) as pool:
        list(pool.map(lambda i: limiters[i].is_allowed_many(keys[i]), range(7)))
        now[0] += 600.0  # every window has passed; use half of the keys again
        list(pool.map(lambda i: limiters[i].is_allowed_many(keys[i][::2]), range(7)))
    ttls: list[int] = []
    cursor = 0
    while True:
        cursor, batch = client.scan(cursor, count=2000)
        pipe = client.pipeline(transaction=False)
        for key in batch:
            pipe.pttl(key)
        ttls += pipe.execute()
        if cursor == 0:
            break
    assert len(ttls) == 10_000
    assert -1 not in ttls  # -1: a key without a TTL; -2: expired between SCAN and PTTL
    assert sum(t > 0 for t in ttls) > 9_000
    # The longest-lived state is the adaptive load sensor: (lk + 2) * 5 * window + 1 s margin.
    assert max(ttls) <= (2 * 5 * 60 + 1) * 1000


@pytest.mark.slow
def test_keys_expire_once_fresh(client: Any, server: RedisServer) -> None:
    backend = RedisBackend(redis.Redis(port=server.port), timeout=5.0)  # server time: real TTLs
    # Each algorithm's 100 keys are counted right after its batch (they live at least the 1 s
    # TTL margin), so a loaded machine cannot expire some before they are counted; all 700
    # are gone once fresh (the adaptive sensor's 5-window span is the longest: ~4 s here).
    for cls in ALL_LIMITERS:
        before = set(client.keys("*"))
        cls(backend, 3, 0.5).is_allowed_many([f"k{i}" for i in range(100)])
        assert len(set(client.keys("*")) - before) == 100, cls.__name__
    deadline = time.monotonic() + 30.0
    while client.dbsize() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.dbsize() == 0


def test_keys_carry_a_hash_tag(client: Any, server: RedisServer) -> None:
    backend = RedisBackend(redis.Redis(port=server.port), key_prefix="app:")
    ratelimiter.SlidingWindowRateLimiter(backend, 5, 60, key_prefix="api:").is_allowed("u1")
    ratelimiter.GCRARateLimiter(backend, 5, 60, key_prefix="api:").is_allowed("u1")
    assert sorted(client.keys()) == [b"app:{api:u1}:gcra", b"app:{api:u1}:sliding_window"]
    assert backend.storage_key("api:u1", "gcra") == "app:{api:u1}:gcra"
    assert len({key_slot(k) for k in client.scan_iter()}) == 1  # one Redis Cluster slot


def test_reset_forgets_the_key(client: Any, server: RedisServer) -> None:
    backend = RedisBackend(redis.Redis(port=server.port))
    for cls in ALL_LIMITERS:
        limiter = make_exact(cls, backend, 1, 3600)
        assert limiter.is_allowed("k").allowed
        assert not limiter.is_allowed("k").allowed
        limiter.reset("k")
        assert limiter.is_allowed("k").allowed
    assert client.dbsize() == 7


def test_client_path_runs_the_same_scripts(client: Any, server: RedisServer) -> None:
    class CustomRedis(redis.Redis):  # any non-plain client goes through the client object
        pass

    now = [FAKE_NOW]
    via_client = RedisBackend(CustomRedis(port=server.port, decode_responses=True),
                              key_prefix="c:", use_server_time=False)
    native = RedisBackend(redis.Redis(port=server.port), key_prefix="n:", use_server_time=False)
    assert not via_client.is_native and native.is_native
    for cls in ALL_LIMITERS:
        a = cls(via_client, 4, 10, clock=lambda: now[0])
        b = cls(native, 4, 10, clock=lambda: now[0])
        for step in range(12):
            now[0] += 0.7 * (step % 3)
            assert a.is_allowed("k", cost=1 + step % 2) == b.is_allowed("k", cost=1 + step % 2)
            assert a.peek("k") == b.peek("k")
        a.reset("k")
    client.script_flush()  # NOSCRIPT through the client is absorbed too
    assert ratelimiter.GCRARateLimiter(via_client, 1, 60).is_allowed("z").allowed
    assert via_client.counters["errors"] == 0


def test_client_path_errors_follow_on_error() -> None:
    class CustomRedis(redis.Redis):
        pass

    dead = CustomRedis(port=1, socket_connect_timeout=0.1, retry=Retry(NoBackoff(), 0))
    deny = ratelimiter.GCRARateLimiter(RedisBackend(dead, on_error="deny"), 5, 60)
    assert deny.is_allowed("k").allowed is False
    assert deny.backend.counters["fallback_denied"] == 1
    with pytest.raises(BackendConnectionError):
        ratelimiter.GCRARateLimiter(RedisBackend(dead), 5, 60).is_allowed("k")


def test_connection_parameters_come_from_the_client(server: RedisServer, client: Any) -> None:
    client.config_set("requirepass", "s3cret")
    try:
        with pytest.raises(BackendError, match="AUTH|NOAUTH"):
            ratelimiter.GCRARateLimiter(RedisBackend(redis.Redis(port=server.port)), 5, 60
                                        ).is_allowed("k")
        authed = redis.Redis(port=server.port, db=3, password="s3cret")
        ratelimiter.GCRARateLimiter(RedisBackend(authed), 5, 60).is_allowed("k")
        assert authed.keys() == [b"rl:{k}:gcra"]
        by_url = RedisBackend(url=f"redis://:s3cret@127.0.0.1:{server.port}/4")
        ratelimiter.GCRARateLimiter(by_url, 5, 60).is_allowed("k")
        assert redis.Redis(port=server.port, db=4, password="s3cret").dbsize() == 1
        unix = RedisBackend(redis.Redis(unix_socket_path=server.unix_socket, password="s3cret",
                                        db=5))
        assert unix.is_native and unix.ping()
        ratelimiter.GCRARateLimiter(unix, 5, 60).is_allowed("k")
        assert redis.Redis(port=server.port, db=5, password="s3cret").dbsize() == 1
    finally:
        redis.Redis(port=server.port, password="s3cret").config_set("requirepass", "")


def test_bad_arguments() -> None:
    with pytest.raises(ConfigurationError, match="on_error"):
        RedisBackend(on_error="ignore")
    with pytest.raises(ConfigurationError, match="either client or url"):
        RedisBackend(redis.Redis(), url="redis://localhost")
    with pytest.raises(ConfigurationError, match="url"):
        RedisBackend(url="http://localhost")
    with pytest.raises(ConfigurationError, match="timeout"):
        RedisBackend(timeout=0)
    with pytest.raises(ConfigurationError, match="db"):
        RedisBackend(url="redis://localhost/x")


def test_scripts_are_exported_once() -> None:
    scripts = _core.lua_scripts()
    assert sorted(scripts) == sorted(["fixed_window", "sliding_window",
                                      "sliding_window_counter", "token_bucket", "leaky_bucket",
                                      "adaptive", "gcra"])
    for name, source in scripts.items():
        assert "local EPS = 1e-9" in source and f"{name.replace('_', ' ')}" in source.lower()


def test_script_shas_are_redis_own_and_computed_once(client: Any) -> None:
    """Both backends EVALSHA the SHAs _redis_common computes once per process; they must be
    the ones Redis itself derives (else every call would fall back to EVAL)."""
    for scripts in (single_scripts(), multi_scripts()):
        assert sorted(scripts.shas) == sorted(scripts.sources)
        for name, source in scripts.sources.items():
            assert client.script_load(source) == scripts.shas[name]
    assert single_scripts() is single_scripts() and multi_scripts() is multi_scripts()


def test_async_backend_matches_sync(client: Any, server: RedisServer) -> None:
    """The async path (the limiter's own script call, awaited) decides exactly as the memory
    store, through a script-cache flush and a reset, and names keys as RedisBackend does."""

    async def run() -> list[Any]:
        aclient = redis.asyncio.Redis(port=server.port)
        backend = AsyncRedisBackend(aclient, key_prefix="a:", use_server_time=False)
        limiter = ratelimiter.TokenBucketRateLimiter(backend, 3, 10, clock=fixed_clock)
        out = [await limiter.is_allowed_async("k") for _ in range(5)]
        client.script_flush()  # NOSCRIPT: answered with EVAL in the same call
        out.append(await limiter.peek_async("k"))
        await limiter.reset_async("k")
        out.append(await limiter.is_allowed_async("k"))
        await backend.close()
        return out

    decisions = asyncio.run(run())
    sync = ratelimiter.TokenBucketRateLimiter(MemoryBackend(), 3, 10, clock=fixed_clock)
    expected = [sync.is_allowed("k") for _ in range(5)] + [sync.peek("k")]
    sync.reset("k")
    expected.append(sync.is_allowed("k"))
    assert decisions == expected
    assert [d.allowed for d in decisions] == [True, True, True, False, False, False, True]
    assert client.keys() == [b"a:{k}:token_bucket"]
    assert RedisBackend(redis.Redis(port=server.port), key_prefix="a:").storage_key(
        "k", "token_bucket") == "a:{k}:token_bucket"

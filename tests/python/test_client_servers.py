"""The client against real servers on 127.0.0.1, counted by the server, in real time.

Timing here is a behaviour check with a tolerance (the issue asks for "within 10% of the
theoretical minimum"); lower bounds (a retry never earlier than Retry-After) are exact.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from client_apps import (
    CountingApp,
    CountingASGIApp,
    ScriptedApp,
    StatusCounter,
    max_in_span,
    spacing,
)
from http_servers import serve_asgi, serve_wsgi
from redis_server import RedisServer

from ratelimiter import GCRARateLimiter, MemoryBackend, TokenBucketRateLimiter
from ratelimiter.client import (
    AsyncRateLimitedTransport,
    RateLimitedSession,
    RetryExhausted,
    RetryPolicy,
)
from ratelimiter.middleware import RateLimitMiddleware

pytestmark = pytest.mark.slow

N = 5  # the server's limit: N requests per second


def limited_server(n: int) -> tuple[StatusCounter, CountingApp]:
    """Our WSGI middleware enforcing ``n``/second (token bucket) in front of a counting app."""
    app = CountingApp()
    server_limiter = TokenBucketRateLimiter(MemoryBackend(), n, 1.0)
    return StatusCounter(RateLimitMiddleware(app, server_limiter)), app


def test_client_at_the_servers_rate_sees_no_429_and_no_time_lost() -> None:
    counter, app = limited_server(N)
    # The client spends the same N/second, evenly (GCRA without burst): one every 1/N s.
    client_limiter = GCRARateLimiter(MemoryBackend(), N, 1.0, burst=1)
    with serve_wsgi(counter) as url, RateLimitedSession(
            client_limiter, retry=RetryPolicy(max_retries=0)) as session:
        started = time.monotonic()
        codes = [session.get(url + "/").status_code for _ in range(3 * N)]
        elapsed = time.monotonic() - started
    assert codes == [200] * (3 * N)
    assert counter.statuses == {200: 3 * N}  # the server answered no 429 at all
    assert len(app.arrivals) == 3 * N
    minimum = (3 * N - 1) / N  # first request at 0, then one every 1/N s
    print(f"\n{3 * N} requests at {N}/s: {elapsed:.3f} s (minimum {minimum:.3f} s, "
          f"+{(elapsed / minimum - 1) * 100:.1f}%), server statuses {counter.statuses}")
    # Behaviour: never faster than the server's rate. How close to the minimum it comes is a
    # figure (printed above; bench/bench_client.py measures wake-up lateness), not asserted:
    # a loaded CI machine would make a tight upper bound flaky. The bound below is a hang guard.
    assert minimum <= elapsed < 2 * minimum, elapsed


def test_four_processes_by_four_threads_share_one_redis_budget(tmp_path: Path) -> None:
    n, threads, processes, each = 10, 4, 4, 2
    total = threads * processes * each
    counter, app = limited_server(n)
    with RedisServer() as redis_server, serve_wsgi(counter) as url:
        worker = Path(__file__).with_name("client_worker.py")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [
            str(Path(__import__("ratelimiter").__file__).parent.parent),
            env.get("PYTHONPATH", "")]))
        start_at = time.time() + 1.5  # every process starts together
        procs = [subprocess.Popen(
            [sys.executable, str(worker), redis_server.url, url, str(n), str(threads),
             str(each), str(start_at)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=env) for _ in range(processes)]
        outputs = [proc.communicate(timeout=60) for proc in procs]
    codes = [int(line) for out, _ in outputs for line in out.split()]
    assert all(proc.returncode == 0 for proc in procs), [err for _, err in outputs]
    assert codes == [200] * total
    assert counter.statuses == {200: total}  # never a 429
    # The shared budget admits one request every 1/n s, so no 1 s span holds more than n
    # admissions. Arrivals are measured at the server, after the network and the GIL of 4
    # processes on a shared machine: allow 100 ms of jitter (a span of 0.9 s).
    print(f"\n4x4 on Redis, {total} requests at {n}/s: statuses {counter.statuses}, most "
          f"arrivals in any 1 s {max_in_span(app.arrivals, 1.0)}, in any 0.9 s "
          f"{max_in_span(app.arrivals, 1.0, tolerance=0.1)}")
    assert max_in_span(app.arrivals, 1.0, tolerance=0.1) <= n
    assert len(app.arrivals) == total


def test_retry_after_twice_then_success_and_giving_up() -> None:
    app = ScriptedApp([(429, {"Retry-After": "2"}), (429, {"Retry-After": "2"})])
    limiter = TokenBucketRateLimiter(MemoryBackend(), 100, 1.0)
    with serve_wsgi(app) as url:
        with RateLimitedSession(limiter, retry=RetryPolicy(max_retries=3)) as session:
            assert session.get(url + "/").status_code == 200
        assert app.statuses == [429, 429, 200]
        assert all(gap >= 2.0 for gap in spacing(app.arrivals)), spacing(app.arrivals)
        gaps = [round(g, 3) for g in spacing(app.arrivals)]
        print(f"\nretries after Retry-After: 2 spaced {gaps}")

        app.__init__([(429, {"Retry-After": "2"})] * 3)  # type: ignore[misc]
        with RateLimitedSession(limiter, retry=RetryPolicy(max_retries=1)) as session, \
                pytest.raises(RetryExhausted) as info:
            session.get(url + "/")
        assert (info.value.attempts, info.value.reason) == (2, "max_retries")
        assert info.value.response.status_code == 429
        assert app.statuses == [429, 429]  # exactly max_retries + 1 requests
        assert spacing(app.arrivals)[0] >= 2.0

        app.__init__([(429, {"Retry-After": "2"})] * 3)  # type: ignore[misc]
        # A fresh limiter: the last 429 paused the host's key on the old one for 2 s.
        limiter = TokenBucketRateLimiter(MemoryBackend(), 100, 1.0)
        policy = RetryPolicy(max_retries=10, budget=3.0)
        with RateLimitedSession(limiter, retry=policy) as session, \
                pytest.raises(RetryExhausted) as info:
            session.get(url + "/")
        assert (info.value.attempts, info.value.reason) == (2, "budget")
        assert app.statuses == [429, 429]


def test_http_date_garbage_and_a_week_away() -> None:
    from email.utils import formatdate

    app = ScriptedApp([
        (429, {"Retry-After": lambda: formatdate(time.time() + 1, usegmt=True)}),
        (429, {"Retry-After": "soon"}), (503, {"Retry-After": "-5"}),
        (429, {"Retry-After": "1e309"}), (429, {"Retry-After": "604800"}),
    ])
    limiter = TokenBucketRateLimiter(MemoryBackend(), 100, 1.0)
    policy = RetryPolicy(max_retries=5, backoff_base=0.05, backoff_max=0.5)
    with serve_wsgi(app) as url, RateLimitedSession(limiter, retry=policy) as session:
        started = time.monotonic()
        assert session.get(url + "/").status_code == 200
        elapsed = time.monotonic() - started
    assert app.statuses == [429, 429, 503, 429, 429, 200]
    gaps = spacing(app.arrivals)
    assert gaps[-1] >= 0.5  # a week away: capped at backoff_max, not slept
    assert elapsed < 5  # date (<= 1 s) + three backoffs (<= 0.05·2^k) + the 0.5 s cap


def test_200_async_tasks_never_more_than_10_in_flight() -> None:
    app = CountingASGIApp(hold=0.02)
    limiter = TokenBucketRateLimiter(MemoryBackend(), 1000, 1.0)
    transport = AsyncRateLimitedTransport(limiter, max_concurrency=10)

    async def run(url: str) -> list[int]:
        async with httpx.AsyncClient(transport=transport) as client:
            responses = await asyncio.gather(*(client.get(url + "/") for _ in range(200)))
        return [r.status_code for r in responses]

    with serve_asgi(app) as url:
        codes = asyncio.run(run(url))
    assert codes == [200] * 200
    assert app.total == 200
    print(f"\n200 async tasks, max_concurrency=10: server peak in flight {app.peak}")
    assert app.peak == 10  # the server saw at most (and, with 200 waiting, exactly) 10

"""One client process of the shared-budget test: THREADS threads, each sending REQUESTS
requests through a RateLimitedSession whose budget (GCRA, N per second) lives in Redis.

    python client_worker.py REDIS_URL SERVER_URL N THREADS REQUESTS START_AT

Starts at the Unix time START_AT (so every process begins together); prints one status code
per line.
"""

from __future__ import annotations

import sys
import threading
import time

from ratelimiter import GCRARateLimiter, RedisBackend
from ratelimiter.client import RateLimitedSession, RetryPolicy


def main() -> None:
    redis_url, server_url, n, threads, requests_each, start_at = sys.argv[1:7]
    limiter = GCRARateLimiter(RedisBackend(url=redis_url), int(n), 1.0, burst=1)
    statuses: list[int] = []
    lock = threading.Lock()

    def run() -> None:
        with RateLimitedSession(limiter, key="shared-api",
                                retry=RetryPolicy(max_retries=0)) as session:
            for _ in range(int(requests_each)):
                code = session.get(server_url + "/").status_code
                with lock:
                    statuses.append(code)

    workers = [threading.Thread(target=run) for _ in range(int(threads))]
    time.sleep(max(0.0, float(start_at) - time.time()))
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    print("\n".join(str(code) for code in statuses), flush=True)


if __name__ == "__main__":
    main()

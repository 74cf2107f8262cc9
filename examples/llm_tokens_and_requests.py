"""Tokens and requests: an LLM-style API limited per minute in requests AND in tokens.

    python examples/llm_tokens_and_requests.py                       # local stand-in API
    python examples/llm_tokens_and_requests.py --redis redis://localhost:6379/0 --processes 4

A ``MultiRateLimiter`` holds both budgets ("60 requests/minute and 90,000 tokens/minute" by
default). Before each call the client waits for one request and an *estimate* of the
tokens (prompt length / 4 + max_tokens, an upper bound); after the call it ``adjust``s the
token budget by the real usage from the response (a refund here, since the estimate is an
upper bound). With ``--redis`` every process (and host) shares the one budget.

The stand-in API answers ``{"usage": {"prompt_tokens", "completion_tokens",
"total_tokens"}}`` and records when it served how many tokens; the summary shows the most
tokens it served in any one window.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Callable, Optional
from wsgiref.simple_server import make_server

import requests
from _demo_api import _QuietHandler, _ThreadingServer

from ratelimiter import MemoryBackend, MultiRateLimiter, backend_from_uri
from ratelimiter.client import RateLimitedSession, RetryPolicy

KEY = "llm-api"
MAX_TOKENS = 400


def estimate_tokens(prompt: str, max_tokens: int) -> int:
    """An upper bound before the call: ~4 characters per prompt token, plus the most the
    model may write."""
    return len(prompt) // 4 + 1 + max_tokens


class StandInLLM:
    """A WSGI stand-in for an LLM API: deterministic usage, and a log of tokens served."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.served: list[tuple[float, int]] = []  # (monotonic time, total tokens)

    def __call__(self, environ: dict[str, Any],
                 start_response: Callable[..., Any]) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        request = json.loads(environ["wsgi.input"].read(length) or b"{}")
        prompt = str(request.get("prompt", ""))
        max_tokens = int(request.get("max_tokens", MAX_TOKENS))
        prompt_tokens = len(prompt) // 4 + 1
        digest = hashlib.sha256(prompt.encode()).digest()
        completion = digest[0] * max_tokens // 255  # 0..max_tokens, stable per prompt
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion,
                 "total_tokens": prompt_tokens + completion}
        with self.lock:
            self.served.append((time.monotonic(), usage["total_tokens"]))
        body = json.dumps({"text": "...", "usage": usage}).encode()
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(body)))])
        return [body]

    def most_in_window(self, window: float) -> int:
        served = sorted(self.served)
        best, start, total = 0, 0, 0
        for t, tokens in served:
            total += tokens
            while t - served[start][0] >= window:
                total -= served[start][1]
                start += 1
            best = max(best, total)
        return best


@contextmanager
def serve(app: StandInLLM) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, server_class=_ThreadingServer,
                         handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/v1/complete"
    finally:
        server.shutdown()
        server.server_close()


def make_limiter(redis_url: Optional[str], requests_limit: str,
                 tokens_limit: str) -> MultiRateLimiter:
    backend = backend_from_uri(redis_url) if redis_url else MemoryBackend()
    return MultiRateLimiter(backend, {"requests": requests_limit, "tokens": tokens_limit},
                            algorithm="token_bucket", key_prefix="example:")


def estimated_cost(request: requests.PreparedRequest) -> dict[str, int]:
    """The session's cost for one attempt: one request and the body's token estimate."""
    raw = request.body if isinstance(request.body, (bytes, str)) else b"{}"
    body = json.loads(raw or b"{}")
    return {"requests": 1,
            "tokens": estimate_tokens(body["prompt"], int(body["max_tokens"]))}


def worker(args: tuple[str, Optional[str], str, str, list[str]]) -> tuple[int, int, int]:
    """Send ``prompts``; return (calls, tokens estimated, tokens used)."""
    url, redis_url, requests_limit, tokens_limit, prompts = args
    limiter = make_limiter(redis_url, requests_limit, tokens_limit)
    estimated = used = 0
    # Each attempt waits for a request and the estimated tokens (limiter.acquire inside the
    # session); a 429 from the API is retried after its Retry-After.
    with RateLimitedSession(limiter, key=KEY, cost=estimated_cost,
                            retry=RetryPolicy(max_retries=3, methods=None)) as session:
        for prompt in prompts:
            estimate = estimate_tokens(prompt, MAX_TOKENS)
            reply = session.post(url, json={"prompt": prompt, "max_tokens": MAX_TOKENS}).json()
            real = int(reply["usage"]["total_tokens"])
            limiter.adjust(KEY, cost={"tokens": real - estimate})  # negative: a refund
            estimated += estimate
            used += real
    return len(prompts), estimated, used


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", help="share the budget through this Redis URL")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--calls", type=int, default=12, help="calls in total")
    parser.add_argument("--requests-limit", default="60/minute")
    parser.add_argument("--tokens-limit", default="90000/minute")
    args = parser.parse_args(argv)
    if args.processes > 1 and not args.redis:
        parser.error("--processes > 1 needs --redis (the shared budget)")
    prompts = [f"Summarise document {i}: " + "lorem ipsum " * (20 + 7 * (i % 5))
               for i in range(args.calls)]
    app = StandInLLM()
    started = time.monotonic()
    with serve(app) as url:
        if args.redis:  # start from a full budget
            make_limiter(args.redis, args.requests_limit, args.tokens_limit).reset(KEY)
        jobs = [(url, args.redis, args.requests_limit, args.tokens_limit,
                 prompts[i::args.processes]) for i in range(args.processes)]
        if args.processes == 1:
            results = [worker(jobs[0])]
        else:
            with multiprocessing.get_context("spawn").Pool(args.processes) as pool:
                results = pool.map(worker, jobs)
    elapsed = time.monotonic() - started
    calls = sum(r[0] for r in results)
    estimated = sum(r[1] for r in results)
    used = sum(r[2] for r in results)
    window = MultiRateLimiter(MemoryBackend(), {"tokens": args.tokens_limit}).window
    print(f"calls {calls} in {elapsed:.2f} s by {args.processes} process(es); "
          f"tokens estimated {estimated}, used {used}; "
          f"the API served at most {app.most_in_window(window)} tokens in any {window:g} s")


if __name__ == "__main__":
    main()

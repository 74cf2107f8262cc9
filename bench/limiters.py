"""The seven limiter classes by algorithm name, shared by the benchmarks."""

from __future__ import annotations

import ratelimiter

LIMITERS: dict[str, type[ratelimiter.BaseAlgorithm]] = {
    "fixed_window": ratelimiter.FixedWindowRateLimiter,
    "sliding_window": ratelimiter.SlidingWindowRateLimiter,
    "sliding_window_counter": ratelimiter.SlidingWindowCounterRateLimiter,
    "token_bucket": ratelimiter.TokenBucketRateLimiter,
    "leaky_bucket": ratelimiter.LeakyBucketRateLimiter,
    "adaptive": ratelimiter.AdaptiveRateLimiter,
    "gcra": ratelimiter.GCRARateLimiter,
}

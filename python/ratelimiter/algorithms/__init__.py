"""The seven limiters, the result type, and the async wrappers."""

from .adaptive import AdaptiveRateLimiter
from .async_base import AsyncRateLimiter, async_rate_limit
from .base import BaseAlgorithm, RateLimitResult
from .fixed_window import FixedWindowRateLimiter
from .gcra import GCRARateLimiter
from .leaky_bucket import LeakyBucketRateLimiter
from .sliding_window import SlidingWindowRateLimiter
from .sliding_window_counter import SlidingWindowCounterRateLimiter
from .token_bucket import TokenBucketRateLimiter

__all__ = [
    "AdaptiveRateLimiter",
    "AsyncRateLimiter",
    "BaseAlgorithm",
    "FixedWindowRateLimiter",
    "GCRARateLimiter",
    "LeakyBucketRateLimiter",
    "RateLimitResult",
    "SlidingWindowCounterRateLimiter",
    "SlidingWindowRateLimiter",
    "TokenBucketRateLimiter",
    "async_rate_limit",
]

"""The built-in limiter classes by algorithm name, shared by the benchmarks."""

from __future__ import annotations

import ratelimiter
from ratelimiter.algorithms.registry import builtin_limiters

LIMITERS: dict[str, type[ratelimiter.BaseAlgorithm]] = dict(builtin_limiters())

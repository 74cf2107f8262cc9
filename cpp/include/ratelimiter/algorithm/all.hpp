// Every algorithm, and a compile-time list of them for stores that keep one table each.
#pragma once

#include <tuple>

#include "ratelimiter/algorithm/adaptive.hpp"
#include "ratelimiter/algorithm/fixed_window.hpp"
#include "ratelimiter/algorithm/gcra.hpp"
#include "ratelimiter/algorithm/leaky_bucket.hpp"
#include "ratelimiter/algorithm/sliding_window.hpp"
#include "ratelimiter/algorithm/sliding_window_counter.hpp"
#include "ratelimiter/algorithm/token_bucket.hpp"

namespace ratelimiter {

// Order matches AlgorithmId.
using AllAlgorithms = std::tuple<FixedWindow, SlidingWindow, SlidingWindowCounter, TokenBucket,
                                 LeakyBucket, Adaptive, Gcra>;

}  // namespace ratelimiter

// A decision as every store returns it: plain numbers, no strings, no allocation.
// The Python binding turns it into a RateLimitResult; metadata names are attached there.
#pragma once

#include <array>
#include <cstdint>

namespace ratelimiter {

// Stable numeric ids: they index per-algorithm tables in stores and name state rows in SQLite.
enum class AlgorithmId : std::uint8_t {
    fixed_window = 0,
    sliding_window = 1,
    sliding_window_counter = 2,
    token_bucket = 3,
    leaky_bucket = 4,
    adaptive = 5,
    gcra = 6,
};
inline constexpr std::size_t kAlgorithmCount = 7;

struct Decision {
    bool allowed = false;
    // The request can never be admitted (cost above the algorithm's capacity).
    bool insufficient_capacity = false;
    // Not decided by the store: a shared store failed and its on_error policy ("allow" or
    // "deny") answered instead (RedisStore). `allowed` holds the policy's answer.
    bool fallback = false;
    std::int64_t remaining = 0;
    double reset_after = 0.0;
    double retry_after = 0.0;
    // Algorithm-specific metadata values, in the order listed by metadata_names().
    std::array<double, 6> meta{};
};

}  // namespace ratelimiter

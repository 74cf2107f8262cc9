// A decision as every store returns it: plain numbers, no strings, no allocation.
// The Python binding turns it into a RateLimitResult; metadata names are attached there.
#pragma once

#include <array>
#include <cstdint>

namespace ratelimiter {

// An algorithm's stable numeric id. The values are defined by each algorithm's header
// (`Algo::id`; algorithm/all.hpp checks they are 0..N-1 in AllAlgorithms order): they index
// per-algorithm tables in stores and name state rows in SQLite, so they never change.
enum class AlgorithmId : std::uint8_t {};

// Room for an algorithm's metadata values (all.hpp checks every kMetadata fits).
inline constexpr std::size_t kMaxMetadata = 6;

struct Decision {
    bool allowed = false;
    // The request can never be admitted (cost above the algorithm's capacity).
    bool insufficient_capacity = false;
    // Not decided by the store: a shared store failed and its on_error policy ("allow" or
    // "deny") answered instead (RedisStore). `allowed` holds the policy's answer.
    bool fallback = false;
    // Answered by RedisStore's rejection cache (store/rejection_cache.hpp), not by Redis:
    // a rejection Redis gave earlier, its waits reduced by the time since.
    bool cached = false;
    std::int64_t remaining = 0;
    double reset_after = 0.0;
    double retry_after = 0.0;
    // Algorithm-specific metadata values, in the order of Algo::kMetadata.
    std::array<double, kMaxMetadata> meta{};
};

}  // namespace ratelimiter

// Shared helpers for the algorithm step functions: validation and the comparison tolerance.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "ratelimiter/error.hpp"
#include "ratelimiter/result.hpp"

namespace ratelimiter {

// Tolerance for comparisons of continuous quantities, so that waiting exactly
// retry_after admits the same request (see docs/ALGORITHMS.md).
inline constexpr double kEps = 1e-9;
inline constexpr double kInf = std::numeric_limits<double>::infinity();

// Largest limit/cost accepted: keeps every count exactly representable as a double.
inline constexpr std::int64_t kMaxCount = std::int64_t{1} << 52;

inline void require_positive_count(std::int64_t value, const char* name) {
    if (value <= 0 || value > kMaxCount) {
        throw ConfigError(std::string(name) + " must be a positive integer <= 2**52, got " +
                          std::to_string(value));
    }
}

inline void require_positive_finite(double value, const char* name) {
    if (!std::isfinite(value) || value <= 0.0) {
        throw ConfigError(std::string(name) + " must be a finite number > 0, got " +
                          std::to_string(value));
    }
}

inline void require_unit_interval(double value, const char* name) {
    if (!std::isfinite(value) || value < 0.0 || value > 1.0) {
        throw ConfigError(std::string(name) + " must be in [0, 1], got " + std::to_string(value));
    }
}

// Whole windows since the epoch; stored as a double holding an integer.
inline double window_index(double now, double window) { return std::floor(now / window); }

inline std::int64_t floor_count(double value) {
    const double floored = std::floor(value + kEps);
    return floored <= 0.0 ? 0 : static_cast<std::int64_t>(floored);
}

inline Decision insufficient_capacity(std::int64_t remaining, double reset_after) {
    Decision d;
    d.allowed = false;
    d.insufficient_capacity = true;
    d.remaining = remaining;
    d.reset_after = reset_after;
    d.retry_after = kInf;
    return d;
}

}  // namespace ratelimiter

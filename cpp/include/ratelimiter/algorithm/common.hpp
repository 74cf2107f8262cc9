// Shared helpers for the algorithm step functions: validation and the comparison tolerance.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <type_traits>

#include "ratelimiter/error.hpp"
#include "ratelimiter/result.hpp"

namespace ratelimiter {

// Tolerance for comparisons of continuous quantities, so that waiting exactly
// retry_after admits the same request (see docs/ALGORITHMS.md).
inline constexpr double kEps = 1e-9;
inline constexpr double kInf = std::numeric_limits<double>::infinity();

// How a metadata value (Decision::meta[i]) is shown in result.metadata.
enum class MetaKind : std::uint8_t {
    number,  // a float
    count,   // a whole number of units: an int
    layer,   // the adaptive limiter's deciding layer: 0 "sliding_window", 1 "token_bucket"
};
struct MetaField {
    const char* name;
    MetaKind kind;
};

// What a step reads per call besides (state, now, cost, params): a value the caller measures
// for each call, so it cannot live in the params, which are fixed per limiter. Only the
// adaptive limiter has one (Adaptive::StepInput, the aggregate load); the others take none.
struct NoStepInput {};
template <class Algo, class = void>
struct StepInputTraits {
    using type = NoStepInput;
};
template <class Algo>
struct StepInputTraits<Algo, std::void_t<typename Algo::StepInput>> {
    using type = typename Algo::StepInput;
};
template <class Algo>
using StepInputOf = typename StepInputTraits<Algo>::type;
template <class Algo>
inline constexpr bool kTakesStepInput = !std::is_same_v<StepInputOf<Algo>, NoStepInput>;

// Largest limit/cost accepted: keeps every count exactly representable as a double.
inline constexpr std::int64_t kMaxCount = std::int64_t{1} << 52;

// Shortest text that reads back as the same double ("1e-320", "0.5"), for error messages:
// std::to_string would print every small value as "0.000000".
inline std::string format_number(double value) {
    char buffer[32];
    for (int precision = 6; precision <= 17; ++precision) {
        std::snprintf(buffer, sizeof buffer, "%.*g", precision, value);
        if (std::isnan(value) || std::strtod(buffer, nullptr) == value) break;
    }
    return buffer;
}

// Windows are limited to [1 microsecond, ~317 years]: the window index now/window must stay an
// exactly representable integer (below 2**53) for any clock reading up to the year 2286, and
// a window of 1e-320 s would make it infinite (every request admitted with reset_after inf).
inline constexpr double kMinWindow = 1e-6;
inline constexpr double kMaxWindow = 1e10;

inline void require_positive_count(std::int64_t value, const char* name) {
    if (value <= 0 || value > kMaxCount) {
        throw ConfigError(std::string(name) + " must be a positive integer <= 2**52, got " +
                          std::to_string(value));
    }
}

inline void require_positive_finite(double value, const char* name) {
    if (!std::isfinite(value) || value <= 0.0) {
        throw ConfigError(std::string(name) + " must be a finite number > 0, got " +
                          format_number(value));
    }
}

inline void require_window(double value, const char* name = "window",
                           double max_window = kMaxWindow) {
    if (!std::isfinite(value) || value < kMinWindow || value > max_window) {
        throw ConfigError(std::string(name) + " must be a number of seconds in [" +
                          format_number(kMinWindow) + ", " + format_number(max_window) +
                          "], got " + format_number(value));
    }
}

inline void require_unit_interval(double value, const char* name) {
    if (!std::isfinite(value) || value < 0.0 || value > 1.0) {
        throw ConfigError(std::string(name) + " must be in [0, 1], got " + format_number(value));
    }
}

// floor(value + EPS) as a count in [0, 2**52]: the range check comes before the cast, so a
// NaN, negative or huge value (corrupt state) can never reach an out-of-range conversion.
inline std::int64_t floor_count(double value) {
    const double floored = std::floor(value + kEps);
    if (!(floored > 0.0)) return 0;  // also NaN
    if (floored >= static_cast<double>(kMaxCount)) return kMaxCount;
    return static_cast<std::int64_t>(floored);
}

// How far ahead of `now` a stored timestamp may lie (clock skew between servers in
// client-clock mode). A state further ahead was written by a clock that jumped forward and
// was then corrected; it is re-based to `now` keeping its counts, so one bad reading can
// neither lock a key until real time catches up nor grant a fresh quota.
// See docs/ALGORITHMS.md ("Stored state: validation, clock glitches, parameter changes").
inline constexpr double kClockTolerance = 60.0;

inline bool ahead_of_clock(double t, double now) { return t > now + kClockTolerance; }

// A stored count (units) a step could have written: finite, >= 0, <= 2**52.
inline bool plausible_count(double v) {
    return v >= 0.0 && v <= static_cast<double>(kMaxCount);  // false for NaN
}

// A stored signed amount (a token bucket's tokens, which may be in debt): finite and
// |v| <= 2**52. The debt bound itself is the algorithm's (see kDebtBuckets).
inline bool plausible_signed_count(double v) {
    return v >= -static_cast<double>(kMaxCount) && v <= static_cast<double>(kMaxCount);
}

// How many whole buckets a charge after the fact (MultiRateLimiter.adjust) may put a bucket
// into debt: token bucket tokens down to -capacity, leaky bucket level up to
// (1 + kDebtBuckets)·capacity, GCRA level up to (1 + kDebtBuckets)·burst. Bounded so that a
// charge can never lock a key for longer than two windows, and so that the sanitizers can
// still tell a state a step/adjust wrote from a corrupt one. A larger charge is clamped.
inline constexpr double kDebtBuckets = 1.0;

// Whether v is a finite integer: v == floor(v) for finite v, without std::floor (on baseline
// x86-64, without SSE4.1, GCC inlines floor as ~10 instructions, and the adaptive limiter's
// step checked four indices). At |v| >= 2^52 every finite double is an integer; below, the
// truncating conversion is exact and equals v exactly when v is whole.
inline bool is_integral(double v) {
    if (!(std::fabs(v) < 0x1p52)) return std::isfinite(v);  // also NaN -> false
    return static_cast<double>(static_cast<std::int64_t>(v)) == v;
}

// 1/d when dividing by d equals multiplying by 1/d bit for bit, else 0: d a power of two
// whose reciprocal is a normal double (x/d and x·(1/d) are then the same real number, and
// IEEE rounds both the same way, subnormal results included). Lets a step replace a
// ~13-cycle division by a multiply for such parameters (rate 1, 2, 0.5: 60 per minute ...).
inline double exact_reciprocal(double d) {
    int exponent = 0;
    if (!(d > 0.0) || !std::isfinite(d) || std::frexp(d, &exponent) != 0.5) return 0.0;
    const double inverse = 1.0 / d;
    return std::isnormal(inverse) ? inverse : 0.0;
}

// x / d, as a multiply when exact_reciprocal(d) (passed as `inverse`) is not 0.
inline double divide_exact(double x, double d, double inverse) {
    return inverse != 0.0 ? x * inverse : x / d;
}

// A stored window index: a finite integer.
inline bool plausible_index(double k) { return is_integral(k); }

// The retry_after to report for a rejection decided at `now` after a wait of `wait` seconds:
// the caller sleeps, then reads its clock, and `now + wait` is rounded to a double. Nudging
// that instant a few ulps later makes a caller who waits exactly the reported time land at
// or after the instant the request is admitted (at epoch-scale times one ulp is ~2.4e-7 s,
// while the steps' tolerance is kEps = 1e-9). Never shorter than `wait`; inf stays inf.
inline double wait_until_representable(double now, double wait) {
    if (!std::isfinite(wait)) return wait;
    double at = now + wait;
    for (int i = 0; i < 4; ++i) at = std::nextafter(at, kInf);
    return std::max(wait, at - now);
}

// A decision as reported to a caller: a rejection's retry_after as wait_until_representable.
inline Decision reported(Decision d, double now) {
    if (!d.allowed) d.retry_after = wait_until_representable(now, d.retry_after);
    return d;
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

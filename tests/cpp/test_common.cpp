// Core helpers shared by every store's decisions (algorithm/common.hpp).
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "catch.hpp"
#include "ratelimiter/algorithm/common.hpp"
#include "ratelimiter/algorithm/window.hpp"

using namespace ratelimiter;

TEST_CASE("reported: waiting exactly retry_after lands at or after now + wait", "[common]") {
    const double now = 1'700'000'000.123;  // epoch scale: one ulp is ~2.4e-7 s
    for (const double wait : {1e-9, 0.1, 0.3, 1.0 / 3.0, 59.999999, 60.0}) {
        Decision rejected;
        rejected.retry_after = wait;
        const double reported_wait = reported(rejected, now).retry_after;
        CHECK(reported_wait >= wait);
        CHECK(now + reported_wait >= now + wait);
        CHECK(now + reported_wait > std::nextafter(now + wait, kInf));
        CHECK(reported_wait - wait < 1e-5);
    }
}

TEST_CASE("reported: admissions and an infinite wait are unchanged", "[common]") {
    Decision allowed;
    allowed.allowed = true;
    CHECK(reported(allowed, 1000.0).retry_after == 0.0);
    Decision never = insufficient_capacity(0, 1.0);
    CHECK(std::isinf(reported(never, 1000.0).retry_after));
}

// is_integral replaces `isfinite(v) && v == floor(v)` (plausible_index, the window index
// guess): the same answer everywhere, including the edges of the int64 conversion it uses.
TEST_CASE("is_integral: a finite whole number, exactly as v == floor(v)", "[common]") {
    const double inf = std::numeric_limits<double>::infinity();
    const std::vector<double> values{0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 1e-300, 4.9e-324,
                                     123456789.0, 123456789.25, 0x1p52 - 0.5, 0x1p52 - 1.0,
                                     0x1p52, -0x1p52, 0x1p52 + 2.0, 0x1p63, -0x1p63, 0x1p64,
                                     1e300, -1e300, std::nextafter(0x1p52, 0.0), inf, -inf,
                                     std::nan("")};
    for (double v : values) {
        INFO(v);
        REQUIRE(ratelimiter::is_integral(v) == (std::isfinite(v) && v == std::floor(v)));
        REQUIRE(ratelimiter::plausible_index(v) == ratelimiter::is_integral(v));
    }
    std::mt19937_64 rng(15);
    std::uniform_real_distribution<double> dist(-1e6, 1e6);
    for (int i = 0; i < 100000; ++i) {
        const double v = i % 2 == 0 ? dist(rng) : std::round(dist(rng));
        REQUIRE(ratelimiter::is_integral(v) == (v == std::floor(v)));
    }
}

// A multiply stands in for a division only when it is bit-identical: powers of two.
TEST_CASE("exact_reciprocal: only powers of two; divide_exact equals x / d", "[common]") {
    using ratelimiter::divide_exact;
    using ratelimiter::exact_reciprocal;
    REQUIRE(exact_reciprocal(1.0) == 1.0);
    REQUIRE(exact_reciprocal(2.0) == 0.5);
    REQUIRE(exact_reciprocal(0.25) == 4.0);
    REQUIRE(exact_reciprocal(0x1p-1000) == 0x1p1000);
    REQUIRE(exact_reciprocal(3.0) == 0.0);
    REQUIRE(exact_reciprocal(1.0 / 60.0) == 0.0);
    REQUIRE(exact_reciprocal(5e9) == 0.0);
    REQUIRE(exact_reciprocal(0x1p-1030) == 0.0);  // 2^1030 overflows
    REQUIRE(exact_reciprocal(0x1p1023) == 0.0);   // 2^-1023 is subnormal
    REQUIRE(exact_reciprocal(0.0) == 0.0);
    REQUIRE(exact_reciprocal(-2.0) == 0.0);
    REQUIRE(exact_reciprocal(std::numeric_limits<double>::infinity()) == 0.0);
    REQUIRE(exact_reciprocal(std::nan("")) == 0.0);

    std::mt19937_64 rng(16);
    std::uniform_real_distribution<double> mantissa(-1.0, 1.0);
    std::uniform_int_distribution<int> exponent(-1074, 1023);
    const std::vector<double> divisors{1.0, 2.0, 0.5, 1024.0, 0x1p-20, 0x1p500, 3.0, 1e9, 0.1};
    for (double d : divisors) {
        const double inverse = exact_reciprocal(d);
        for (int i = 0; i < 20000; ++i) {
            const double x = std::ldexp(mantissa(rng), exponent(rng));
            const double expected = x / d;
            const double got = divide_exact(x, d, inverse);
            INFO(x << " / " << d);
            REQUIRE(std::memcmp(&expected, &got, sizeof(double)) == 0);  // bit for bit
        }
    }
}

// weighted() skips the previous window's weight (a division) when prev is zero: the same
// double, the sign of a zero included.
TEST_CASE("WindowPair::weighted with an empty previous window is curr", "[common]") {
    const ratelimiter::WindowPair pair{10.0, 3.0, 0.0, 1.0};
    REQUIRE(pair.weighted(10.5, 1.0) == 3.0);
    const ratelimiter::WindowPair negative_zero{10.0, -0.0, -0.0, 1.0};
    REQUIRE(std::signbit(negative_zero.weighted(10.5, 1.0)));
    const ratelimiter::WindowPair mixed{10.0, -0.0, 0.0, 1.0};
    REQUIRE_FALSE(std::signbit(mixed.weighted(10.5, 1.0)));
    REQUIRE(std::signbit(-0.0 * 0.5 + -0.0));  // what the full formula gives for the former
    REQUIRE_FALSE(std::signbit(0.0 * 0.5 + -0.0));
}

// Core helpers shared by every store's decisions (algorithm/common.hpp).
#include <cmath>
#include <limits>

#include "catch.hpp"
#include "ratelimiter/algorithm/common.hpp"

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

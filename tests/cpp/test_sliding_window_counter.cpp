#include <deque>

#include "algorithm_properties.hpp"

using namespace rl_test;
using ratelimiter::SlidingWindowCounter;

namespace {
SlidingWindowCounter::Params params(std::int64_t limit, double window) {
    return SlidingWindowCounter::make_params({limit, window});
}
}  // namespace

TEST_CASE("sliding counter: weighted previous window", "[sliding_window_counter]") {
    const auto p = params(10, 10.0);
    auto s = SlidingWindowCounter::fresh(5.0, p);
    REQUIRE(SlidingWindowCounter::step(s, 5.0, 10, p).allowed);
    REQUIRE_FALSE(SlidingWindowCounter::step(s, 9.0, 1, p).allowed);

    // At 15 the previous window (10 units) weighs 0.5: 5 more fit.
    for (int i = 0; i < 5; ++i) REQUIRE(SlidingWindowCounter::step(s, 15.0, 1, p).allowed);
    const auto d = SlidingWindowCounter::step(s, 15.0, 1, p);
    REQUIRE_FALSE(d.allowed);
    REQUIRE(d.meta[0] == 5.0);   // curr_count
    REQUIRE(d.meta[1] == 10.0);  // prev_count
    REQUIRE(d.meta[2] == 10.0);  // effective_count
    REQUIRE(d.meta[3] == 0.5);   // weight_prev
    REQUIRE(d.remaining == 0);
    // Fits again once 10·(1 − e/10) + 5 + 1 <= 10, i.e. at e = 6: t = 16.
    REQUIRE(d.retry_after == 1.0);
    REQUIRE(d.reset_after == 15.0);  // both windows empty at (k+2)·window = 30

    // Wait past this window's end: curr + cost > limit rolls into the next window formula.
    const auto big = SlidingWindowCounter::step(s, 15.0, 6, p);
    REQUIRE_FALSE(big.allowed);
    // Next window: 5·(1 − e/10) + 6 <= 10 → e = 2 → t = 22.
    REQUIRE(near(big.retry_after, 7.0));
    REQUIRE(SlidingWindowCounter::step(s, 22.0, 6, p).allowed);
}

TEST_CASE("sliding counter: skipping a whole window forgets everything",
          "[sliding_window_counter]") {
    const auto p = params(4, 1.0);
    auto s = SlidingWindowCounter::fresh(0.0, p);
    REQUIRE(SlidingWindowCounter::step(s, 0.2, 4, p).allowed);
    const auto d = SlidingWindowCounter::step(s, 2.0, 4, p);
    REQUIRE(d.allowed);
    REQUIRE(d.meta[1] == 0.0);
}

TEST_CASE("sliding counter error bound", "[sliding_window_counter]") {
    // Worst case: the previous window's units all came at its very end, so the weighted
    // estimate undercounts a window-length span; the span can hold up to ~2·limit, and
    // never more (each window's own count is at most limit).
    const auto p = params(10, 10.0);
    auto s = SlidingWindowCounter::fresh(0.0, p);
    REQUIRE(SlidingWindowCounter::step(s, 9.99, 10, p).allowed);
    REQUIRE_FALSE(SlidingWindowCounter::step(s, 10.0, 1, p).allowed);  // weight 1 at start
    int late = 0;
    for (int i = 0; i < 20; ++i) late += SlidingWindowCounter::step(s, 19.98, 1, p).allowed;
    REQUIRE(late == 9);  // 10·0.002 + 9 <= 10: 19 units in (9.98, 19.98]

    // Random traces: at most limit per aligned window, at most 2·limit per span.
    const auto q = params(8, 2.0);
    std::mt19937 rng(11);
    const auto trace = random_trace(rng, 5000, 0.0, 0.3, 2);
    auto r = SlidingWindowCounter::fresh(0.0, q);
    std::deque<Event> admitted;
    std::int64_t in_span = 0;
    for (const Event& e : trace) {
        const auto d = SlidingWindowCounter::step(r, e.now, e.cost, q);
        if (!d.allowed) continue;
        REQUIRE(d.meta[0] <= 8.0);
        admitted.push_back(e);
        in_span += e.cost;
        while (!(admitted.front().now > e.now - 2.0)) {
            in_span -= admitted.front().cost;
            admitted.pop_front();
        }
        REQUIRE(in_span <= 16);
    }
}

TEST_CASE("sliding counter: clock going backwards never yields a negative or NaN wait",
          "[sliding_window_counter]") {
    const auto p = params(3, 10.0);
    auto s = SlidingWindowCounter::fresh(35.0, p);
    REQUIRE(SlidingWindowCounter::step(s, 35.0, 3, p).allowed);
    const auto d = SlidingWindowCounter::step(s, 12.0, 1, p);  // two windows back
    REQUIRE_FALSE(d.allowed);
    REQUIRE(d.meta[3] == 1.0);  // elapsed clamped to 0
    // Next window: 3·(1 − e/10) + 1 <= 3 → e = 10/3, measured from the caller's clock.
    REQUIRE(near(d.retry_after, 40.0 + 10.0 / 3.0 - 12.0));
}

TEST_CASE("sliding counter: invalid parameters throw ConfigError", "[sliding_window_counter]") {
    require_config_error([] { params(0, 1.0); }, "limit");
    require_config_error([] { params(1, -2.0); }, "window");
    require_config_error([] { params(1, kInf); }, "window");
}

TEST_CASE("sliding counter: properties on random traces",
          "[sliding_window_counter][properties]") {
    PropertyOptions o;
    o.capacity = 6;
    o.grid = 2.0;
    check_all_properties<SlidingWindowCounter>(params(6, 10.0), o);
    o.grid = 0.03;
    check_all_properties<SlidingWindowCounter>(params(6, 0.1), o);
}

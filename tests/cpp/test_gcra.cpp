#include <limits>
#include "algorithm_properties.hpp"

using namespace rl_test;
using ratelimiter::Gcra;
using ratelimiter::TokenBucket;

namespace {
Gcra::Params params(std::int64_t limit, double window,
                    std::optional<std::int64_t> burst = std::nullopt) {
    return Gcra::make_params({limit, window, burst});
}
}  // namespace

TEST_CASE("gcra: burst then one unit per emission interval", "[gcra]") {
    const auto p = params(10, 10.0);  // T = 1 s, burst 10
    auto s = Gcra::fresh(0.0, p);
    for (int i = 0; i < 10; ++i) {
        const auto d = Gcra::step(s, 0.0, 1, p);
        REQUIRE(d.allowed);
        REQUIRE(d.remaining == 9 - i);
        REQUIRE(d.meta[0] == i + 1.0);  // tat
    }
    const auto d = Gcra::step(s, 0.0, 1, p);
    REQUIRE_FALSE(d.allowed);
    REQUIRE(d.retry_after == 1.0);
    REQUIRE(d.reset_after == 10.0);
    REQUIRE(Gcra::step(s, 1.0, 1, p).allowed);
    REQUIRE_FALSE(Gcra::step(s, 1.5, 1, p).allowed);
    REQUIRE(Gcra::step(s, 2.0, 1, p).allowed);
}

TEST_CASE("gcra: explicit burst", "[gcra]") {
    const auto p = params(10, 10.0, 3);
    auto s = Gcra::fresh(0.0, p);
    REQUIRE(Gcra::step(s, 0.0, 3, p).allowed);
    const auto d = Gcra::step(s, 0.0, 2, p);
    REQUIRE_FALSE(d.allowed);
    REQUIRE(d.retry_after == 2.0);
    REQUIRE(Gcra::step(s, 2.0, 2, p).allowed);
    REQUIRE(Gcra::step(s, 100.0, 4, p).insufficient_capacity);
}

TEST_CASE("gcra admits exactly what a token bucket with the same rate and burst admits",
          "[gcra]") {
    struct Case {
        std::int64_t limit;
        double window;
        std::int64_t burst;
    };
    for (const Case c : {Case{10, 10.0, 10}, Case{5, 1.0, 2}, Case{3, 0.7, 8}, Case{100, 60.0, 7}}) {
        const auto g = params(c.limit, c.window, c.burst);
        const auto tb = TokenBucket::make_params(
            {c.burst, c.window, static_cast<double>(c.limit) / c.window});
        std::mt19937 rng(static_cast<unsigned>(c.limit));
        const auto trace = random_trace(rng, 5000, 10.0, c.window / static_cast<double>(c.limit),
                                        std::min<std::int64_t>(c.burst, 3));
        auto gs = Gcra::fresh(trace.front().now, g);
        auto ts = TokenBucket::fresh(trace.front().now, tb);
        int admitted = 0;
        for (const Event& e : trace) {
            CAPTURE(c.limit, e.now, e.cost);
            const auto gd = Gcra::step(gs, e.now, e.cost, g);
            const auto td = TokenBucket::step(ts, e.now, e.cost, tb);
            REQUIRE(gd.allowed == td.allowed);
            REQUIRE(gd.remaining == td.remaining);
            REQUIRE(near(gd.retry_after, td.retry_after, 1e-6));
            admitted += gd.allowed;
        }
        REQUIRE(admitted > 500);
        REQUIRE(admitted < 5000);
    }
}

TEST_CASE("gcra: clock going backwards never yields a negative wait", "[gcra]") {
    const auto p = params(2, 2.0);
    auto s = Gcra::fresh(10.0, p);
    REQUIRE(Gcra::step(s, 10.0, 2, p).allowed);
    const auto d = Gcra::step(s, 5.0, 1, p);
    REQUIRE_FALSE(d.allowed);
    REQUIRE(d.retry_after == 1.0);  // measured in units (as the token bucket), not stale time
    REQUIRE(d.reset_after == 2.0);
}

TEST_CASE("gcra: admits exactly burst at epoch-scale times", "[gcra]") {
    for (std::int64_t limit = 1; limit <= 300; ++limit) {
        for (double window : {0.1, 1.0, 1.7, 7.0, 60.0, 61.3, 3600.0}) {
            const auto p = params(limit, window);
            auto s = Gcra::fresh(1.7e9, p);
            std::int64_t admitted = 0;
            for (std::int64_t i = 0; i < limit + 2; ++i) admitted += Gcra::step(s, 1.7e9, 1, p).allowed;
            REQUIRE(admitted == limit);
        }
    }
}

TEST_CASE("gcra: corrupt state is a fresh key; a glitched future `last` is re-based", "[gcra]") {
    const auto p = params(5, 60.0);
    const double nan = std::numeric_limits<double>::quiet_NaN();
    for (auto bad : {Gcra::State{nan, nan}, Gcra::State{-1e300, 1e300}, Gcra::State{1e300, 0.0}}) {
        auto s = bad;
        std::int64_t admitted = 0;
        for (int i = 0; i < 10; ++i) {
            const auto d = Gcra::step(s, 1000.0, 1, p);
            admitted += d.allowed;
            REQUIRE(d.remaining >= 0);
            REQUIRE(d.remaining <= 5);
        }
        REQUIRE(admitted <= 5);
    }
    auto s = Gcra::State{1.0, 1000.0 + 365 * 86400.0};  // one unit, written a year ahead
    std::int64_t admitted = 0;
    for (int i = 0; i < 10; ++i) admitted += Gcra::step(s, 1000.0, 1, p).allowed;
    REQUIRE(admitted == 4);
}

TEST_CASE("gcra: invalid parameters throw ConfigError", "[gcra]") {
    require_config_error([] { params(0, 1.0); }, "limit");
    require_config_error([] { params(1, 0.0); }, "window");
    require_config_error([] { params(1, 1.0, 0); }, "burst");
    require_config_error([] { params(1, 1.0, -2); }, "burst");
}

TEST_CASE("gcra: properties on random traces", "[gcra][properties]") {
    PropertyOptions o;
    o.capacity = 5;
    o.grid = 0.7;
    check_all_properties<Gcra>(params(5, 10.0), o);
    o.grid = 0.05;
    o.capacity = 3;
    check_all_properties<Gcra>(params(7, 1.0, 3), o);
}

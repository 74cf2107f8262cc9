#include "algorithm_properties.hpp"

using namespace rl_test;
using ratelimiter::Adaptive;

namespace {
Adaptive::Spec spec(std::int64_t limit, double window) {
    Adaptive::Spec s;
    s.limit = limit;
    s.window = window;
    return s;
}
Adaptive::Params params(std::int64_t limit, double window) {
    return Adaptive::make_params(spec(limit, window));
}
constexpr double kSlidingWindow = Adaptive::kLayerSlidingWindow;
constexpr double kTokenBucket = Adaptive::kLayerTokenBucket;
}  // namespace

TEST_CASE("adaptive: a quiet key gets limit*burst_multiplier at once", "[adaptive]") {
    const auto p = params(10, 10.0);
    auto s = Adaptive::fresh(0.0, p);
    for (int i = 0; i < 20; ++i) {
        const auto d = Adaptive::step(s, 0.0, 1, p);
        REQUIRE(d.allowed);
        REQUIRE(d.meta[0] == kTokenBucket);
        REQUIRE(d.meta[2] == 20.0);  // effective_burst
        REQUIRE(d.remaining == 19 - i);
    }
    const auto d = Adaptive::step(s, 0.0, 1, p);
    REQUIRE_FALSE(d.allowed);
    REQUIRE(d.meta[0] == kSlidingWindow);
    REQUIRE(d.meta[1] == 0.0);   // tokens
    REQUIRE(d.meta[3] == 1.0);   // refill_rate = limit / window
    REQUIRE(d.meta[4] == 20.0);  // sw_count
    REQUIRE(d.meta[5] == 0.4);   // load: 20 admitted / 50 s against 1/s
    // Guard: 20·(1 − e/10) + 1 <= 20 → e = 0.5 into the next window → t = 10.5;
    // the bucket needs 1 s only.
    REQUIRE(near(d.retry_after, 10.5));
}

TEST_CASE("adaptive: the guard is checked before the bucket", "[adaptive]") {
    const auto p = params(10, 10.0);
    auto s = Adaptive::fresh(0.0, p);
    REQUIRE(Adaptive::step(s, 0.0, 20, p).allowed);
    // Two windows later the guard is empty and the bucket full again.
    REQUIRE(Adaptive::step(s, 25.0, 20, p).allowed);
    const auto d = Adaptive::step(s, 25.5, 1, p);  // guard 20 of 20 and tokens 0.5: both short
    REQUIRE_FALSE(d.allowed);
    REQUIRE(d.meta[0] == kSlidingWindow);
}

TEST_CASE("adaptive: layer token_bucket when only the bucket is short", "[adaptive]") {
    const auto p = params(10, 10.0);
    auto s = Adaptive::fresh(0.0, p);
    REQUIRE(Adaptive::step(s, 9.99, 20, p).allowed);  // guard 20, tokens 0, at a window's end
    REQUIRE(Adaptive::step(s, 10.0, 1, p).meta[0] == kSlidingWindow);  // prev weighs 1
    // At 19 the previous window weighs 0.1 (guard 2 of 20) but only 9.01 tokens are back.
    const auto d = Adaptive::step(s, 19.0, 10, p);
    REQUIRE_FALSE(d.allowed);
    REQUIRE(d.meta[0] == kTokenBucket);
    REQUIRE(near(d.meta[4], 2.0));
    REQUIRE(near(d.meta[1], 9.01));
    REQUIRE(near(d.retry_after, 0.99));
    REQUIRE(Adaptive::step(s, 19.0 + d.retry_after, 10, p).allowed);
}

TEST_CASE("adaptive: sustained load tightens the burst, quiet relaxes it", "[adaptive]") {
    const auto p = params(10, 10.0);  // rate 1/s, adaptive_window 50 s
    auto s = Adaptive::fresh(0.0, p);
    // Two requests a second for 200 s: about one a second is admitted, load ≈ 1 >= high.
    for (int i = 0; i < 400; ++i) Adaptive::step(s, i * 0.5, 1, p);
    const auto busy = Adaptive::peek(s, 200.0, p);
    REQUIRE(busy.meta[5] >= 0.8);
    REQUIRE(busy.meta[2] == 10.0);  // limit · 2 · (1 − penalty)
    REQUIRE(busy.meta[1] <= 10.0);  // the bucket is capped at the tightened burst

    // Quiet for two adaptive windows: the sensor empties, the full burst is back.
    const auto quiet = Adaptive::peek(s, 400.0, p);
    REQUIRE(quiet.meta[5] == 0.0);
    REQUIRE(quiet.meta[2] == 20.0);
    int admitted = 0;
    for (int i = 0; i < 30; ++i) admitted += Adaptive::step(s, 400.0, 1, p).allowed;
    REQUIRE(admitted == 20);
}

TEST_CASE("adaptive: between thresholds the burst shrinks linearly", "[adaptive]") {
    const auto p = params(10, 10.0);
    const struct {
        double load;
        double burst;
    } cases[] = {{0.0, 20.0}, {0.4, 20.0}, {0.6, 15.0}, {0.7, 12.0}, {0.8, 10.0}, {5.0, 10.0}};
    for (const auto& c : cases) {
        CAPTURE(c.load);
        // Aggregate mode: the binding measures the load and hands it to each step.
        auto s = Adaptive::fresh(0.0, p);
        const auto d = Adaptive::peek(s, 0.0, p, c.load);
        REQUIRE(d.meta[2] == c.burst);
        REQUIRE(d.meta[5] == c.load);
        int admitted = 0;
        for (int i = 0; i < 30; ++i) admitted += Adaptive::step(s, 0.0, 1, p, c.load).allowed;
        REQUIRE(admitted == static_cast<int>(c.burst));
    }
}

TEST_CASE("adaptive: burst_multiplier 1 stops a burst straddling a window boundary",
          "[adaptive]") {
    auto sp = spec(10, 10.0);
    sp.burst_multiplier = 1.0;
    const auto p = Adaptive::make_params(sp);
    auto s = Adaptive::fresh(0.0, p);
    REQUIRE(Adaptive::step(s, 9.9, 10, p).allowed);
    const auto d = Adaptive::step(s, 10.0, 1, p);
    REQUIRE_FALSE(d.allowed);
    REQUIRE(d.meta[0] == kSlidingWindow);
}

TEST_CASE("adaptive: cost above the current burst waits for the load to fall", "[adaptive]") {
    auto p = params(10, 10.0);
    auto s = Adaptive::fresh(0.0, p);
    for (int i = 0; i < 60; ++i) Adaptive::step(s, i * 1.0, 1, p);  // load ≈ 1: burst 10
    REQUIRE(Adaptive::peek(s, 60.0, p).meta[2] == 10.0);
    const auto d = Adaptive::step(s, 60.0, 15, p);
    REQUIRE_FALSE(d.allowed);
    REQUIRE_FALSE(d.insufficient_capacity);  // 15 <= max_burst 20
    REQUIRE(d.meta[0] == kSlidingWindow);
    REQUIRE(d.retry_after == 150.0 - 60.0);  // sensor window 1 ([50, 100)) empty at 150
    REQUIRE(Adaptive::step(s, 60.0 + d.retry_after, 15, p).allowed);
}

TEST_CASE("adaptive: invalid parameters throw ConfigError", "[adaptive]") {
    auto with = [](auto change) {
        return [change] {
            auto sp = spec(10, 1.0);
            change(sp);
            Adaptive::make_params(sp);
        };
    };
    require_config_error(with([](Adaptive::Spec& s) { s.limit = 0; }), "limit");
    require_config_error(with([](Adaptive::Spec& s) { s.window = 0.0; }), "window");
    require_config_error(with([](Adaptive::Spec& s) { s.burst_multiplier = 0.0; }),
                         "burst_multiplier");
    require_config_error(with([](Adaptive::Spec& s) { s.burst_multiplier = std::nan(""); }),
                         "burst_multiplier");
    require_config_error(with([](Adaptive::Spec& s) { s.burst_multiplier = 1e300; }),
                         "burst_multiplier");
    require_config_error(with([](Adaptive::Spec& s) { s.adaptive_window = -1.0; }),
                         "adaptive_window");
    require_config_error(with([](Adaptive::Spec& s) { s.high_load_threshold = 1.5; }),
                         "high_load_threshold");
    require_config_error(with([](Adaptive::Spec& s) { s.low_load_threshold = -0.1; }),
                         "low_load_threshold");
    require_config_error(with([](Adaptive::Spec& s) {
                             s.low_load_threshold = 0.9;
                             s.high_load_threshold = 0.5;
                         }),
                         "low_load_threshold");
    require_config_error(with([](Adaptive::Spec& s) { s.penalty = 1.0; }), "penalty");
    require_config_error(with([](Adaptive::Spec& s) { s.penalty = -0.5; }), "penalty");
    require_config_error(with([](Adaptive::Spec& s) { s.load_capacity = 0.0; }), "load_capacity");
    // Boundaries that are valid.
    auto sp = spec(10, 1.0);
    sp.low_load_threshold = sp.high_load_threshold = 0.5;
    sp.penalty = 0.0;
    REQUIRE(Adaptive::make_params(sp).max_burst == 20.0);
}

TEST_CASE("adaptive: properties on random traces", "[adaptive][properties]") {
    PropertyOptions o;
    o.retry_is_minimal = false;  // the wait is the latest of the layers' waits: enough, not least
    o.grid = 0.4;
    o.capacity = 20;
    check_all_properties<Adaptive>(params(10, 10.0), o);
    auto sp = spec(4, 1.0);
    sp.burst_multiplier = 1.5;
    sp.adaptive_window = 0.5;  // shorter than the window
    o.grid = 0.05;
    o.capacity = 6;
    o.max_cost = 5;
    check_all_properties<Adaptive>(Adaptive::make_params(sp), o);
}

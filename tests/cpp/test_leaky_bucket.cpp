#include "algorithm_properties.hpp"

using namespace rl_test;
using ratelimiter::LeakyBucket;

namespace {
LeakyBucket::Params params(std::int64_t limit, double window,
                           std::optional<double> leak_rate = std::nullopt) {
    return LeakyBucket::make_params({limit, window, leak_rate});
}
}  // namespace

TEST_CASE("leaky bucket: level rises by cost and drains at limit/window", "[leaky_bucket]") {
    const auto p = params(4, 8.0);  // drains 0.5/s
    auto s = LeakyBucket::fresh(0.0, p);
    for (int i = 0; i < 4; ++i) REQUIRE(LeakyBucket::step(s, 0.0, 1, p).allowed);
    const auto full = LeakyBucket::step(s, 0.0, 1, p);
    REQUIRE_FALSE(full.allowed);
    REQUIRE(full.retry_after == 2.0);  // (4 + 1 − 4) / 0.5
    REQUIRE(full.reset_after == 8.0);  // 4 / 0.5
    REQUIRE(full.meta[0] == 4.0);      // level
    REQUIRE(full.meta[1] == 0.5);      // leak_rate

    const auto half = LeakyBucket::step(s, 1.0, 1, p);  // level 3.5: 3.5 + 1 > 4
    REQUIRE_FALSE(half.allowed);
    REQUIRE(half.meta[0] == 3.5);
    REQUIRE(half.retry_after == 1.0);
    const auto ok = LeakyBucket::step(s, 2.0, 1, p);
    REQUIRE(ok.allowed);
    REQUIRE(ok.meta[0] == 4.0);
    REQUIRE(ok.remaining == 0);
    // Drains to empty, never below.
    const auto empty = LeakyBucket::peek(s, 100.0, p);
    REQUIRE(empty.meta[0] == 0.0);
    REQUIRE(empty.remaining == 4);
}

TEST_CASE("leaky bucket: explicit leak_rate", "[leaky_bucket]") {
    const auto p = params(3, 100.0, 1.5);
    auto s = LeakyBucket::fresh(0.0, p);
    REQUIRE(LeakyBucket::step(s, 0.0, 3, p).allowed);
    const auto d = LeakyBucket::step(s, 1.0, 2, p);  // level 1.5
    REQUIRE_FALSE(d.allowed);
    REQUIRE(d.retry_after == 1.0 / 3.0);
    REQUIRE(LeakyBucket::step(s, 1.0 + d.retry_after, 2, p).allowed);
}

TEST_CASE("leaky bucket: clock going backwards drains nothing", "[leaky_bucket]") {
    const auto p = params(2, 2.0);
    auto s = LeakyBucket::fresh(50.0, p);
    REQUIRE(LeakyBucket::step(s, 50.0, 2, p).allowed);
    const auto d = LeakyBucket::step(s, 10.0, 1, p);
    REQUIRE_FALSE(d.allowed);
    REQUIRE(d.retry_after == 1.0);
}

TEST_CASE("leaky bucket: invalid parameters throw ConfigError", "[leaky_bucket]") {
    require_config_error([] { params(0, 1.0); }, "limit");
    require_config_error([] { params(1, 0.0); }, "window");
    require_config_error([] { params(1, 1.0, 0.0); }, "leak_rate");
    require_config_error([] { params(1, 1.0, std::nan("")); }, "leak_rate");
}

TEST_CASE("leaky bucket: properties on random traces", "[leaky_bucket][properties]") {
    PropertyOptions o;
    o.capacity = 5;
    o.grid = 0.7;
    check_all_properties<LeakyBucket>(params(5, 10.0), o);
    o.grid = 0.05;
    check_all_properties<LeakyBucket>(params(5, 1.0, 3.0), o);
}

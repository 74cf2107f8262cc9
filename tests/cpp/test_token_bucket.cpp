#include "algorithm_properties.hpp"

using namespace rl_test;
using ratelimiter::TokenBucket;

namespace {
TokenBucket::Params params(std::int64_t limit, double window,
                           std::optional<double> refill_rate = std::nullopt) {
    return TokenBucket::make_params({limit, window, refill_rate});
}
}  // namespace

TEST_CASE("token bucket: starts full, refills at limit/window", "[token_bucket]") {
    const auto p = params(5, 10.0);  // 0.5 token/s
    auto s = TokenBucket::fresh(0.0, p);
    for (int i = 0; i < 5; ++i) {
        const auto d = TokenBucket::step(s, 0.0, 1, p);
        REQUIRE(d.allowed);
        REQUIRE(d.remaining == 4 - i);
    }
    const auto rejected = TokenBucket::step(s, 0.0, 1, p);
    REQUIRE_FALSE(rejected.allowed);
    REQUIRE(rejected.retry_after == 2.0);
    REQUIRE(rejected.reset_after == 10.0);
    REQUIRE(rejected.meta[1] == 0.5);  // refill_rate

    const auto partial = TokenBucket::peek(s, 1.0, p);
    REQUIRE_FALSE(partial.allowed);
    REQUIRE(partial.meta[0] == 0.5);  // tokens
    REQUIRE(partial.retry_after == 1.0);
    REQUIRE(TokenBucket::step(s, 2.0, 1, p).allowed);
    REQUIRE_FALSE(TokenBucket::step(s, 2.0, 1, p).allowed);
    // Long idle: capped at capacity.
    const auto idle = TokenBucket::peek(s, 1000.0, p);
    REQUIRE(idle.meta[0] == 5.0);
    REQUIRE(idle.reset_after == 0.0);
}

TEST_CASE("token bucket: explicit refill_rate and multi-token cost", "[token_bucket]") {
    const auto p = params(10, 60.0, 2.0);
    auto s = TokenBucket::fresh(0.0, p);
    REQUIRE(TokenBucket::step(s, 0.0, 10, p).allowed);
    const auto d = TokenBucket::step(s, 1.0, 3, p);  // 2 tokens back after 1 s
    REQUIRE_FALSE(d.allowed);
    REQUIRE(d.retry_after == 0.5);
    REQUIRE(TokenBucket::step(s, 1.5, 3, p).allowed);
    REQUIRE(s.tokens == 0.0);
}

TEST_CASE("token bucket: clock going backwards adds no tokens", "[token_bucket]") {
    const auto p = params(2, 2.0);
    auto s = TokenBucket::fresh(10.0, p);
    REQUIRE(TokenBucket::step(s, 10.0, 2, p).allowed);
    const auto d = TokenBucket::step(s, 4.0, 1, p);
    REQUIRE_FALSE(d.allowed);
    REQUIRE(d.retry_after == 1.0);  // measured in tokens, not against the stale clock
    REQUIRE(d.reset_after == 2.0);
}

TEST_CASE("token bucket: invalid parameters throw ConfigError", "[token_bucket]") {
    require_config_error([] { params(0, 1.0); }, "limit");
    require_config_error([] { params(1, 0.0); }, "window");
    require_config_error([] { params(1, 1.0, 0.0); }, "refill_rate");
    require_config_error([] { params(1, 1.0, -1.0); }, "refill_rate");
    require_config_error([] { params(1, 1.0, std::nan("")); }, "refill_rate");
    require_config_error([] { params(1, 1.0, kInf); }, "refill_rate");
}

TEST_CASE("token bucket: properties on random traces", "[token_bucket][properties]") {
    PropertyOptions o;
    o.capacity = 5;
    o.grid = 0.7;
    check_all_properties<TokenBucket>(params(5, 10.0), o);
    o.grid = 0.05;
    check_all_properties<TokenBucket>(params(5, 1.0, 3.0), o);
}

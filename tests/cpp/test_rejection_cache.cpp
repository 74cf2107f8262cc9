// RejectionCache (store/rejection_cache.hpp) on its own: explicit monotonic times, the bound
// under many keys, and threads racing lookups, records and invalidations.
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "catch.hpp"
#include "ratelimiter/store/rejection_cache.hpp"

using namespace ratelimiter;

namespace {

// A token bucket call (cpp/lua/_common.lua): now ('' = server time), cost, op, format, params.
std::vector<std::string> call(std::string now = "", int cost = 1, std::string op = "consume") {
    return {std::move(now), std::to_string(cost), std::move(op), "b", "10", "0.5"};
}

Decision rejected(double retry_after) {
    Decision d;
    d.retry_after = retry_after;
    d.reset_after = 19.0;
    return d;
}

}  // namespace

TEST_CASE("rejection cache: answers until the wait runs out, on the monotonic clock",
          "[rejection_cache]") {
    RejectionCache cache(8);
    cache.record("k", TokenBucket::id, call(), rejected(2.0), 100.0, cache.ticket("k"));
    Decision out;
    REQUIRE(cache.lookup("k", TokenBucket::id, call(), 100.5, out));
    CHECK(out.cached);
    CHECK(out.retry_after == 1.5);
    CHECK(out.reset_after == 18.5);
    // Expiry 102 - (10 us + kEps * 10 + 1e-3 * 2 s for clock-rate drift) = 101.99799.
    CHECK(cache.lookup("k", TokenBucket::id, call(), 101.997, out));
    CHECK_FALSE(cache.lookup("k", TokenBucket::id, call(), 101.998, out));
    CHECK(cache.counters().entries == 0);
}

TEST_CASE("rejection cache: a client clock going back asks Redis", "[rejection_cache]") {
    RejectionCache cache(8);
    cache.record("k", TokenBucket::id, call("1000"), rejected(2.0), 0.0, cache.ticket("k"));
    Decision out;
    CHECK(cache.lookup("k", TokenBucket::id, call("1001"), 0.0, out));
    CHECK_FALSE(cache.lookup("k", TokenBucket::id, call("999.5"), 0.0, out));
}

TEST_CASE("rejection cache: adaptive and peeks are never cached", "[rejection_cache]") {
    RejectionCache cache(8);
    cache.record("a", Adaptive::id, call(), rejected(2.0), 0.0, cache.ticket("a"));
    cache.record("p", TokenBucket::id, call("", 1, "peek"), rejected(2.0), 0.0,
                 cache.ticket("p"));
    CHECK(cache.counters().entries == 0);
}

TEST_CASE("rejection cache: never holds more than max_entries", "[rejection_cache]") {
    for (const std::size_t bound : {1u, 5u, 16u, 100u}) {
        RejectionCache cache(bound);
        for (int i = 0; i < 10'000; ++i) {
            const std::string key = "k" + std::to_string(i);
            cache.record(key, TokenBucket::id, call(), rejected(60.0), 0.0, cache.ticket(key));
            REQUIRE(cache.counters().entries <= bound);
        }
        const RejectionCacheCounters c = cache.counters();
        CHECK(c.recorded == 10'000);
        CHECK(c.evictions == 10'000 - c.entries);
    }
}

TEST_CASE("rejection cache: threads racing stay bounded and consistent", "[rejection_cache]") {
    RejectionCache cache(64);
    std::atomic<int> hits{0};
    std::vector<std::thread> pool;
    for (int t = 0; t < 4; ++t) {
        pool.emplace_back([&cache, &hits, t] {
            Decision out;
            for (int i = 0; i < 20'000; ++i) {
                const std::string key = "k" + std::to_string((i * 7 + t) % 200);
                const std::uint64_t ticket = cache.ticket(key);
                if (cache.lookup(key, TokenBucket::id, call(), 1.0, out)) {
                    hits.fetch_add(1);
                    if (i % 97 == 0) cache.invalidate(key);
                    continue;
                }
                cache.record(key, TokenBucket::id, call(), rejected(60.0), 1.0, ticket);
            }
        });
    }
    for (auto& th : pool) th.join();
    const RejectionCacheCounters c = cache.counters();
    CHECK(c.entries <= 64);
    CHECK(c.hits == static_cast<std::uint64_t>(hits.load()));
    CHECK(c.hits > 0);
}

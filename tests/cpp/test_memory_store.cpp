#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "catch.hpp"
#include "ratelimiter/store/memory_store.hpp"

using ratelimiter::ConfigError;
using ratelimiter::FixedWindow;
using ratelimiter::MemoryStore;
using ratelimiter::Operation;
using ratelimiter::TokenBucket;

TEST_CASE("memory store: max_keys is never exceeded; evictions are counted", "[memory_store]") {
    MemoryStore store(100, 8);
    const auto p = FixedWindow::make_params({5, 60.0});
    for (int i = 0; i < 1000; ++i) {
        REQUIRE(store.apply<FixedWindow>("key" + std::to_string(i), 1.0, 1, p,
                                         Operation::consume)
                    .allowed);
        REQUIRE(store.size() <= 100);
    }
    // Nothing expired (all fresh at 60), so every insertion beyond the bound evicted one.
    REQUIRE(store.size() == 100);
    REQUIRE(store.evictions() == 900);
    REQUIRE(store.max_keys() == 100);
}

TEST_CASE("memory store: purge_expired drops keys back to fresh", "[memory_store]") {
    MemoryStore store(1000, 4);
    const auto p = FixedWindow::make_params({5, 10.0});
    for (int i = 0; i < 30; ++i) {
        store.apply<FixedWindow>("old" + std::to_string(i), 1.0, 1, p, Operation::consume);
    }
    for (int i = 0; i < 20; ++i) {
        store.apply<FixedWindow>("new" + std::to_string(i), 15.0, 1, p, Operation::consume);
    }
    REQUIRE(store.size() == 50);
    REQUIRE(store.purge_expired(9.99) == 0);
    REQUIRE(store.purge_expired(10.0) == 30);  // window [0, 10) over: fresh at 10
    REQUIRE(store.size() == 20);
    REQUIRE(store.snapshot<FixedWindow>("old3").empty());
    REQUIRE(store.snapshot<FixedWindow>("new3") == std::vector<double>{1.0, 1.0, 10.0});
    store.clear();
    REQUIRE(store.size() == 0);
}

TEST_CASE("memory store: peek does not consume", "[memory_store]") {
    MemoryStore store;
    const auto p = TokenBucket::make_params({3, 30.0, std::nullopt});
    for (int i = 0; i < 5; ++i) {
        const auto d = store.apply<TokenBucket>("k", 0.0, 1, p, Operation::peek);
        REQUIRE(d.allowed);
        REQUIRE(d.remaining == 3);
    }
    REQUIRE(store.size() == 0);  // peeking a new key stores nothing
    REQUIRE(store.apply<TokenBucket>("k", 0.0, 2, p, Operation::consume).allowed);
    const auto before = store.snapshot<TokenBucket>("k");
    const auto d = store.apply<TokenBucket>("k", 0.0, 1, p, Operation::peek);
    REQUIRE(d.allowed);
    REQUIRE(d.remaining == 1);
    REQUIRE(store.snapshot<TokenBucket>("k") == before);
    REQUIRE(store.apply<TokenBucket>("k", 0.0, 1, p, Operation::consume).allowed);
    REQUIRE_FALSE(store.apply<TokenBucket>("k", 0.0, 1, p, Operation::peek).allowed);
}

TEST_CASE("memory store: erase forgets a key; rejected first requests store nothing",
          "[memory_store]") {
    MemoryStore store;
    const auto p = FixedWindow::make_params({2, 10.0});
    REQUIRE(store.apply<FixedWindow>("k", 0.0, 2, p, Operation::consume).allowed);
    REQUIRE_FALSE(store.apply<FixedWindow>("k", 0.0, 1, p, Operation::consume).allowed);
    REQUIRE(store.erase<FixedWindow>("k"));
    REQUIRE_FALSE(store.erase<FixedWindow>("k"));
    REQUIRE(store.size() == 0);
    REQUIRE(store.apply<FixedWindow>("k", 0.0, 2, p, Operation::consume).allowed);
    // Same key name, other algorithm: a separate state.
    REQUIRE_FALSE(store.erase<TokenBucket>("k"));
    const auto big = store.apply<FixedWindow>("other", 0.0, 3, p, Operation::consume);
    REQUIRE(big.insufficient_capacity);
    REQUIRE(store.size() == 1);
}

TEST_CASE("memory store: max_keys 0 is a configuration error", "[memory_store]") {
    REQUIRE_THROWS_AS(MemoryStore(0), ConfigError);
}

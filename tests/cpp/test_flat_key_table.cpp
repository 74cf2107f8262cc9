// FlatKeyTable (the memory store's per-shard table) on its own, against std::map as the model.
#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "catch.hpp"
#include "ratelimiter/store/flat_key_table.hpp"
#include "ratelimiter/store/memory_store.hpp"

using ratelimiter::FlatKeyTable;

namespace {

using Table = FlatKeyTable<int>;

int* find(Table& t, std::string_view key) { return t.find(key, Table::hash(key)); }
void insert(Table& t, std::string_view key, int v) { t.insert(key, Table::hash(key), v); }
bool erase(Table& t, std::string_view key) { return t.erase(key, Table::hash(key)); }

// Every key of the model is found with its value, and the table holds nothing else.
void require_matches(Table& t, const std::map<std::string, int>& model) {
    REQUIRE(t.size() == model.size());
    for (const auto& [key, value] : model) {
        const int* found = find(t, key);
        REQUIRE(found != nullptr);
        REQUIRE(*found == value);
    }
    for (std::size_t i = 0; i < t.size(); ++i) REQUIRE(model.count(t.node(i).key) == 1);
}

}  // namespace

TEST_CASE("flat key table: insert, find, erase", "[flat_key_table]") {
    Table t;
    REQUIRE(find(t, "a") == nullptr);  // an empty table has no slots yet
    REQUIRE_FALSE(erase(t, "a"));
    insert(t, "a", 1);
    insert(t, "b", 2);
    REQUIRE(*find(t, "a") == 1);
    REQUIRE(*find(t, "b") == 2);
    REQUIRE(find(t, "c") == nullptr);
    *find(t, "a") = 10;
    REQUIRE(*find(t, "a") == 10);
    REQUIRE(erase(t, "a"));
    REQUIRE_FALSE(erase(t, "a"));
    REQUIRE(find(t, "a") == nullptr);
    REQUIRE(*find(t, "b") == 2);  // moved into a's place in the dense nodes, still found
    REQUIRE(t.size() == 1);
}

TEST_CASE("flat key table: keys with embedded NULs and a huge key", "[flat_key_table]") {
    Table t;
    const std::string nul1("a\0b", 3);
    const std::string nul2("a\0c", 3);
    const std::string huge(1 << 20, 'x');
    std::string huge2 = huge;
    huge2.back() = 'y';
    insert(t, nul1, 1);
    insert(t, nul2, 2);
    insert(t, "a", 3);  // a prefix of both up to the NUL
    insert(t, huge, 4);
    REQUIRE(*find(t, nul1) == 1);
    REQUIRE(*find(t, nul2) == 2);
    REQUIRE(*find(t, "a") == 3);
    REQUIRE(*find(t, huge) == 4);
    REQUIRE(find(t, huge2) == nullptr);
    REQUIRE(find(t, std::string("a\0", 2)) == nullptr);
    REQUIRE(erase(t, nul1));
    REQUIRE(find(t, nul1) == nullptr);
    REQUIRE(*find(t, nul2) == 2);
    REQUIRE(erase(t, huge));
    REQUIRE(t.size() == 2);
}

TEST_CASE("flat key table: growth keeps every key and the load under 7/8",
          "[flat_key_table]") {
    Table t;
    std::map<std::string, int> model;
    for (int i = 0; i < 20000; ++i) {
        const std::string key = "key:" + std::to_string(i);
        insert(t, key, i);
        model[key] = i;
        REQUIRE(t.size() * 8 <= t.slot_count() * 7);
    }
    REQUIRE(t.slot_count() == 32768);  // 20000 > 7/8 of 16384: doubled once more, no further
    require_matches(t, model);
}

TEST_CASE("flat key table: tombstones are reused and cleared, never fill the index",
          "[flat_key_table]") {
    Table t;
    std::map<std::string, int> model;
    for (int i = 0; i < 100; ++i) {
        insert(t, "live" + std::to_string(i), i);
        model["live" + std::to_string(i)] = i;
    }
    REQUIRE(t.slot_count() == 128);
    // Rotating keys: each is inserted then erased, leaving tombstones behind. Lookups must
    // keep terminating, and the index grows at most once (100 live keys are above 7/16 of
    // 128 slots, so the first rebuild doubles); after that, rebuilds only clear tombstones.
    for (int i = 0; i < 50000; ++i) {
        const std::string key = "tmp" + std::to_string(i);
        insert(t, key, -i);
        REQUIRE(*find(t, key) == -i);
        REQUIRE(erase(t, key));
        REQUIRE((t.size() + t.tombstones()) * 8 <= t.slot_count() * 7);
    }
    REQUIRE(t.slot_count() == 256);
    require_matches(t, model);
}

TEST_CASE("flat key table: random operations agree with std::map", "[flat_key_table]") {
    Table t;
    std::map<std::string, int> model;
    std::mt19937 rng(7);
    for (int step = 0; step < 200000; ++step) {
        const std::string key = "k" + std::to_string(rng() % 3000);
        const int* found = find(t, key);
        REQUIRE((found != nullptr) == (model.count(key) == 1));
        switch (rng() % 4) {  // insertions twice as likely: the table stays ~1/3 full
            case 0:
            case 1:
                if (found == nullptr) {
                    insert(t, key, step);
                    model[key] = step;
                }
                break;
            case 2:
                REQUIRE(erase(t, key) == (model.erase(key) == 1));
                break;
            default:
                if (!t.empty()) {
                    const std::size_t index = rng() % t.size();
                    model.erase(t.node(index).key);
                    t.erase_index(index);
                }
        }
    }
    require_matches(t, model);
    const auto even_key = [](const std::string& key) { return (key.back() - '0') % 2 == 0; };
    const std::size_t removed =
        t.erase_if([&](const Table::Node& node) { return even_key(node.key); });
    std::size_t expected = 0;
    for (auto it = model.begin(); it != model.end();) {
        if (even_key(it->first)) {
            it = model.erase(it);
            ++expected;
        } else {
            ++it;
        }
    }
    REQUIRE(removed == expected);
    REQUIRE(removed > 0);
    REQUIRE(t.tombstones() == 0);  // the rebuild after removing cleared them
    require_matches(t, model);
    t.clear();
    REQUIRE(t.size() == 0);
    REQUIRE(find(t, "k1") == nullptr);
    insert(t, "k1", 1);
    REQUIRE(*find(t, "k1") == 1);
}

TEST_CASE("memory store on the flat table: eviction keeps the soonest-expiring out, bound holds",
          "[flat_key_table][memory_store]") {
    using ratelimiter::FixedWindow;
    using ratelimiter::MemoryStore;
    using ratelimiter::Operation;
    using ratelimiter::TokenBucket;
    // One shard of 64 keys; two algorithms share its bound.
    MemoryStore store(64, 1);
    const auto fw = FixedWindow::make_params({5, 60.0});
    const auto tb = TokenBucket::make_params({5, 60.0, std::nullopt});
    for (int i = 0; i < 64; ++i) {
        REQUIRE(store.apply<FixedWindow>("f" + std::to_string(i), 1.0, 1, fw, Operation::consume)
                    .allowed);
    }
    REQUIRE(store.evictions() == 0);
    // The token-bucket table is empty, so the first insertion takes room from the
    // fixed-window table; later ones evict from their own (non-empty) table, whose only
    // entry is the previous token-bucket key.
    for (int i = 0; i < 10; ++i) {
        REQUIRE(store.apply<TokenBucket>("t" + std::to_string(i), 1.0, 1, tb, Operation::consume)
                    .allowed);
        REQUIRE(store.size() == 64);
    }
    REQUIRE(store.evictions() == 10);
    // Every surviving entry is still found (eviction repointed the moved nodes' slots).
    std::size_t fixed_left = 0;
    for (int i = 0; i < 64; ++i) {
        fixed_left += store.snapshot<FixedWindow>("f" + std::to_string(i)).empty() ? 0 : 1;
    }
    REQUIRE(fixed_left == 63);
    for (int i = 0; i < 9; ++i) {
        REQUIRE(store.snapshot<TokenBucket>("t" + std::to_string(i)).empty());
    }
    REQUIRE_FALSE(store.snapshot<TokenBucket>("t9").empty());
}

TEST_CASE("memory store: apply_many equals apply in batch order, repeats included",
          "[flat_key_table][memory_store]") {
    using ratelimiter::Decision;
    using ratelimiter::FixedWindow;
    using ratelimiter::MemoryStore;
    using ratelimiter::Operation;
    MemoryStore batched(1000, 8);
    MemoryStore single(1000, 8);
    const auto p = FixedWindow::make_params({3, 60.0});
    std::vector<std::string> keys;
    for (int i = 0; i < 200; ++i) keys.push_back("k" + std::to_string(i % 37));
    std::vector<std::string_view> views(keys.begin(), keys.end());
    std::vector<Decision> out(keys.size());
    batched.apply_many<FixedWindow>(views.data(), views.size(), 1.0, 1, p, out.data());
    int admitted = 0;
    for (std::size_t i = 0; i < keys.size(); ++i) {
        const Decision d = single.apply<FixedWindow>(keys[i], 1.0, 1, p, Operation::consume);
        REQUIRE(out[i].allowed == d.allowed);
        REQUIRE(out[i].remaining == d.remaining);
        admitted += d.allowed ? 1 : 0;
    }
    REQUIRE(admitted == 37 * 3);
    REQUIRE(batched.size() == 37);
}

TEST_CASE("flat key table: the hash spreads short keys over shards and tells bytes apart",
          "[flat_key_table]") {
    // Every length from 0 to 70 (each of the hash's short and long paths) and every one-byte
    // change of a 20-byte key give distinct hashes.
    const std::string xs(70, 'x');
    std::set<std::uint64_t> by_length;
    for (std::size_t n = 0; n <= xs.size(); ++n) by_length.insert(Table::hash({xs.data(), n}));
    REQUIRE(by_length.size() == xs.size() + 1);
    std::set<std::uint64_t> by_byte;
    for (int c = 0; c < 256; ++c) {
        for (std::size_t pos = 0; pos < 20; ++pos) {
            std::string key(20, 'a');
            key[pos] = static_cast<char>(c);
            by_byte.insert(Table::hash(key));
        }
    }
    REQUIRE(by_byte.size() == 256 * 20 - 19);  // "aaa…a" is made 20 times
    // 64,000 "user:<i>" keys over 64 shards (the store's low-32-bit rule) and over the top
    // 6 bits (the fingerprint's): each within 12% of the mean (±4.8 standard deviations).
    std::vector<int> low(64, 0);
    std::vector<int> high(64, 0);
    for (int i = 0; i < 64'000; ++i) {
        const std::uint64_t h = Table::hash("user:" + std::to_string(i));
        ++low[((h & 0xFFFFFFFFull) * 64) >> 32];
        ++high[h >> 58];
    }
    for (int s = 0; s < 64; ++s) {
        REQUIRE(low[s] > 880);
        REQUIRE(low[s] < 1120);
        REQUIRE(high[s] > 880);
        REQUIRE(high[s] < 1120);
    }
}

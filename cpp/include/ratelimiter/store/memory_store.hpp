// In-process store: a fixed number of shards, each a mutex and one hash table per algorithm.
//
// Expiry: every state knows when it is back to "fresh" (Algo::fresh_at); such entries are
// equivalent to absent ones and are swept from a shard when it grows (amortised O(1)).
//
// Bound and eviction policy: the store never holds more than max_keys entries (summed over
// algorithms). Each shard holds its share of max_keys, so with keys spread by hash eviction
// may start a little before the total reaches max_keys (~99.7% at 1M keys, 64 shards). When a shard at its share of max_keys needs room for a new key it first drops
// its expired entries (at most once per half-shard of insertions, so the cost stays
// amortised); if still full it samples 8 entries of the table being inserted into and evicts
// the one that would expire soonest (least state left to lose). evictions() counts them.
// An evicted key starts fresh on its next request, so eviction can only be lenient: size
// max_keys above the number of keys active within one window to avoid it.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "ratelimiter/algorithm/all.hpp"
#include "ratelimiter/store/apply_step.hpp"
#include "ratelimiter/store/multi.hpp"
#include "ratelimiter/store/operation.hpp"

namespace ratelimiter {

class MemoryStore {
public:
    static constexpr std::size_t kDefaultMaxKeys = 1'000'000;

    explicit MemoryStore(std::size_t max_keys = kDefaultMaxKeys, std::size_t shard_count = 64);
    MemoryStore(const MemoryStore&) = delete;
    MemoryStore& operator=(const MemoryStore&) = delete;

    // Runs one step of Algo on `key` atomically. `key` must already include any prefix.
    // `input`: the algorithm's per-call input, if it takes one (common.hpp StepInputOf).
    template <class Algo>
    Decision apply(std::string_view key, double now, std::int64_t cost,
                   const typename Algo::Params& params, Operation op,
                   const StepInputOf<Algo>& input = {});
    // The same, for a key already held in a std::string (skips copying it for the lookup).
    template <class Algo>
    Decision apply(const std::string& key, double now, std::int64_t cost,
                   const typename Algo::Params& params, Operation op,
                   const StepInputOf<Algo>& input = {});
    // String literals would match both overloads above.
    template <class Algo>
    Decision apply(const char* key, double now, std::int64_t cost,
                   const typename Algo::Params& params, Operation op,
                   const StepInputOf<Algo>& input = {}) {
        return apply<Algo>(std::string_view(key), now, cost, params, op, input);
    }

    // Forgets `key` for Algo. Returns whether it existed.
    template <class Algo>
    bool erase(std::string_view key);

    // Several limits of one key at once (MultiRateLimiter), in one critical section: the
    // shard is chosen by `group` (the limiter key), so all of a key's limits live under one
    // lock; keys[i] is limit i's own entry. See store/multi.hpp for `op`.
    template <class Algo>
    bool apply_multi(std::string_view group, const std::vector<std::string>& keys,
                     const typename Algo::Params* params, const std::int64_t* costs,
                     double now, MultiOp op, Decision* out);
    template <class Algo>
    void erase_multi(std::string_view group, const std::vector<std::string>& keys);

    // Encoded state of `key` for Algo (empty if absent). For tests and debugging.
    template <class Algo>
    std::vector<double> snapshot(std::string_view key);

    std::size_t size() const;
    std::size_t max_keys() const { return max_keys_; }
    std::uint64_t evictions() const;
    // Drops every entry whose state is fresh again at `now`; returns how many.
    std::size_t purge_expired(double now);
    void clear();

private:
    template <class Algo>
    struct Entry {
        using AlgoType = Algo;
        typename Algo::State state;
        double fresh_at;  // cached Algo::fresh_at(state): expiry without knowing Params
    };
    template <class Algo>
    using Table = std::unordered_map<std::string, Entry<Algo>>;

    template <class Tuple>
    struct TablesFor;
    template <class... Algos>
    struct TablesFor<std::tuple<Algos...>> {
        using type = std::tuple<Table<Algos>...>;
    };

    struct Shard {
        std::mutex mutex;
        typename TablesFor<AllAlgorithms>::type tables;
        std::size_t size = 0;
        std::size_t capacity = 0;
        std::size_t inserts_since_purge = 0;
        std::size_t purge_at_size = 0;
        std::uint64_t evictions = 0;
        std::minstd_rand rng{12345};
    };

    Shard& shard_for(std::string_view key) const {
        return *shards_[std::hash<std::string_view>{}(key) % shards_.size()];
    }
    // Makes room for one insertion into table `T` of `shard` (lock held).
    template <class Algo>
    void make_room(Shard& shard, double now);
    template <class Algo>
    static void evict_one(Shard& shard, Table<Algo>& table);
    static std::size_t purge_shard(Shard& shard, double now);

    std::size_t max_keys_;
    std::vector<std::unique_ptr<Shard>> shards_;
};

// The lookup key for a table: a thread-local buffer reused across calls, so finding an
// existing key allocates nothing (C++17 maps cannot look up by string_view).
inline std::string& scratch_key(std::string_view key) {
    thread_local std::string buffer;
    buffer.assign(key.data(), key.size());
    return buffer;
}

template <class Algo>
Decision MemoryStore::apply(std::string_view key, double now, std::int64_t cost,
                            const typename Algo::Params& params, Operation op,
                            const StepInputOf<Algo>& input) {
    return apply<Algo>(scratch_key(key), now, cost, params, op, input);
}

template <class Algo>
Decision MemoryStore::apply(const std::string& lookup, double now, std::int64_t cost,
                            const typename Algo::Params& params, Operation op,
                            const StepInputOf<Algo>& input) {
    Shard& shard = shard_for(lookup);
    std::lock_guard<std::mutex> lock(shard.mutex);
    auto& table = std::get<Table<Algo>>(shard.tables);
    auto it = table.find(lookup);
    if (it != table.end()) {
        return apply_step<Algo>(it->second.state, now, cost, params, op,
                                [&](const auto&, double fresh_at) { it->second.fresh_at = fresh_at; },
                                input);
    }
    auto state = Algo::fresh(now, params);
    // A rejected first request leaves a fresh state: nothing worth storing.
    return apply_step<Algo>(state, now, cost, params, op, [&](const auto&, double fresh_at) {
        make_room<Algo>(shard, now);
        table.emplace(lookup, Entry<Algo>{std::move(state), fresh_at});
        ++shard.size;
    }, input);
}

template <class Algo>
bool MemoryStore::apply_multi(std::string_view group, const std::vector<std::string>& keys,
                              const typename Algo::Params* params, const std::int64_t* costs,
                              double now, MultiOp op, Decision* out) {
    const std::size_t n = keys.size();
    Shard& shard = shard_for(group);
    std::lock_guard<std::mutex> lock(shard.mutex);
    auto& table = std::get<Table<Algo>>(shard.tables);
    thread_local std::vector<typename Algo::State> states;
    states.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
        auto it = table.find(keys[i]);
        states[i] = it == table.end() ? Algo::fresh(now, params[i]) : it->second.state;
    }
    return ratelimiter::apply_multi<Algo>(
        states.data(), params, costs, n, now, op, out,
        [&](std::size_t i, const typename Algo::State& state, double fresh_at) {
            auto it = table.find(keys[i]);
            if (it != table.end()) {
                it->second = Entry<Algo>{state, fresh_at};
                return;
            }
            make_room<Algo>(shard, now);
            table.emplace(keys[i], Entry<Algo>{state, fresh_at});
            ++shard.size;
        });
}

template <class Algo>
void MemoryStore::erase_multi(std::string_view group, const std::vector<std::string>& keys) {
    Shard& shard = shard_for(group);
    std::lock_guard<std::mutex> lock(shard.mutex);
    auto& table = std::get<Table<Algo>>(shard.tables);
    for (const std::string& key : keys) shard.size -= table.erase(key);
}

template <class Algo>
bool MemoryStore::erase(std::string_view key) {
    Shard& shard = shard_for(key);
    std::lock_guard<std::mutex> lock(shard.mutex);
    auto& table = std::get<Table<Algo>>(shard.tables);
    const bool erased = table.erase(scratch_key(key)) > 0;
    if (erased) --shard.size;
    return erased;
}

template <class Algo>
std::vector<double> MemoryStore::snapshot(std::string_view key) {
    Shard& shard = shard_for(key);
    std::lock_guard<std::mutex> lock(shard.mutex);
    auto& table = std::get<Table<Algo>>(shard.tables);
    std::vector<double> out;
    auto it = table.find(scratch_key(key));
    if (it != table.end()) Algo::encode(it->second.state, out);
    return out;
}

template <class Algo>
void MemoryStore::make_room(Shard& shard, double now) {
    ++shard.inserts_since_purge;
    const bool grew = shard.size >= shard.purge_at_size;
    const bool full = shard.size >= shard.capacity;
    // Purge when the shard doubled since the last purge, or when full and enough insertions
    // happened since the last purge to pay for the scan.
    if (grew || (full && shard.inserts_since_purge * 2 >= shard.capacity)) {
        purge_shard(shard, now);
        shard.inserts_since_purge = 0;
        shard.purge_at_size = std::max<std::size_t>(64, shard.size * 2);
    }
    auto& table = std::get<Table<Algo>>(shard.tables);
    while (shard.size >= shard.capacity && shard.size > 0) {
        if (!table.empty()) {
            evict_one<Algo>(shard, table);
        } else {
            // Full with other algorithms' keys: evict from the largest other table.
            std::apply(
                [&](auto&... tables) {
                    std::size_t largest = 0;
                    ((largest = std::max(largest, tables.size())), ...);
                    bool done = false;
                    auto try_evict = [&](auto& t) {
                        if (done || t.size() != largest) return;
                        using T = std::decay_t<decltype(t)>;
                        using A = typename T::mapped_type::AlgoType;
                        evict_one<A>(shard, t);
                        done = true;
                    };
                    (try_evict(tables), ...);
                },
                shard.tables);
        }
    }
}

template <class Algo>
void MemoryStore::evict_one(Shard& shard, Table<Algo>& table) {
    constexpr int kSamples = 8;
    auto victim = table.end();
    const std::size_t buckets = table.bucket_count();
    int seen = 0;
    // Sample entries from random buckets; give up after a bounded number of empty buckets.
    for (int probes = 0; seen < kSamples && probes < 64 * kSamples; ++probes) {
        const std::size_t b = shard.rng() % buckets;
        for (auto local = table.begin(b); local != table.end(b) && seen < kSamples; ++local) {
            ++seen;
            auto it = table.find(local->first);
            if (victim == table.end() || it->second.fresh_at < victim->second.fresh_at) victim = it;
        }
    }
    if (victim == table.end()) victim = table.begin();
    table.erase(victim);
    --shard.size;
    ++shard.evictions;
}

}  // namespace ratelimiter

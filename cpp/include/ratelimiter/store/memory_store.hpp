// In-process store: a fixed number of shards, each a mutex and one flat hash table per
// algorithm (store/flat_key_table.hpp). A key is hashed once per decision: the hash picks
// the shard and then the slot.
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
#include <vector>

#include "ratelimiter/algorithm/all.hpp"
#include "ratelimiter/store/apply_step.hpp"
#include "ratelimiter/store/flat_key_table.hpp"
#include "ratelimiter/store/multi.hpp"
#include "ratelimiter/store/operation.hpp"

// A batch's per-shard loop is flattened (GCC/Clang): the lookup, the algorithm's rebase, step and
// expiry, and the sink are inlined into one body, which measured ~30 -> ~23 ns per batched
// decision (calls, spills and the Decision's copies between them were a quarter of it).
// The cold paths it reaches (inserting a new key: make_room, purge, eviction) are
// RATELIMITER_NOINLINE, so they stay one shared call instead of being copied into it.
#if defined(__GNUC__) || defined(__clang__)
#define RATELIMITER_FLATTEN __attribute__((flatten))
#define RATELIMITER_NOINLINE __attribute__((noinline))
#else
#define RATELIMITER_FLATTEN
#define RATELIMITER_NOINLINE
#endif

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

    // Where a batch's decisions go: the whole Decision per key, or (when `decisions` is
    // null) only `allowed`, a byte per key, for a caller that needs nothing else (no
    // 80-byte Decision copied per key).
    struct BatchOut {
        Decision* decisions = nullptr;
        unsigned char* allowed = nullptr;
    };
    // Consumes `cost` for each of keys[0..n) at one `now`, as n apply() calls in that order
    // would, but taking each shard's lock once: keys are grouped by shard (a stable counting
    // sort, so repeats of one key are decided in batch order). Each key is atomic on its own;
    // the batch as a whole is not (another thread may decide between two shards' groups).
    // No per-call input: a caller whose algorithm needs one decides key by key.
    template <class Algo>
    void apply_many(const std::string_view* keys, std::size_t n, double now, std::int64_t cost,
                    const typename Algo::Params& params, BatchOut out);
    template <class Algo>
    void apply_many(const std::string_view* keys, std::size_t n, double now, std::int64_t cost,
                    const typename Algo::Params& params, Decision* out) {
        apply_many<Algo>(keys, n, now, cost, params, BatchOut{out, nullptr});
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
    using Table = FlatKeyTable<Entry<Algo>>;

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

    static std::uint64_t hash(std::string_view key) { return FlatKeyTable<int>::hash(key); }
    // The shard of hash h: its low 32 bits scaled to [0, shard count) (a multiply, not a
    // 64-bit division). The table's fingerprint uses the high 32 bits, so a shard's keys do
    // not share fingerprint bits.
    std::size_t shard_index(std::uint64_t h) const {
        return static_cast<std::size_t>(((h & 0xFFFFFFFFull) * shards_.size()) >> 32);
    }
    Shard& shard_for(std::uint64_t h) const { return *shards_[shard_index(h)]; }
    Shard& shard_for(std::string_view key) const { return shard_for(hash(key)); }
    // One step with the shard's lock held.
    template <class Algo>
    Decision apply_locked(Shard& shard, std::string_view key, std::uint64_t h, double now,
                          std::int64_t cost, const typename Algo::Params& params, Operation op,
                          const StepInputOf<Algo>& input = {});
    // apply_locked's path for a key absent from the table (cold: out of line).
    template <class Algo>
    RATELIMITER_NOINLINE Decision apply_absent(Shard& shard, std::string_view key,
                                               std::uint64_t h, double now, std::int64_t cost,
                                               const typename Algo::Params& params,
                                               Operation op, const StepInputOf<Algo>& input);
    // A batch's keys order[begin..end), all in `shard` (lock held), decided in that order.
    template <class Algo, bool kOnlyAllowed>
    RATELIMITER_FLATTEN RATELIMITER_NOINLINE void apply_group(Shard& shard, const std::string_view* keys,
                                         const std::uint64_t* hashes, const std::uint32_t* order,
                                         std::uint32_t begin, std::uint32_t end, double now,
                                         std::int64_t cost, const typename Algo::Params& params,
                                         BatchOut out);
    // Makes room for one insertion into table `T` of `shard` (lock held).
    template <class Algo>
    void make_room(Shard& shard, double now);
    template <class Algo>
    static void evict_one(Shard& shard, Table<Algo>& table);
    static std::size_t purge_shard(Shard& shard, double now);

    std::size_t max_keys_;
    std::vector<std::unique_ptr<Shard>> shards_;
};

template <class Algo>
Decision MemoryStore::apply(std::string_view key, double now, std::int64_t cost,
                            const typename Algo::Params& params, Operation op,
                            const StepInputOf<Algo>& input) {
    const std::uint64_t h = hash(key);
    Shard& shard = shard_for(h);
    std::lock_guard<std::mutex> lock(shard.mutex);
    return apply_locked<Algo>(shard, key, h, now, cost, params, op, input);
}

template <class Algo>
Decision MemoryStore::apply_locked(Shard& shard, std::string_view key, std::uint64_t h,
                                   double now, std::int64_t cost,
                                   const typename Algo::Params& params, Operation op,
                                   const StepInputOf<Algo>& input) {
    auto& table = std::get<Table<Algo>>(shard.tables);
    if (Entry<Algo>* entry = table.find(key, h)) {
        return apply_step<Algo>(
            entry->state, now, cost, params, op,
            [&](const auto&, double fresh_at) { entry->fresh_at = fresh_at; }, input);
    }
    return apply_absent<Algo>(shard, key, h, now, cost, params, op, input);
}

template <class Algo>
Decision MemoryStore::apply_absent(Shard& shard, std::string_view key, std::uint64_t h,
                                   double now, std::int64_t cost,
                                   const typename Algo::Params& params, Operation op,
                                   const StepInputOf<Algo>& input) {
    auto& table = std::get<Table<Algo>>(shard.tables);
    auto state = Algo::fresh(now, params);
    // A rejected first request leaves a fresh state: nothing worth storing.
    return apply_step<Algo>(state, now, cost, params, op, [&](const auto&, double fresh_at) {
        make_room<Algo>(shard, now);
        table.insert(key, h, Entry<Algo>{std::move(state), fresh_at});
        ++shard.size;
    }, input);
}

template <class Algo>
void MemoryStore::apply_many(const std::string_view* keys, std::size_t n, double now,
                             std::int64_t cost, const typename Algo::Params& params,
                             BatchOut out) {
    const std::size_t shard_count = shards_.size();
    // Plain locals (one allocation each per batch): a thread_local in a shared library
    // costs a __tls_get_addr call per access.
    std::vector<std::uint64_t> hashes(n);
    std::vector<std::uint32_t> shard_of(n);
    std::vector<std::uint32_t> order(n);                   // key indices grouped by shard
    std::vector<std::uint32_t> starts(shard_count + 1, 0);  // shard s: order[starts[s]..)
    for (std::size_t i = 0; i < n; ++i) {
        hashes[i] = hash(keys[i]);
        shard_of[i] = static_cast<std::uint32_t>(shard_index(hashes[i]));
        ++starts[shard_of[i] + 1];
    }
    for (std::size_t s = 0; s < shard_count; ++s) starts[s + 1] += starts[s];
    {
        std::vector<std::uint32_t> fill(starts.begin(), starts.end() - 1);
        for (std::size_t i = 0; i < n; ++i) order[fill[shard_of[i]]++] = static_cast<std::uint32_t>(i);
    }
    const auto decide = [&](std::size_t s) {
        if (out.decisions != nullptr) {
            apply_group<Algo, false>(*shards_[s], keys, hashes.data(), order.data(), starts[s],
                                     starts[s + 1], now, cost, params, out);
        } else {
            apply_group<Algo, true>(*shards_[s], keys, hashes.data(), order.data(), starts[s],
                                    starts[s + 1], now, cost, params, out);
        }
    };
    // Concurrent batches would otherwise sweep the shards in the same order, one right
    // behind the other on every lock. So each batch starts at its first key's shard, and a
    // busy shard is skipped (try_lock) and waited for after the others.
    std::vector<std::uint32_t> busy;
    const std::size_t first = n == 0 ? 0 : shard_of[0];
    for (std::size_t k = 0; k < shard_count; ++k) {
        const std::size_t s = (first + k) % shard_count;
        if (starts[s] == starts[s + 1]) continue;
        std::unique_lock<std::mutex> lock(shards_[s]->mutex, std::try_to_lock);
        if (!lock.owns_lock()) {
            busy.push_back(static_cast<std::uint32_t>(s));
            continue;
        }
        decide(s);
    }
    for (const std::uint32_t s : busy) {
        std::lock_guard<std::mutex> lock(shards_[s]->mutex);
        decide(s);
    }
}

// Flattened (see RATELIMITER_FLATTEN), and out of line so that the two places apply_many
// calls it share one copy of the inlined body. kOnlyAllowed: out.allowed, else out.decisions.
template <class Algo, bool kOnlyAllowed>
void MemoryStore::apply_group(Shard& shard, const std::string_view* keys,
                              const std::uint64_t* hashes, const std::uint32_t* order,
                              std::uint32_t begin, std::uint32_t end, double now,
                              std::int64_t cost, const typename Algo::Params& params,
                              BatchOut out) {
    const auto& table = std::get<Table<Algo>>(shard.tables);
    // The group's keys are known, so their cache misses can overlap instead of each
    // lookup waiting for its own two: every slot is requested up front, and each key's
    // node kAhead keys before it is decided (its slot has arrived by then).
    constexpr std::uint32_t kAhead = 4;
    for (std::uint32_t j = begin; j < end; ++j) table.prefetch_slot(hashes[order[j]]);
    for (std::uint32_t j = begin; j < end && j < begin + kAhead; ++j) {
        table.prefetch_node(hashes[order[j]]);
    }
    for (std::uint32_t j = begin; j < end; ++j) {
        if (j + kAhead < end) table.prefetch_node(hashes[order[j + kAhead]]);
        const std::uint32_t i = order[j];
        if constexpr (kOnlyAllowed) {
            // The rest of the Decision is dead here, so the compiler drops computing it.
            out.allowed[i] = apply_locked<Algo>(shard, keys[i], hashes[i], now, cost, params,
                                                Operation::consume)
                                 .allowed;
        } else {
            out.decisions[i] = apply_locked<Algo>(shard, keys[i], hashes[i], now, cost, params,
                                                  Operation::consume);
        }
    }
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
    thread_local std::vector<std::uint64_t> hashes;
    states.resize(n);
    hashes.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
        hashes[i] = hash(keys[i]);
        const Entry<Algo>* entry = table.find(keys[i], hashes[i]);
        states[i] = entry == nullptr ? Algo::fresh(now, params[i]) : entry->state;
    }
    return ratelimiter::apply_multi<Algo>(
        states.data(), params, costs, n, now, op, out,
        [&](std::size_t i, const typename Algo::State& state, double fresh_at) {
            if (Entry<Algo>* entry = table.find(keys[i], hashes[i])) {
                *entry = Entry<Algo>{state, fresh_at};
                return;
            }
            make_room<Algo>(shard, now);
            table.insert(keys[i], hashes[i], Entry<Algo>{state, fresh_at});
            ++shard.size;
        });
}

template <class Algo>
void MemoryStore::erase_multi(std::string_view group, const std::vector<std::string>& keys) {
    Shard& shard = shard_for(group);
    std::lock_guard<std::mutex> lock(shard.mutex);
    auto& table = std::get<Table<Algo>>(shard.tables);
    for (const std::string& key : keys) shard.size -= table.erase(key, hash(key)) ? 1 : 0;
}

template <class Algo>
bool MemoryStore::erase(std::string_view key) {
    const std::uint64_t h = hash(key);
    Shard& shard = shard_for(h);
    std::lock_guard<std::mutex> lock(shard.mutex);
    auto& table = std::get<Table<Algo>>(shard.tables);
    const bool erased = table.erase(key, h);
    if (erased) --shard.size;
    return erased;
}

template <class Algo>
std::vector<double> MemoryStore::snapshot(std::string_view key) {
    const std::uint64_t h = hash(key);
    Shard& shard = shard_for(h);
    std::lock_guard<std::mutex> lock(shard.mutex);
    auto& table = std::get<Table<Algo>>(shard.tables);
    std::vector<double> out;
    if (const Entry<Algo>* entry = table.find(key, h)) Algo::encode(entry->state, out);
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
                        using A = typename T::value_type::AlgoType;
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
    // The nodes are dense, so sampling is a random index: uniform over the shard's keys.
    constexpr int kSamples = 8;
    std::size_t victim = shard.rng() % table.size();
    for (int i = 1; i < kSamples; ++i) {
        const std::size_t candidate = shard.rng() % table.size();
        if (table.node(candidate).value.fresh_at < table.node(victim).value.fresh_at) {
            victim = candidate;
        }
    }
    table.erase_index(victim);
    --shard.size;
    ++shard.evictions;
}

}  // namespace ratelimiter

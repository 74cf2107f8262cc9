// Rejection cache: rejections answered without a Redis round trip (issue 15, item 3).
//
// When Redis rejects a request, the script's reply says how long the key stays over its
// limit for that cost (retry_after). Until then, a request of at least that cost on the same
// key, algorithm and parameters is rejected by Redis too, so it is answered here instead:
// under an attack from a few hot keys, that is the traffic a rate limiter exists to absorb.
//
// Why a cached answer is one Redis would also give:
// - A rejection never changes a key's state (every algorithm's step), so the requests the
//   cache absorbs would not have changed what Redis holds either.
// - Admission is monotone in cost and, without a reset, in time: a cost c' >= c cannot be
//   admitted before cost c can, and other requests (from any process) only consume more.
//   So an entry recorded for cost c answers only requests of cost >= c, and only until
//   the instant cost c could next be admitted (their retry_after is then that of cost c: a
//   lower bound of the true wait, never longer).
// - The expiry is that instant minus a margin covering the steps' tolerance (kEps units,
//   converted to time by the slowest rate among the parameters), floating-point rounding of
//   `now`, the microsecond resolution of Redis TIME and clock-rate drift (server time).
// - Time: in client-clock mode (the script's `now` is ARGV[1]) an entry answers only while
//   the caller's `now` lies in [recorded now, expiry) — a clock that went backwards misses
//   and asks Redis — and, independently, only until the monotonic clock passes the same
//   wait, so a wall clock that stands still or jumps back never extends an entry. In
//   server-time mode (ARGV[1] empty) only the monotonic clock counts, started when the
//   request was sent (Redis read its TIME after that).
// - reset() in this process invalidates the key (and any reply still in flight from before
//   the reset is not recorded: see ticket()). Another process's reset is not seen: this
//   process keeps rejecting that key for at most the retry_after it was told.
//
// An entry answers with the decision Redis gave, its waits reduced by the time since; an
// admission on the key in this process drops the entry (the key holds less now).
//
// Not cached: the adaptive algorithm (a rejection's retry_after may be longer than needed:
// "wait for the load sensor to empty" while a partly emptied sensor may admit sooner, so it
// does not bound the next admission), peeks, admissions, on_error fallbacks, insufficient
// capacity (cost above the algorithm's capacity: rejected forever, yet it says nothing
// about smaller costs).
//
// Memory: at most max_entries entries in all, over up to kShards independently locked
// shards; a full shard drops its oldest entry (counted in `evictions`).
//
// Thread-safety: every public method may be called from any thread concurrently.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ratelimiter/algorithm/all.hpp"
#include "ratelimiter/algorithm/common.hpp"
#include "ratelimiter/result.hpp"

namespace ratelimiter {

struct RejectionCacheCounters {
    std::uint64_t hits = 0;       // requests answered by the cache (not sent to Redis)
    std::uint64_t recorded = 0;   // rejections from Redis stored
    std::uint64_t evictions = 0;  // entries dropped to stay within max_entries
    std::size_t entries = 0;      // entries held now (expired ones included until touched)
};

class RejectionCache {
public:
    static constexpr std::size_t kShards = 16;
    static constexpr std::size_t kDefaultMaxEntries = 10000;

    explicit RejectionCache(std::size_t max_entries = kDefaultMaxEntries)
        : max_entries_(max_entries == 0 ? 1 : max_entries),
          shard_count_(std::min(kShards, max_entries_)),
          shards_(shard_count_) {
        for (std::size_t i = 0; i < shard_count_; ++i) {
            shards_[i].capacity = max_entries_ / shard_count_ + (i < max_entries_ % shard_count_);
        }
    }

    // Seconds on the monotonic clock: the clock every mono_* argument below is read from.
    static double monotonic_now() {
        return std::chrono::duration<double>(
                   std::chrono::steady_clock::now().time_since_epoch())
            .count();
    }

    // An invalidation stamp of `storage_key`, read before its request is sent and given
    // back to record(): a reply that was in flight across a reset() is not recorded.
    std::uint64_t ticket(std::string_view storage_key) const {
        return shard_of(storage_key).epoch.load(std::memory_order_acquire);
    }

    // Whether a request with script arguments `args` (RedisStore::append_call_args, then
    // append_params) on `storage_key` is a known rejection at `mono_now`. If so `out` is the
    // answer: the recorded decision with retry_after/reset_after reduced by the time since,
    // `cached` set.
    bool lookup(std::string_view storage_key, AlgorithmId algorithm,
                const std::vector<std::string>& args, double mono_now, Decision& out) {
        Call call;
        if (!cacheable(algorithm) || !parse_call(args, call) || !call.consume) return false;
        Shard& shard = shard_of(storage_key);
        std::lock_guard<std::mutex> lock(shard.mutex);
        const auto found = shard.index.find(storage_key);
        if (found == shard.index.end()) return false;
        const Entry& e = *found->second;
        if (call.cost < e.cost || e.server_time != call.server_time || !same_params(e, args)) {
            return false;
        }
        if (mono_now >= e.mono_until || mono_now < e.mono_sent ||
            (!call.server_time && (call.now < e.now || call.now >= e.now_until))) {
            drop(shard, found->second);  // expired, or a clock went backwards: ask Redis
            return false;
        }
        const double elapsed = call.server_time ? mono_now - e.mono_sent : call.now - e.now;
        out = e.decision;
        out.retry_after = std::max(0.0, e.decision.retry_after - elapsed);
        out.reset_after = std::max(0.0, e.decision.reset_after - elapsed);
        out.cached = true;
        hits_.fetch_add(1, std::memory_order_relaxed);
        return true;
    }

    // Stores Redis's answer `d` to the request `args` on `storage_key`, sent at `mono_sent`
    // with invalidation stamp `ticket`, if it is a rejection worth caching. An admission
    // (of a smaller cost) drops the key's entry: its remaining and waits are out of date.
    void record(std::string_view storage_key, AlgorithmId algorithm,
                const std::vector<std::string>& args, const Decision& d, double mono_sent,
                std::uint64_t ticket) {
        Call call;
        if (!cacheable(algorithm) || !parse_call(args, call) || !call.consume || d.fallback ||
            d.cached) {
            return;
        }
        Shard& shard = shard_of(storage_key);
        if (d.allowed || d.insufficient_capacity) {
            if (!d.allowed) return;
            std::lock_guard<std::mutex> lock(shard.mutex);
            const auto found = shard.index.find(storage_key);
            if (found != shard.index.end()) drop(shard, found->second);
            return;
        }
        const double wait = d.retry_after;
        const double margin = safety_margin(args, call, wait);
        if (!std::isfinite(wait) || !(wait > margin) || !std::isfinite(mono_sent)) return;

        Entry e;
        e.key.assign(storage_key.data(), storage_key.size());
        for (std::size_t i = 4; i < args.size(); ++i) {
            e.params += args[i];
            e.params += '\x1f';
        }
        e.server_time = call.server_time;
        e.cost = call.cost;
        e.mono_sent = mono_sent;
        e.mono_until = mono_sent + wait - margin;
        e.now = call.now;
        e.now_until = call.now + wait - margin;
        e.decision = d;

        std::lock_guard<std::mutex> lock(shard.mutex);
        if (shard.epoch.load(std::memory_order_relaxed) != ticket) return;  // reset meanwhile
        const auto found = shard.index.find(storage_key);
        if (found != shard.index.end()) drop(shard, found->second);
        while (shard.order.size() >= shard.capacity) {
            drop(shard, shard.order.begin());
            evictions_.fetch_add(1, std::memory_order_relaxed);
        }
        shard.order.push_back(std::move(e));
        const auto it = std::prev(shard.order.end());
        shard.index.emplace(std::string_view(it->key), it);
        recorded_.fetch_add(1, std::memory_order_relaxed);
    }

    // Forgets `storage_key` (reset in this process); replies in flight are not recorded.
    void invalidate(std::string_view storage_key) {
        Shard& shard = shard_of(storage_key);
        std::lock_guard<std::mutex> lock(shard.mutex);
        shard.epoch.fetch_add(1, std::memory_order_acq_rel);
        const auto found = shard.index.find(storage_key);
        if (found != shard.index.end()) drop(shard, found->second);
    }

    void clear() {
        for (Shard& shard : shards_) {
            std::lock_guard<std::mutex> lock(shard.mutex);
            shard.epoch.fetch_add(1, std::memory_order_acq_rel);
            shard.index.clear();
            shard.order.clear();
        }
    }

    RejectionCacheCounters counters() const {
        RejectionCacheCounters c;
        c.hits = hits_.load(std::memory_order_relaxed);
        c.recorded = recorded_.load(std::memory_order_relaxed);
        c.evictions = evictions_.load(std::memory_order_relaxed);
        for (const Shard& shard : shards_) {
            std::lock_guard<std::mutex> lock(shard.mutex);
            c.entries += shard.order.size();
        }
        return c;
    }

    std::size_t max_entries() const { return max_entries_; }

    // Whether `algorithm`'s rejections bound its next admission (see the top of this file).
    static constexpr bool cacheable(AlgorithmId algorithm) { return algorithm != Adaptive::id; }

private:
    struct Entry {
        std::string key;     // the storage key (the index's string_view points here)
        std::string params;  // ARGV[5..], each followed by '\x1f'
        bool server_time = true;
        std::int64_t cost = 0;  // the rejected cost: the entry answers costs >= this
        double mono_sent = 0.0;
        double mono_until = 0.0;
        double now = 0.0;  // client-clock mode: the request's now, and the expiry on it
        double now_until = 0.0;
        Decision decision;  // as Redis gave it at (mono_sent, now)
    };
    using Order = std::list<Entry>;  // oldest first; nodes never move (stable key views)

    struct Shard {
        mutable std::mutex mutex;
        Order order;
        std::unordered_map<std::string_view, Order::iterator> index;
        std::size_t capacity = 1;
        std::atomic<std::uint64_t> epoch{0};
    };

    // The parts of ARGV the cache reads (cpp/lua/_common.lua): now, cost, op.
    struct Call {
        bool server_time = true;
        double now = 0.0;
        std::int64_t cost = 0;
        bool consume = false;
    };

    static bool parse_call(const std::vector<std::string>& args, Call& call) {
        if (args.size() < 4) return false;
        call.consume = args[2] == "consume";
        call.server_time = args[0].empty();
        if (!call.server_time) {
            char* end = nullptr;
            call.now = std::strtod(args[0].c_str(), &end);
            if (end != args[0].c_str() + args[0].size() || !std::isfinite(call.now)) return false;
        }
        char* end = nullptr;
        const long long cost = std::strtoll(args[1].c_str(), &end, 10);
        if (args[1].empty() || end != args[1].c_str() + args[1].size() || cost < 1) return false;
        call.cost = cost;
        return true;
    }

    static bool same_params(const Entry& e, const std::vector<std::string>& args) {
        std::size_t at = 0;
        for (std::size_t i = 4; i < args.size(); ++i) {
            const std::string& a = args[i];
            if (e.params.size() < at + a.size() + 1 ||
                e.params.compare(at, a.size(), a) != 0 || e.params[at + a.size()] != '\x1f') {
                return false;
            }
            at += a.size() + 1;
        }
        return at == e.params.size();
    }

    // How much earlier than `wait` the entry expires, so that Redis, deciding with its own
    // tolerance and rounding, could not yet admit the request at the expiry.
    // - kEps units (the steps' comparison tolerance) take kEps * T seconds to accrue, T being
    //   the slowest time per unit the parameters allow: every algorithm's parameters are
    //   counts, windows, rates or intervals, so max(p, 1/p) over them bounds it.
    // - 16 ulps of the caller's `now` (client clock), or 1e-3 of the wait for a server's
    //   clock running faster than ours (NTP slews at most 5e-4), and 10 us for TIME's
    //   microsecond resolution and rounding of small numbers.
    static double safety_margin(const std::vector<std::string>& args, const Call& call,
                                double wait) {
        double scale = 1.0;
        for (std::size_t i = 4; i < args.size(); ++i) {
            const double p = std::strtod(args[i].c_str(), nullptr);
            if (std::isfinite(p) && p > 0.0) scale = std::max({scale, p, 1.0 / p});
        }
        constexpr double kUlp = 2.220446049250313e-16;  // DBL_EPSILON
        const double rounding =
            call.server_time ? 1e-3 * wait : 16.0 * std::abs(call.now) * kUlp;
        return 1e-5 + kEps * scale + rounding;
    }

    Shard& shard_of(std::string_view key) const {
        return shards_[std::hash<std::string_view>{}(key) % shard_count_];
    }

    static void drop(Shard& shard, Order::iterator it) {
        shard.index.erase(std::string_view(it->key));
        shard.order.erase(it);
    }

    std::size_t max_entries_;
    std::size_t shard_count_;
    mutable std::vector<Shard> shards_;
    std::atomic<std::uint64_t> hits_{0};
    std::atomic<std::uint64_t> recorded_{0};
    std::atomic<std::uint64_t> evictions_{0};
};

}  // namespace ratelimiter

// Sliding window counter: the previous window's count, weighted by how much of it still
// overlaps (now − window, now], plus the current window's count. O(1) state; approximate.
// The arithmetic is specified in docs/ALGORITHMS.md ("Sliding window counter"); shape as
// token_bucket.hpp.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

#include "ratelimiter/algorithm/common.hpp"
#include "ratelimiter/algorithm/window.hpp"

namespace ratelimiter {

struct SlidingWindowCounter {
    // Stable: stores index their tables by it and SQLite rows are named by it.
    static constexpr AlgorithmId id{2};
    static constexpr const char* name = "sliding_window_counter";
    // Decision::meta, in order: the names (and kinds) of result.metadata.
    static constexpr std::array<MetaField, 4> kMetadata{
        {{"curr_count", MetaKind::count}, {"prev_count", MetaKind::count},
         {"effective_count", MetaKind::number}, {"weight_prev", MetaKind::number}}};
    static constexpr std::size_t kStateSize = 4;
    static constexpr std::size_t kLegacyStateSize = 3;  // {k, curr, prev}: the window in effect

    struct Spec {
        std::int64_t limit = 0;
        double window = 0.0;
    };
    struct Params {
        std::int64_t limit = 0;
        double window = 0.0;
    };
    using State = WindowPair;  // {k, curr, prev, window}

    static Params make_params(const Spec& spec) {
        require_positive_count(spec.limit, "limit");
        require_window(spec.window);
        return Params{spec.limit, spec.window};
    }

    static State fresh(double now, const Params& p) { return State::fresh(now, p.window); }

    static Decision step(State& s, double now, std::int64_t cost, const Params& p) {
        return evaluate(s, now, cost, p, true);
    }

    static Decision peek(const State& s, double now, const Params& p) {
        State copy = s;
        return evaluate(copy, now, 1, p, false);
    }

    static double fresh_at(const State& s, const Params& p) {
        return (s.k + 2.0) * (s.window == 0.0 ? p.window : s.window);
    }

    static void encode(const State& s, std::vector<double>& out) {
        out.assign({s.k, s.curr, s.prev, s.window});
    }
    // Any values are accepted here; WindowPair::sanitize handles what a step could not have
    // written (it needs now and the params).
    static bool decode(const double* data, std::size_t n, State& s) {
        if (n == kLegacyStateSize) {
            s = State{data[0], data[1], data[2], 0.0};
            return true;
        }
        if (n != kStateSize) return false;
        s = State{data[0], data[1], data[2], data[3]};
        return true;
    }

    // A clock glitch (WindowPair::glitched), sanitized and reported: as TokenBucket::rebase.
    static bool rebase(State& s, double now, const Params& p) {
        if (!s.glitched(now, p.window)) return false;
        s.sanitize(now, p.window);
        return true;
    }

private:
    static Decision evaluate(State& s, double now, std::int64_t cost, const Params& p,
                             bool consume) {
        State next = s;
        next.sanitize(now, p.window);
        const double w = next.window;  // the grid the pair was written on (usually p.window)
        next.roll(now, w);
        const double weight_prev = next.weight_prev(now, w);
        double effective = next.prev * weight_prev + next.curr;
        const double limit = static_cast<double>(p.limit);
        const double need = static_cast<double>(cost);

        Decision d;
        if (need > limit) {
            d = insufficient_capacity(0, 0.0);
        } else if (effective + need <= limit + kEps) {
            d.allowed = true;
            if (consume) {
                next.migrate(now, p.window);
                next.curr += need;
                effective += need;
            }
        } else {
            d.retry_after = next.wait_for(need, limit, now, w);
        }
        d.remaining = floor_count(limit - effective);
        if (next.curr > 0.0) {
            d.reset_after = (next.k + 2.0) * next.window - now;
        } else if (next.prev > 0.0) {
            d.reset_after = (next.k + 1.0) * next.window - now;
        } else {
            d.reset_after = 0.0;
        }
        d.meta[0] = next.curr;
        d.meta[1] = next.prev;
        d.meta[2] = effective;
        d.meta[3] = weight_prev;
        if (d.allowed && consume) s = next;
        return d;
    }
};

}  // namespace ratelimiter

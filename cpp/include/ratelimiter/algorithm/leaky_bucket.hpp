// Leaky bucket as a meter: each admitted unit adds 1 to a level that drains at `rate` per
// second; admitted iff the level stays within `limit`.
// The arithmetic is specified in docs/ALGORITHMS.md ("Leaky bucket"); shape as token_bucket.hpp.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "ratelimiter/algorithm/common.hpp"

namespace ratelimiter {

struct LeakyBucket {
    // Stable: stores index their tables by it and SQLite rows are named by it.
    static constexpr AlgorithmId id{4};
    static constexpr const char* name = "leaky_bucket";
    // Decision::meta, in order: the names (and kinds) of result.metadata.
    static constexpr std::array<MetaField, 2> kMetadata{
        {{"level", MetaKind::number}, {"leak_rate", MetaKind::number}}};
    static constexpr std::size_t kStateSize = 2;

    struct Spec {
        std::int64_t limit = 0;
        double window = 0.0;
        std::optional<double> leak_rate;  // units per second; default limit / window
    };
    struct Params {
        std::int64_t limit = 0;
        double capacity = 0.0;
        double rate = 0.0;
    };
    struct State {
        double level = 0.0;
        double last = 0.0;
    };

    static Params make_params(const Spec& spec) {
        require_positive_count(spec.limit, "limit");
        require_window(spec.window);
        Params p;
        p.limit = spec.limit;
        p.capacity = static_cast<double>(spec.limit);
        if (spec.leak_rate) {
            require_positive_finite(*spec.leak_rate, "leak_rate");
            p.rate = *spec.leak_rate;
        } else {
            p.rate = p.capacity / spec.window;
            require_positive_finite(p.rate, "limit / window");
        }
        return p;
    }

    static State fresh(double now, const Params& /*p*/) { return State{0.0, now}; }

    static Decision step(State& s, double now, std::int64_t cost, const Params& p) {
        return evaluate(s, now, cost, p, true);
    }

    static Decision peek(const State& s, double now, const Params& p) {
        State copy = s;
        return evaluate(copy, now, 1, p, false);
    }

    static double fresh_at(const State& s, const Params& p) { return s.last + s.level / p.rate; }

    static void encode(const State& s, std::vector<double>& out) {
        out.assign({s.level, s.last});
    }
    static bool decode(const double* data, std::size_t n, State& s) {
        if (n != kStateSize) return false;
        s = State{data[0], data[1]};
        return true;
    }

    // Highest level a state may hold: capacity plus one whole bucket of debt (adjust's
    // charges).
    static double max_level(const Params& p) { return (1.0 + kDebtBuckets) * p.capacity; }

    // What no step or adjust could have written (non-finite, negative level, above 2**52): a
    // fresh key. A level in debt up to max_level is legitimate and waits its exact drain;
    // above it (a capacity lowered) it is clamped, so the wait stays within two windows.
    // `last` beyond now + kClockTolerance (a clock glitch): re-based to now, level kept.
    static void sanitize(State& s, double now, const Params& p) {
        if (!plausible_count(s.level) || !std::isfinite(s.last)) {
            s = fresh(now, p);
            return;
        }
        if (ahead_of_clock(s.last, now)) s.last = now;
        s.level = std::min(s.level, max_level(p));
    }

    // A clock glitch, sanitized and reported: as TokenBucket::rebase.
    static bool rebase(State& s, double now, const Params& p) {
        if (!plausible_count(s.level) || !std::isfinite(s.last) || !ahead_of_clock(s.last, now)) {
            return false;
        }
        sanitize(s, now, p);
        return true;
    }

private:
    static Decision evaluate(State& s, double now, std::int64_t cost, const Params& p,
                             bool consume) {
        State stored = s;
        sanitize(stored, now, p);
        const double elapsed = std::max(0.0, now - stored.last);
        State next{std::max(0.0, stored.level - elapsed * p.rate), std::max(stored.last, now)};
        const double need = static_cast<double>(cost);

        Decision d;
        if (need > p.capacity) {
            d = insufficient_capacity(0, 0.0);
        } else if (next.level + need <= p.capacity + kEps) {
            d.allowed = true;
            if (consume) next.level += need;
        } else {
            d.retry_after = (next.level + need - p.capacity) / p.rate;
        }
        d.remaining = floor_count(p.capacity - next.level);
        d.reset_after = next.level / p.rate;
        d.meta[0] = next.level;
        d.meta[1] = p.rate;
        if (d.allowed && consume) s = next;
        return d;
    }
};

}  // namespace ratelimiter

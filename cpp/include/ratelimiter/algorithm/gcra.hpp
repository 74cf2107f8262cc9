// GCRA (generic cell rate algorithm): one theoretical arrival time per key. Each unit is
// due T = window/limit after the previous one; up to `burst` units may arrive early.
// Admits exactly what a token bucket of capacity `burst` and rate limit/window admits.
// The arithmetic is specified in docs/ALGORITHMS.md ("GCRA"); shape as token_bucket.hpp.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

#include "ratelimiter/algorithm/common.hpp"

namespace ratelimiter {

struct Gcra {
    // Stable: stores index their tables by it and SQLite rows are named by it.
    static constexpr AlgorithmId id{6};
    static constexpr const char* name = "gcra";
    // Decision::meta, in order: the names (and kinds) of result.metadata.
    static constexpr std::array<MetaField, 1> kMetadata{
        {{"tat", MetaKind::number}}};
    static constexpr std::size_t kStateSize = 2;
    static constexpr std::size_t kLegacyStateSize = 1;  // {tat}: read as a fresh key

    struct Spec {
        std::int64_t limit = 0;
        double window = 0.0;
        std::optional<std::int64_t> burst;  // default limit
    };
    struct Params {
        std::int64_t limit = 0;
        double burst = 0.0;     // largest cost ever admissible
        double interval = 0.0;  // T: seconds per unit
        double tau = 0.0;       // burst·T: how far ahead of now the TAT may run
    };
    // GCRA in its continuous-state form (ITU-T I.371 gives it as equivalent to the virtual
    // scheduling one): the TAT is kept as `level` units still in flight at `last`, i.e.
    // tat = last + level·T. An absolute TAT accumulated `tat += T` at epoch magnitude
    // (ulp(1.7e9) ≈ 2.4e-7 s) and lost units; a small unit count stays exact, and survives a
    // change of T (the units carry over, and drain at the new rate).
    struct State {
        double level = 0.0;  // units admitted and not yet drained, as of `last`
        double last = 0.0;   // time of the last update
    };

    static Params make_params(const Spec& spec) {
        require_positive_count(spec.limit, "limit");
        require_window(spec.window);
        Params p;
        p.limit = spec.limit;
        std::int64_t burst = spec.limit;
        if (spec.burst) {
            require_positive_count(*spec.burst, "burst");
            burst = *spec.burst;
        }
        p.burst = static_cast<double>(burst);
        p.interval = spec.window / static_cast<double>(spec.limit);
        require_positive_finite(p.interval, "window / limit");
        p.tau = p.burst * p.interval;
        require_positive_finite(p.tau, "burst * window / limit");
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

    static double fresh_at(const State& s, const Params& p) {
        return s.last + s.level * p.interval;
    }

    static void encode(const State& s, std::vector<double>& out) {
        out.assign({s.level, s.last});
    }
    // Any values are accepted here; what a step could not have written is handled by
    // `sanitize` (it needs now and the params). A legacy {tat} decodes as NaN: fresh.
    static bool decode(const double* data, std::size_t n, State& s) {
        if (n == kLegacyStateSize) {
            s = State{std::numeric_limits<double>::quiet_NaN(), 0.0};
            return true;
        }
        if (n != kStateSize) return false;
        s = State{data[0], data[1]};
        return true;
    }

    // Highest level (units in flight) a state may hold: burst plus one whole burst of debt
    // (adjust's charges), i.e. a TAT at most 2·tau ahead.
    static double max_level(const Params& p) { return (1.0 + kDebtBuckets) * p.burst; }

    // Non-finite or negative values: a fresh key. `last` beyond now + kClockTolerance:
    // re-based to now. A level in debt up to max_level is legitimate and waits its exact
    // drain; above it (burst was lowered) it is clamped, so the wait stays within 2·tau.
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
        State next = s;
        sanitize(next, now, p);
        const double elapsed = std::max(0.0, now - next.last);
        next.level = std::max(0.0, next.level - elapsed / p.interval);
        next.last = std::max(next.last, now);
        const double need = static_cast<double>(cost);

        Decision d;
        if (need > p.burst) {
            d = insufficient_capacity(0, 0.0);
        } else if (next.level + need <= p.burst + kEps) {
            d.allowed = true;
            if (consume) next.level += need;
        } else {
            d.retry_after = (next.level + need - p.burst) * p.interval;
        }
        d.remaining = floor_count(p.burst - next.level);
        d.reset_after = next.level * p.interval;
        d.meta[0] = next.last + next.level * p.interval;  // the TAT
        if (d.allowed && consume) s = next;
        return d;
    }
};

}  // namespace ratelimiter

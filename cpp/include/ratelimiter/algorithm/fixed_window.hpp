// Fixed window: at most `limit` units per window [k·window, (k+1)·window).
// The arithmetic is specified in docs/ALGORITHMS.md ("Fixed window"); shape as token_bucket.hpp.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <vector>

#include "ratelimiter/algorithm/common.hpp"
#include "ratelimiter/algorithm/window.hpp"

namespace ratelimiter {

struct FixedWindow {
    // Stable: stores index their tables by it and SQLite rows are named by it.
    static constexpr AlgorithmId id{0};
    static constexpr const char* name = "fixed_window";
    // Decision::meta, in order: the names (and kinds) of result.metadata.
    static constexpr std::array<MetaField, 2> kMetadata{
        {{"window_start", MetaKind::number}, {"count", MetaKind::count}}};
    static constexpr std::size_t kStateSize = 3;
    static constexpr std::size_t kLegacyStateSize = 2;  // {k, count}: the window in effect

    struct Spec {
        std::int64_t limit = 0;
        double window = 0.0;
    };
    struct Params {
        std::int64_t limit = 0;
        double window = 0.0;
    };
    // The window travels with k: an index means nothing without the window it was computed
    // with (a stored k read with another window was a ~1e11 s lockout).
    struct State {
        double k = 0.0;       // window index (an integer), never k·window
        double count = 0.0;   // units admitted in window k
        double window = 0.0;  // the window k was computed with (0: legacy, the current one)
    };

    static Params make_params(const Spec& spec) {
        require_positive_count(spec.limit, "limit");
        require_window(spec.window);
        return Params{spec.limit, spec.window};
    }

    static State fresh(double now, const Params& p) {
        return State{aligned_window_index(now, p.window), 0.0, p.window};
    }

    static Decision step(State& s, double now, std::int64_t cost, const Params& p) {
        return evaluate(s, now, cost, p, true);
    }

    static Decision peek(const State& s, double now, const Params& p) {
        State copy = s;
        return evaluate(copy, now, 1, p, false);
    }

    static double fresh_at(const State& s, const Params& p) {
        return (s.k + 1.0) * (s.window == 0.0 ? p.window : s.window);
    }

    static void encode(const State& s, std::vector<double>& out) {
        out.assign({s.k, s.count, s.window});
    }
    // Any values are accepted here; what a step could not have written is handled by
    // `current` (it needs now and the params).
    static bool decode(const double* data, std::size_t n, State& s) {
        if (n == kLegacyStateSize) {
            s = State{data[0], data[1], 0.0};
            return true;
        }
        if (n != kStateSize) return false;
        s = State{data[0], data[1], data[2]};
        return true;
    }

    // The stored state as it applies at `now` under `p`, on p's window grid; `until` is set
    // when a count carried from another window stops applying before the window ends.
    // docs/ALGORITHMS.md, "Stored state: validation, clock glitches, parameter changes".
    static State current(const State& s, double now, const Params& p, double& until) {
        const double k_now = aligned_window_index(now, p.window, s.k);
        const State empty{k_now, 0.0, p.window};
        if (!plausible_index(s.k) || !plausible_count(s.count) || !std::isfinite(s.window) ||
            s.window < 0.0) {
            return empty;  // corrupt: a fresh key
        }
        const double w = s.window == 0.0 ? p.window : s.window;
        // A clock glitch wrote it: keep the count, in the current window.
        if (ahead_of_clock(s.k * w, now)) return State{k_now, s.count, p.window};
        if (w == p.window) {
            // k_now < k means the clock went backwards: keep counting in the newer window.
            return k_now > s.k ? empty : State{s.k, s.count, p.window};
        }
        // Written under another window: its count applies while that window runs and lies
        // inside the current one (then every unit it counts was admitted in this window).
        const double end = (s.k + 1.0) * w;
        if (now < end && s.k * w >= k_now * p.window) {
            until = end;
            return State{k_now, s.count, p.window};
        }
        return empty;
    }

    // A clock glitch (a sound state whose window starts beyond now + kClockTolerance):
    // re-based as `current` does (its count, in the window of now) and reported, as
    // TokenBucket::rebase.
    static bool rebase(State& s, double now, const Params& p) {
        if (!plausible_index(s.k) || !plausible_count(s.count) || !std::isfinite(s.window) ||
            s.window < 0.0 || !ahead_of_clock(s.k * (s.window == 0.0 ? p.window : s.window), now)) {
            return false;
        }
        s = State{aligned_window_index(now, p.window), s.count, p.window};
        return true;
    }

private:
    static Decision evaluate(State& s, double now, std::int64_t cost, const Params& p,
                             bool consume) {
        double until = kInf;
        State next = current(s, now, p, until);
        const double limit = static_cast<double>(p.limit);
        const double need = static_cast<double>(cost);
        const double window_end = std::min((next.k + 1.0) * p.window, until) - now;

        Decision d;
        if (need > limit) {
            d = insufficient_capacity(0, 0.0);
        } else if (next.count + need <= limit) {
            d.allowed = true;
            if (consume) next.count += need;
        } else {
            d.retry_after = window_end;
        }
        d.remaining = floor_count(limit - next.count);
        d.reset_after = window_end;
        d.meta[0] = next.k * p.window;
        d.meta[1] = next.count;
        if (d.allowed && consume) s = next;
        return d;
    }
};

}  // namespace ratelimiter

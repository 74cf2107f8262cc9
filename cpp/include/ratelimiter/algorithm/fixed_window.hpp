// Fixed window: at most `limit` units per window [k·window, (k+1)·window).
// The arithmetic is specified in docs/ALGORITHMS.md ("Fixed window"); shape as token_bucket.hpp.
#pragma once

#include <cstdint>
#include <vector>

#include "ratelimiter/algorithm/common.hpp"
#include "ratelimiter/algorithm/window.hpp"

namespace ratelimiter {

struct FixedWindow {
    static constexpr AlgorithmId id = AlgorithmId::fixed_window;
    static constexpr const char* name = "fixed_window";
    static constexpr std::size_t kStateSize = 2;

    struct Spec {
        std::int64_t limit = 0;
        double window = 0.0;
    };
    struct Params {
        std::int64_t limit = 0;
        double window = 0.0;
    };
    struct State {
        double k = 0.0;      // window index (an integer), never k·window
        double count = 0.0;  // units admitted in window k
    };

    static Params make_params(const Spec& spec) {
        require_positive_count(spec.limit, "limit");
        require_positive_finite(spec.window, "window");
        return Params{spec.limit, spec.window};
    }

    static State fresh(double now, const Params& p) {
        return State{aligned_window_index(now, p.window), 0.0};
    }

    static Decision step(State& s, double now, std::int64_t cost, const Params& p) {
        return evaluate(s, now, cost, p, true);
    }

    static Decision peek(const State& s, double now, const Params& p) {
        State copy = s;
        return evaluate(copy, now, 1, p, false);
    }

    static double fresh_at(const State& s, const Params& p) { return (s.k + 1.0) * p.window; }

    static void encode(const State& s, std::vector<double>& out) { out.assign({s.k, s.count}); }
    static bool decode(const double* data, std::size_t n, State& s) {
        if (n != kStateSize) return false;
        s = State{data[0], data[1]};
        return true;
    }

private:
    static Decision evaluate(State& s, double now, std::int64_t cost, const Params& p,
                             bool consume) {
        State next = s;
        const double k_now = aligned_window_index(now, p.window);
        // k_now < k means the clock went backwards: keep counting in the newer window.
        if (k_now > next.k) next = State{k_now, 0.0};
        const double limit = static_cast<double>(p.limit);
        const double need = static_cast<double>(cost);
        const double window_end = (next.k + 1.0) * p.window - now;

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

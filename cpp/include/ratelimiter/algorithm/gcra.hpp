// GCRA (generic cell rate algorithm): one theoretical arrival time per key. Each unit is
// due T = window/limit after the previous one; up to `burst` units may arrive early.
// Admits exactly what a token bucket of capacity `burst` and rate limit/window admits.
// The arithmetic is specified in docs/ALGORITHMS.md ("GCRA"); shape as token_bucket.hpp.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <vector>

#include "ratelimiter/algorithm/common.hpp"

namespace ratelimiter {

struct Gcra {
    static constexpr AlgorithmId id = AlgorithmId::gcra;
    static constexpr const char* name = "gcra";
    static constexpr std::size_t kStateSize = 1;

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
    struct State {
        double tat = 0.0;  // theoretical arrival time of the next unit
    };

    static Params make_params(const Spec& spec) {
        require_positive_count(spec.limit, "limit");
        require_positive_finite(spec.window, "window");
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

    static State fresh(double now, const Params& /*p*/) { return State{now}; }

    static Decision step(State& s, double now, std::int64_t cost, const Params& p) {
        return evaluate(s, now, cost, p, true);
    }

    static Decision peek(const State& s, double now, const Params& p) {
        State copy = s;
        return evaluate(copy, now, 1, p, false);
    }

    static double fresh_at(const State& s, const Params& /*p*/) { return s.tat; }

    static void encode(const State& s, std::vector<double>& out) { out.assign({s.tat}); }
    static bool decode(const double* data, std::size_t n, State& s) {
        if (n != kStateSize) return false;
        s = State{data[0]};
        return true;
    }

private:
    static Decision evaluate(State& s, double now, std::int64_t cost, const Params& p,
                             bool consume) {
        const double base = std::max(s.tat, now);
        const double need = static_cast<double>(cost);
        const double new_tat = base + need * p.interval;
        double tat_after = base;

        Decision d;
        if (need > p.burst) {
            d = insufficient_capacity(0, 0.0);
        } else if (new_tat - now <= p.tau + kEps) {
            d.allowed = true;
            if (consume) tat_after = new_tat;
        } else {
            d.retry_after = new_tat - now - p.tau;
        }
        d.remaining = floor_count((p.tau - (tat_after - now)) / p.interval);
        d.reset_after = std::max(0.0, tat_after - now);
        d.meta[0] = tat_after;
        if (d.allowed && consume) s.tat = tat_after;
        return d;
    }
};

}  // namespace ratelimiter

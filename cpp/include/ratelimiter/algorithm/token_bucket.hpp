// Token bucket: capacity `limit`, refilled continuously at `rate` tokens per second.
// The arithmetic is specified in docs/ALGORITHMS.md ("Token bucket").
//
// Every algorithm header has this shape (the stores rely on it):
//   id, name, kStateSize (doubles in the encoded state; 0 = variable length),
//   Spec (what the caller configures), Params (validated, derived), State (per key),
//   make_params(Spec) -> Params      validates once; throws ConfigError naming the parameter
//   fresh(now, Params) -> State      state of a key never seen before
//   step(State&, now, cost, Params)  decides and consumes; a rejection leaves State unchanged
//   peek(State, now, Params)         decides a cost-1 request without consuming
//   fresh_at(State, Params)          instant from which State equals a fresh one (expiry)
//   encode/decode                    flat doubles, for SQLite rows and custom backends;
//                                    decode checks the shape, the step's `sanitize` the
//                                    values (docs/ALGORITHMS.md, "Stored state")
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "ratelimiter/algorithm/common.hpp"

namespace ratelimiter {

struct TokenBucket {
    // Stable: stores index their tables by it and SQLite rows are named by it.
    static constexpr AlgorithmId id{3};
    static constexpr const char* name = "token_bucket";
    // Decision::meta, in order: the names (and kinds) of result.metadata.
    static constexpr std::array<MetaField, 2> kMetadata{
        {{"tokens", MetaKind::number}, {"refill_rate", MetaKind::number}}};
    static constexpr std::size_t kStateSize = 2;

    struct Spec {
        std::int64_t limit = 0;
        double window = 0.0;
        std::optional<double> refill_rate;  // tokens per second; default limit / window
    };
    struct Params {
        std::int64_t limit = 0;
        double capacity = 0.0;
        double rate = 0.0;
    };
    struct State {
        double tokens = 0.0;
        double last = 0.0;
    };

    static Params make_params(const Spec& spec) {
        require_positive_count(spec.limit, "limit");
        require_window(spec.window);
        Params p;
        p.limit = spec.limit;
        p.capacity = static_cast<double>(spec.limit);
        if (spec.refill_rate) {
            require_positive_finite(*spec.refill_rate, "refill_rate");
            p.rate = *spec.refill_rate;
        } else {
            p.rate = p.capacity / spec.window;
            require_positive_finite(p.rate, "limit / window");
        }
        return p;
    }

    static State fresh(double now, const Params& p) { return State{p.capacity, now}; }

    static Decision step(State& s, double now, std::int64_t cost, const Params& p) {
        return evaluate(s, now, cost, p, true);
    }

    static Decision peek(const State& s, double now, const Params& p) {
        State copy = s;
        return evaluate(copy, now, 1, p, false);
    }

    static double fresh_at(const State& s, const Params& p) {
        return s.last + (p.capacity - s.tokens) / p.rate;
    }

    static void encode(const State& s, std::vector<double>& out) {
        out.assign({s.tokens, s.last});
    }
    static bool decode(const double* data, std::size_t n, State& s) {
        if (n != kStateSize) return false;
        s = State{data[0], data[1]};
        return true;
    }

    // Lowest tokens a state may hold: one whole bucket of debt (adjust's charges).
    static double min_tokens(const Params& p) { return -kDebtBuckets * p.capacity; }

    // What no step or adjust could have written (non-finite, |tokens| > 2**52): a fresh key.
    // Tokens in debt down to min_tokens are legitimate (adjust's charges) and wait their
    // exact repayment; further below (a capacity lowered while in debt) they are clamped to
    // it, as tokens above a lowered capacity are clamped by the refill's min. `last` beyond
    // now + kClockTolerance (a clock glitch): re-based to now, tokens kept.
    static void sanitize(State& s, double now, const Params& p) {
        if (!plausible_signed_count(s.tokens) || !std::isfinite(s.last)) {
            s = fresh(now, p);
            return;
        }
        if (ahead_of_clock(s.last, now)) s.last = now;
        s.tokens = std::max(s.tokens, min_tokens(p));
    }

    // A clock glitch (`last` beyond now + kClockTolerance, state otherwise sound) is
    // sanitized here, and reported: the store writes the re-based state back even when the
    // step rejects (apply_step), else a key at its limit would re-base to each request's own
    // `now` and stay locked until real time catches up. A corrupt state is not a glitch.
    static bool rebase(State& s, double now, const Params& p) {
        if (!plausible_signed_count(s.tokens) || !std::isfinite(s.last) ||
            !ahead_of_clock(s.last, now)) {
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
        State next{std::min(p.capacity, stored.tokens + elapsed * p.rate),
                   std::max(stored.last, now)};
        const double need = static_cast<double>(cost);

        Decision d;
        if (need > p.capacity) {
            d = insufficient_capacity(0, 0.0);
        } else if (next.tokens + kEps >= need) {
            d.allowed = true;
            if (consume) next.tokens = std::max(0.0, next.tokens - need);
        } else {
            d.retry_after = (need - next.tokens) / p.rate;
        }
        d.remaining = floor_count(next.tokens);
        d.reset_after = (p.capacity - next.tokens) / p.rate;
        d.meta[0] = next.tokens;
        d.meta[1] = p.rate;
        // A rejection never changes state; an admission (or a peek's roll-forward) does.
        if (d.allowed && consume) s = next;
        return d;
    }
};

}  // namespace ratelimiter

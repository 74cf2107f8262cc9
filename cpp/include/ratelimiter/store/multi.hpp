// Several limits decided at once, all or nothing (MultiRateLimiter): the store loads every
// limit's state inside its one critical section / transaction, calls apply_multi, and saves
// what it is told to. Stores own where states live; this file owns what a multi decision is.
//
//   consume  every consulted limit (cost > 0) steps on a *copy* of its state; only if all of
//            them admit are the copies committed (save) — a rejection consumes from none,
//            but still saves each state a clock-glitch re-base changed (Algo::rebase).
//            A limit with cost 0 is not consulted: it reports its state (as a peek) and
//            counts as admitting.
//   peek     every limit peeks (a cost-1 request, nothing changes).
//   adjust   every limit with a non-zero cost is charged/refunded (adjust.hpp) and saved;
//            the decisions reported are peeks of the adjusted states.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "ratelimiter/algorithm/adjust.hpp"
#include "ratelimiter/algorithm/common.hpp"
#include "ratelimiter/result.hpp"

namespace ratelimiter {

enum class MultiOp { consume, peek, adjust };

// Per-limit decisions reported for a limit that admitted while another refused: its state as
// it is (nothing was consumed), marked as admitting.
inline Decision as_admitting(Decision d) {
    d.allowed = true;
    d.insufficient_capacity = false;
    d.retry_after = 0.0;
    return d;
}

// Runs `op` over n limits. states[i] is limit i's loaded state (modified in place only when
// committed), costs[i] its cost (consume: >= 0; adjust: any sign; peek: ignored), out[i]
// receives its decision. save(i, state, fresh_at) is called for every state to write back.
// Returns whether the request is admitted (always true for peek and adjust).
template <class Algo, class Save>
bool apply_multi(typename Algo::State* states, const typename Algo::Params* params,
                 const std::int64_t* costs, std::size_t n, double now, MultiOp op,
                 Decision* out, Save&& save) {
    if (op == MultiOp::peek) {
        for (std::size_t i = 0; i < n; ++i) out[i] = Algo::peek(states[i], now, params[i]);
        return true;
    }
    if (op == MultiOp::adjust) {
        if constexpr (HasAdjust<Algo>::value) {
            for (std::size_t i = 0; i < n; ++i) {
                if (costs[i] != 0) {
                    adjust_state(states[i], now, costs[i], params[i]);
                    save(i, static_cast<const typename Algo::State&>(states[i]),
                         Algo::fresh_at(states[i], params[i]));
                }
                out[i] = Algo::peek(states[i], now, params[i]);
            }
            return true;
        } else {
            throw ConfigError(std::string("adjust is not available for the ") + Algo::name +
                              " algorithm");
        }
    }
    thread_local std::vector<typename Algo::State> copies;
    thread_local std::vector<char> rebased;
    copies.resize(n);
    rebased.assign(n, 0);
    bool all = true;
    for (std::size_t i = 0; i < n; ++i) {
        if (costs[i] == 0) {
            out[i] = as_admitting(Algo::peek(states[i], now, params[i]));
            continue;
        }
        // A clock glitch is re-based in place (apply_step): kept even if the decision rejects.
        rebased[i] = Algo::rebase(states[i], now, params[i]) ? 1 : 0;
        copies[i] = states[i];
        out[i] = Algo::step(copies[i], now, costs[i], params[i]);
        all = all && out[i].allowed;
    }
    for (std::size_t i = 0; i < n; ++i) {
        if (costs[i] == 0) continue;
        if (all) {
            states[i] = std::move(copies[i]);
            save(i, static_cast<const typename Algo::State&>(states[i]),
                 Algo::fresh_at(states[i], params[i]));
        } else {
            if (out[i].allowed) {
                // It would have admitted, but nothing is consumed: report the state as it is.
                out[i] = as_admitting(Algo::peek(states[i], now, params[i]));
            }
            if (rebased[i]) {
                save(i, static_cast<const typename Algo::State&>(states[i]),
                     Algo::fresh_at(states[i], params[i]));
            }
        }
    }
    return all;
}

// The numbers a multi decision reports as a whole.
struct MultiSummary {
    bool allowed = true;
    bool insufficient_capacity = false;
    std::size_t restrictive = 0;  // index of the limit whose limit/remaining/reset_after show
    double retry_after = 0.0;     // largest wait among the refusing limits (inf: never)
};

// The most restrictive limit is the one with the smallest remaining, ties broken by the
// longest reset_after (then the first listed).
inline MultiSummary summarize(const Decision* d, std::size_t n) {
    MultiSummary s;
    for (std::size_t i = 0; i < n; ++i) {
        if (!d[i].allowed) {
            s.allowed = false;
            s.retry_after = std::max(s.retry_after, d[i].retry_after);
            s.insufficient_capacity = s.insufficient_capacity || d[i].insufficient_capacity;
        }
        const Decision& best = d[s.restrictive];
        if (d[i].remaining < best.remaining ||
            (d[i].remaining == best.remaining && d[i].reset_after > best.reset_after)) {
            s.restrictive = i;
        }
    }
    if (s.insufficient_capacity) s.retry_after = kInf;
    return s;
}

}  // namespace ratelimiter

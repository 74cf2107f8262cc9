// adjust: charge (delta > 0) or refund (delta < 0) units to a key's state after the fact,
// without a decision — e.g. an LLM call's real token count once the response is known.
// Semantics per algorithm are specified in docs/ALGORITHMS.md ("Adjusting after the fact"):
//   - the state is first rolled forward to `now` exactly as a step would roll it;
//   - a charge is never refused. The windowed algorithms carry it whole (counts above the
//     limit: later requests wait until the windows pass); the buckets go into debt of at
//     most one whole bucket (kDebtBuckets; the rest of a larger charge is dropped), which
//     later requests wait to be repaid (see below);
//   - a refund never goes past a full quota (counts never below 0, tokens never above
//     capacity, levels never below 0);
//   - the sliding log gains one entry at now for a charge and loses its newest units first
//     for a refund.
// Kept out of the algorithm headers on purpose: it only manipulates their State, by
// overload per algorithm. The Lua twins are cpp/lua/multi/adjust_<name>.lua.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "ratelimiter/algorithm/all.hpp"

namespace ratelimiter {

inline void adjust_state(FixedWindow::State& s, double now, std::int64_t delta,
                         const FixedWindow::Params& p) {
    double until = kInf;
    s = FixedWindow::current(s, now, p, until);  // as a step reads it, on p's grid
    const double units = static_cast<double>(delta);
    s.count = delta >= 0 ? s.count + units : std::max(0.0, s.count + units);
}

// Takes `refund` units off a window pair, the current window first, then the previous one,
// neither below 0.
inline void refund_pair(WindowPair& pair, double refund) {
    const double from_curr = std::min(pair.curr, refund);
    pair.curr -= from_curr;
    pair.prev = std::max(0.0, pair.prev - (refund - from_curr));
}

inline void adjust_state(SlidingWindowCounter::State& s, double now, std::int64_t delta,
                         const SlidingWindowCounter::Params& p) {
    s.sanitize(now, p.window);
    s.roll(now, s.window);
    s.migrate(now, p.window);
    if (delta >= 0) {
        s.curr += static_cast<double>(delta);
        return;
    }
    // A refund takes back from the current window first, then from the previous one.
    refund_pair(s, -static_cast<double>(delta));
}

// A bucket's charge may take it into debt down to the bound its sanitizer accepts
// (TokenBucket::min_tokens = -capacity, LeakyBucket/Gcra::max_level = 2·capacity / 2·burst):
// a later request of cost c then waits exactly (c - tokens)/rate, (level + c - capacity)/rate
// or (level + c - burst)·T, i.e. until the debt is repaid. Beyond the bound the charge is
// clamped: a corrupt-looking state could not be told apart from a real one otherwise.
inline void adjust_state(TokenBucket::State& s, double now, std::int64_t delta,
                         const TokenBucket::Params& p) {
    TokenBucket::sanitize(s, now, p);
    const double elapsed = std::max(0.0, now - s.last);
    s.tokens = std::min(p.capacity, s.tokens + elapsed * p.rate);
    s.last = std::max(s.last, now);
    s.tokens = std::max(TokenBucket::min_tokens(p),
                        std::min(p.capacity, s.tokens - static_cast<double>(delta)));
}

inline void adjust_state(LeakyBucket::State& s, double now, std::int64_t delta,
                         const LeakyBucket::Params& p) {
    LeakyBucket::sanitize(s, now, p);
    const double elapsed = std::max(0.0, now - s.last);
    s.level = std::max(0.0, s.level - elapsed * p.rate);
    s.last = std::max(s.last, now);
    s.level = std::min(LeakyBucket::max_level(p),
                       std::max(0.0, s.level + static_cast<double>(delta)));
}

inline void adjust_state(Gcra::State& s, double now, std::int64_t delta, const Gcra::Params& p) {
    Gcra::sanitize(s, now, p);
    const double elapsed = std::max(0.0, now - s.last);
    s.level = std::max(0.0, s.level - elapsed / p.interval);
    s.last = std::max(s.last, now);
    s.level =
        std::min(Gcra::max_level(p), std::max(0.0, s.level + static_cast<double>(delta)));
}

// Through the encoded form, so the log's container (the algorithm header's business) is
// only used via encode/decode.
inline void adjust_state(SlidingWindow::State& s, double now, std::int64_t delta,
                         const SlidingWindow::Params& p) {
    std::vector<double> flat;
    SlidingWindow::encode(s, flat);
    const double vnow = flat.empty() ? now : std::max(now, flat[flat.size() - 2]);
    std::size_t expired = 0;  // leading entries outside the window (as a step sees them)
    while (expired < flat.size() && flat[expired] + p.window <= vnow) expired += 2;
    flat.erase(flat.begin(), flat.begin() + static_cast<std::ptrdiff_t>(expired));
    if (delta >= 0) {
        if (!flat.empty() && flat[flat.size() - 2] == vnow) {
            flat.back() += static_cast<double>(delta);
        } else if (delta > 0) {
            flat.push_back(vnow);
            flat.push_back(static_cast<double>(delta));
        }
    } else {
        double refund = -static_cast<double>(delta);
        while (refund > 0.0 && !flat.empty()) {
            const double take = std::min(flat.back(), refund);
            flat.back() -= take;
            refund -= take;
            if (flat.back() <= 0.0) flat.resize(flat.size() - 2);
        }
    }
    SlidingWindow::State out;
    SlidingWindow::decode(flat.data(), flat.size(), out);
    s = std::move(out);
}

// The adaptive limiter: every layer sees the units as if admitted (or taken back). The
// guard and the load sensor carry a charge whole, like the sliding window counter (the
// guard may exceed effective_burst: later requests wait for its windows to pass, and the
// measured load rises); the bucket is at most emptied (its sanitizer reads negative tokens
// as corrupt) and a refund fills it to max_burst at most (the next step clamps it to that
// step's effective_burst, as its refill does). The bucket refills up to max_burst here, not
// effective_burst: no decision runs, so no load-dependent clamp is applied.
inline void adjust_state(Adaptive::State& s, double now, std::int64_t delta,
                         const Adaptive::Params& p) {
    Adaptive::sanitize(s, now, p);
    s.guard.roll(now, s.guard.window);
    s.guard.migrate(now, p.window);
    s.load.roll(now, s.load.window);
    s.load.migrate(now, p.adaptive_window);
    const double elapsed = std::max(0.0, now - s.last);
    s.tokens = std::min(p.max_burst, s.tokens + elapsed * p.rate);
    s.last = std::max(s.last, now);
    const double units = static_cast<double>(delta);
    if (delta >= 0) {
        s.guard.curr += units;
        s.load.curr += units;
        s.tokens = std::max(0.0, s.tokens - units);
    } else {
        refund_pair(s.guard, -units);
        refund_pair(s.load, -units);
        s.tokens = std::min(p.max_burst, s.tokens - units);
    }
}

// Whether adjust_state exists for Algo (every algorithm has one; kept so a new algorithm
// without one fails to offer MultiRateLimiter.adjust instead of failing to compile).
template <class Algo, class = void>
struct HasAdjust : std::false_type {};
template <class Algo>
struct HasAdjust<Algo, std::void_t<decltype(adjust_state(
                           std::declval<typename Algo::State&>(), 0.0, std::int64_t{0},
                           std::declval<const typename Algo::Params&>()))>> : std::true_type {};

}  // namespace ratelimiter

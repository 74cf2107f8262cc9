// Adaptive hybrid: a sliding-window guard and a token bucket whose burst shrinks while the
// measured load is high. Three layers, checked in this order:
//   load sensor  sliding-window counter of admitted cost over adaptive_window (per key), or
//                a load supplied by the caller (StepInput, aggregate mode);
//   guard        sliding-window counter over `window`, ceiling effective_burst;
//   bucket       capacity effective_burst, refilling at limit/window (long-run average).
// The arithmetic is specified in docs/ALGORITHMS.md ("Adaptive hybrid"); shape as
// token_bucket.hpp.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <optional>
#include <vector>

#include "ratelimiter/algorithm/common.hpp"
#include "ratelimiter/algorithm/window.hpp"

namespace ratelimiter {

struct Adaptive {
    // Stable: stores index their tables by it and SQLite rows are named by it.
    static constexpr AlgorithmId id{5};
    static constexpr const char* name = "adaptive";
    // Decision::meta, in order: the names (and kinds) of result.metadata.
    static constexpr std::array<MetaField, 6> kMetadata{
        {{"layer", MetaKind::layer}, {"tokens", MetaKind::number},
         {"effective_burst", MetaKind::count}, {"refill_rate", MetaKind::number},
         {"sw_count", MetaKind::number}, {"load", MetaKind::number}}};
    static constexpr std::size_t kStateSize = 10;
    // {gk, gcurr, gprev, tokens, last, lk, lcurr, lprev}: the windows in effect.
    static constexpr std::size_t kLegacyStateSize = 8;

    // Values of meta[0].
    static constexpr double kLayerSlidingWindow = 0.0;
    static constexpr double kLayerTokenBucket = 1.0;

    struct Spec {
        std::int64_t limit = 0;
        double window = 0.0;
        double burst_multiplier = 2.0;
        std::optional<double> adaptive_window;  // default 5·window
        double high_load_threshold = 0.8;
        double low_load_threshold = 0.4;
        double penalty = 0.5;
        std::optional<double> load_capacity;  // requests/s: aggregate mode (binding measures)
    };
    struct Params {
        std::int64_t limit = 0;
        double window = 0.0;
        double burst_multiplier = 0.0;
        double adaptive_window = 0.0;
        double high = 0.0;
        double low = 0.0;
        double penalty = 0.0;
        std::optional<double> load_capacity;
        double rate = 0.0;       // limit / window
        double max_burst = 0.0;  // effective_burst at zero load (load <= low)
        double min_burst = 0.0;  // effective_burst at full load (load >= high)
        // exact_reciprocal of rate and adaptive_window (0: divide): see per_rate.
        double inv_rate = 0.0;
        double inv_adaptive_window = 0.0;
    };
    // The per-call input: a load the caller measured (aggregate mode, load_capacity; see
    // bindings/aggregate_load.hpp) replacing the per-key sensor. Empty: the key's own sensor.
    using StepInput = std::optional<double>;
    struct State {
        WindowPair guard;  // {gk, gcurr, gprev, gwindow} over window
        double tokens = 0.0;
        double last = 0.0;
        WindowPair load;   // {lk, lcurr, lprev, lwindow} over adaptive_window
    };

    static Params make_params(const Spec& spec) {
        require_positive_count(spec.limit, "limit");
        require_window(spec.window);
        require_positive_finite(spec.burst_multiplier, "burst_multiplier");
        Params p;
        p.limit = spec.limit;
        p.window = spec.window;
        p.burst_multiplier = spec.burst_multiplier;
        p.adaptive_window = spec.adaptive_window.value_or(5.0 * spec.window);
        // Its default is 5 windows, so it may reach 5x the longest window.
        require_window(p.adaptive_window, "adaptive_window", 5.0 * kMaxWindow);
        require_unit_interval(spec.high_load_threshold, "high_load_threshold");
        require_unit_interval(spec.low_load_threshold, "low_load_threshold");
        if (spec.low_load_threshold > spec.high_load_threshold) {
            throw ConfigError("low_load_threshold must be <= high_load_threshold, got " +
                              format_number(spec.low_load_threshold) + " > " +
                              format_number(spec.high_load_threshold));
        }
        p.high = spec.high_load_threshold;
        p.low = spec.low_load_threshold;
        if (!std::isfinite(spec.penalty) || spec.penalty < 0.0 || spec.penalty >= 1.0) {
            throw ConfigError("penalty must be in [0, 1), got " + format_number(spec.penalty));
        }
        p.penalty = spec.penalty;
        if (spec.load_capacity) require_positive_finite(*spec.load_capacity, "load_capacity");
        p.load_capacity = spec.load_capacity;
        const double limit = static_cast<double>(spec.limit);
        p.rate = limit / spec.window;
        require_positive_finite(p.rate, "limit / window");
        if (!(limit * spec.burst_multiplier <= static_cast<double>(kMaxCount))) {
            throw ConfigError("limit * burst_multiplier must be <= 2**52, got " +
                              format_number(limit * spec.burst_multiplier));
        }
        p.max_burst = burst_for(p, 1.0);
        p.min_burst = burst_for(p, 1.0 - p.penalty);
        p.inv_rate = exact_reciprocal(p.rate);
        p.inv_adaptive_window = exact_reciprocal(p.adaptive_window);
        return p;
    }

    // tokens = max_burst: the first refill clamps it to that step's effective_burst, so this
    // equals the spec's "new key starts with effective_burst tokens".
    static State fresh(double now, const Params& p) {
        return State{WindowPair::fresh(now, p.window), p.max_burst, now,
                     WindowPair::fresh(now, p.adaptive_window)};
    }

    static Decision step(State& s, double now, std::int64_t cost, const Params& p,
                         StepInput external_load = std::nullopt) {
        return evaluate(s, now, cost, p, external_load, true);
    }

    static Decision peek(const State& s, double now, const Params& p,
                         StepInput external_load = std::nullopt) {
        State copy = s;
        return evaluate(copy, now, 1, p, external_load, false);
    }

    static double fresh_at(const State& s, const Params& p) {
        const double gw = s.guard.window == 0.0 ? p.window : s.guard.window;
        const double lw = s.load.window == 0.0 ? p.adaptive_window : s.load.window;
        return std::max({(s.guard.k + 2.0) * gw, (s.load.k + 2.0) * lw,
                         s.last + per_rate(p.max_burst - s.tokens, p)});
    }

    static void encode(const State& s, std::vector<double>& out) {
        out.assign({s.guard.k, s.guard.curr, s.guard.prev, s.tokens, s.last, s.load.k,
                    s.load.curr, s.load.prev, s.guard.window, s.load.window});
    }
    // Any values are accepted here; `sanitize` handles what a step could not have written.
    static bool decode(const double* data, std::size_t n, State& s) {
        if (n != kStateSize && n != kLegacyStateSize) return false;
        const bool legacy = n == kLegacyStateSize;
        s = State{WindowPair{data[0], data[1], data[2], legacy ? 0.0 : data[8]}, data[3], data[4],
                  WindowPair{data[5], data[6], data[7], legacy ? 0.0 : data[9]}};
        return true;
    }

    // The bucket as the token bucket (corrupt → full, a glitch re-bases `last` to now); each
    // window pair as WindowPair::sanitize.
    static void sanitize(State& s, double now, const Params& p) {
        if (!plausible_count(s.tokens) || !std::isfinite(s.last)) {
            s.tokens = p.max_burst;
            s.last = now;
        } else if (ahead_of_clock(s.last, now)) {
            s.last = now;
        }
        s.guard.sanitize(now, p.window);
        s.load.sanitize(now, p.adaptive_window);
    }

    // A clock glitch in any layer (the bucket's `last`, a window pair's start), with that
    // layer otherwise sound: the whole state sanitized and reported, as TokenBucket::rebase.
    static bool rebase(State& s, double now, const Params& p) {
        // Clock tests first (false on almost every step); each conjunction is order-free.
        const bool bucket = ahead_of_clock(s.last, now) && plausible_count(s.tokens) &&
                            std::isfinite(s.last);
        if (!bucket && !s.guard.glitched(now, p.window) &&
            !s.load.glitched(now, p.adaptive_window)) {
            return false;
        }
        sanitize(s, now, p);
        return true;
    }

    // x / rate (a multiply when that is bit-identical: common.hpp divide_exact).
    static double per_rate(double x, const Params& p) { return divide_exact(x, p.rate, p.inv_rate); }

    // max(1, floor(limit·burst_multiplier·factor + EPS)).
    static double burst_for(const Params& p, double factor) {
        return std::max(1.0, std::floor(static_cast<double>(p.limit) * p.burst_multiplier *
                                            factor + kEps));
    }

private:
    // burst_for(p, factor) of the spec's factor at `load`: 1 at or below `low`, 1 - penalty
    // at or above `high` (both precomputed in make_params, the same doubles), linear between.
    static double effective_burst_for(const Params& p, double load) {
        if (load <= p.low) return p.max_burst;
        if (load >= p.high) return p.min_burst;
        return burst_for(p, 1.0 - p.penalty * (load - p.low) / (p.high - p.low));
    }

    static Decision evaluate(State& s, double now, std::int64_t cost, const Params& p,
                             StepInput external_load, bool consume) {
        State next = s;
        sanitize(next, now, p);
        const double need = static_cast<double>(cost);
        const double gw = next.guard.window;  // grids the pairs were written on
        const double lw = next.load.window;

        // 1-2. Load and the burst it allows.
        next.load.roll(now, lw);
        const double load = external_load
                                ? *external_load
                                : per_rate(divide_exact(next.load.weighted(now, lw),
                                                        p.adaptive_window,
                                                        p.inv_adaptive_window),
                                           p);
        const double effective_burst = effective_burst_for(p, load);

        // 3. Guard.
        next.guard.roll(now, gw);
        double sw_count = next.guard.weighted(now, gw);

        // 4. Bucket.
        const double elapsed = std::max(0.0, now - next.last);
        next.tokens = std::min(effective_burst, next.tokens + elapsed * p.rate);
        next.last = std::max(next.last, now);
        // Every layer only relaxes while nothing is admitted (load falls, so the burst grows;
        // the guard count falls; tokens grow), so the latest of the per-layer waits admits.
        // Computed only by a rejection (a division off the admitting path).
        const auto bucket_wait = [&] { return std::max(0.0, per_rate(need - next.tokens, p)); };

        Decision d;
        d.meta[0] = kLayerSlidingWindow;
        if (need > p.max_burst) {
            d = insufficient_capacity(0, 0.0);
        } else if (need > effective_burst) {
            // Only a lower load can admit it: wait for the sensor to empty (burst = max_burst).
            const double sensor_empty = (next.load.k + 2.0) * lw - now;
            d.retry_after = std::max(
                {sensor_empty, next.guard.wait_for(need, p.max_burst, now, gw), bucket_wait()});
        } else if (sw_count + need > effective_burst + kEps) {
            d.retry_after = std::max(next.guard.wait_for(need, effective_burst, now, gw),
                                     bucket_wait());
        } else if (next.tokens + kEps < need) {
            d.meta[0] = kLayerTokenBucket;
            d.retry_after = bucket_wait();
        } else {
            // 5. Admitted.
            d.allowed = true;
            d.meta[0] = kLayerTokenBucket;
            if (consume) {
                next.guard.migrate(now, p.window);
                next.load.migrate(now, p.adaptive_window);
                next.guard.curr += need;
                sw_count += need;
                next.tokens = std::max(0.0, next.tokens - need);
                next.load.curr += need;
            }
        }

        // 6.
        d.remaining = floor_count(std::min(next.tokens, effective_burst - sw_count));
        double guard_reset = now;  // the guard's counts are gone at this instant
        if (next.guard.curr > 0.0) {
            guard_reset = (next.guard.k + 2.0) * next.guard.window;
        } else if (next.guard.prev > 0.0) {
            guard_reset = (next.guard.k + 1.0) * next.guard.window;
        }
        d.reset_after = std::max(
            0.0,
            std::max(guard_reset, next.last + per_rate(effective_burst - next.tokens, p)) - now);
        d.meta[1] = next.tokens;
        d.meta[2] = effective_burst;
        d.meta[3] = p.rate;
        d.meta[4] = sw_count;
        d.meta[5] = load;
        if (d.allowed && consume) s = next;
        return d;
    }
};

}  // namespace ratelimiter

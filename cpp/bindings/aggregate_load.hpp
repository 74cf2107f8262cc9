// The adaptive limiter's "whole service is busy" mode (load_capacity=...): the load is the
// limiter's admitted rate over all keys in this process, measured with the same O(1)
// sliding-window counter the per-key sensor uses, handed to each step as its per-call input
// (Adaptive::StepInput). Other algorithms have nothing to do.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>

#include "ratelimiter/algorithm/adaptive.hpp"
#include "ratelimiter/algorithm/window.hpp"

namespace ratelimiter::binding {

template <class Algo>
struct AggregateLoad {
    StepInputOf<Algo> measure(const typename Algo::Params&, double) { return {}; }
    void record(const Decision&, std::int64_t, double) {}
};

// The counter is the core's WindowPair (window.hpp): its aligned window index and clamped
// previous-window weight, so the aggregate load reads exactly as the per-key sensor would.
template <>
struct AggregateLoad<Adaptive> {
    // The load now; empty (the key's own sensor) without load_capacity.
    Adaptive::StepInput measure(const Adaptive::Params& params, double now) {
        if (!params.load_capacity) return std::nullopt;
        const double w = params.adaptive_window;
        std::lock_guard<std::mutex> lock(mutex);
        if (!started) {
            pair = WindowPair::fresh(now, w);
            started = true;
        }
        pair.migrate(now, w);  // a config provider changed the window: keep what it counted
        pair.roll(now, w);
        return (pair.weighted(now, w) / w) / *params.load_capacity;
    }
    void record(const Decision& d, std::int64_t cost, double now) {
        if (!d.allowed) return;
        std::lock_guard<std::mutex> lock(mutex);
        if (!started) return;
        pair.roll(now, pair.window);
        pair.curr += static_cast<double>(cost);
    }

private:
    std::mutex mutex;
    bool started = false;
    WindowPair pair;  // admitted cost over adaptive_window, all keys of this limiter
};

}  // namespace ratelimiter::binding

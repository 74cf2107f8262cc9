// The adaptive limiter's "whole service is busy" mode (load_capacity=...): the load is the
// limiter's admitted rate over all keys in this process, measured with the same O(1)
// sliding-window counter the per-key sensor uses. Other algorithms have nothing to do.
#pragma once

#include <cmath>
#include <cstdint>
#include <mutex>

#include "ratelimiter/algorithm/adaptive.hpp"

namespace ratelimiter::binding {

template <class Algo>
struct AggregateLoad {
    void prepare(typename Algo::Params&, double) {}
    void record(const Decision&, std::int64_t, double) {}
};

template <>
struct AggregateLoad<Adaptive> {
    void prepare(Adaptive::Params& params, double now) {
        if (!params.load_capacity) return;
        std::lock_guard<std::mutex> lock(mutex);
        roll(now, params.adaptive_window);
        window = params.adaptive_window;
        const double weight_prev = 1.0 - (now - index * window) / window;
        const double admitted = prev * weight_prev + curr;
        params.external_load = (admitted / window) / *params.load_capacity;
    }
    void record(const Decision& d, std::int64_t cost, double now) {
        if (!d.allowed || window <= 0.0) return;
        std::lock_guard<std::mutex> lock(mutex);
        roll(now, window);
        curr += static_cast<double>(cost);
    }

private:
    void roll(double now, double w) {
        const double k = std::floor(now / w);
        if (k == index + 1) {
            prev = curr;
            curr = 0.0;
        } else if (k > index + 1) {
            prev = curr = 0.0;
        }
        if (k > index) index = k;
    }

    std::mutex mutex;
    double window = 0.0;
    double index = -1e300;
    double curr = 0.0;
    double prev = 0.0;
};

}  // namespace ratelimiter::binding

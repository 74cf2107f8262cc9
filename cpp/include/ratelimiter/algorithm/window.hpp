// Window arithmetic shared by the windowed algorithms (docs/ALGORITHMS.md, "Conventions").
#pragma once

#include <algorithm>
#include <cmath>

#include "ratelimiter/algorithm/common.hpp"

namespace ratelimiter {

// Index k of the window holding `now`, such that k·window <= now < (k+1)·window holds *as
// computed in floating point*. floor(now/window) alone is off by one for ~5% of boundaries
// (fl(fl(k·w)/w) < k), which would make a caller waiting exactly until (k+1)·window — the
// retry_after we report — land in the old window and be rejected again.
inline double aligned_window_index(double now, double window) {
    double k = std::floor(now / window);
    if (k * window > now) {
        k -= 1.0;
    } else if ((k + 1.0) * window <= now) {
        k += 1.0;
    }
    return k;
}

// Two adjacent window counters (the sliding window counter's state, also used twice by the
// adaptive limiter). Rolls forward to the window of `now`; never backwards.
struct WindowPair {
    double k = 0.0;
    double curr = 0.0;
    double prev = 0.0;

    void roll(double now, double window) {
        const double k_now = aligned_window_index(now, window);
        if (k_now == k + 1.0) {
            prev = curr;
            curr = 0.0;
        } else if (k_now > k + 1.0) {
            prev = 0.0;
            curr = 0.0;
        }
        k = std::max(k, k_now);
    }
    // Weight of the previous window at `now`, in [0, 1]; a clock behind the window start
    // counts as the window start (elapsed 0).
    double weight_prev(double now, double window) const {
        const double elapsed = std::max(0.0, now - k * window);
        return std::max(0.0, 1.0 - elapsed / window);
    }
    double weighted(double now, double window) const {
        return prev * weight_prev(now, window) + curr;
    }
    // Seconds from `now` until weighted() + cost <= limit (curr/prev as they are now, nothing
    // else admitted); 0 if it already fits. Requires cost <= limit.
    double wait_for(double cost, double limit, double now, double window) const {
        if (weighted(now, window) + cost <= limit + kEps) return 0.0;
        // Not fitting implies prev > 0 in the first branch and curr > 0 in the second.
        double t;
        if (curr + cost <= limit) {
            t = k * window + window * (1.0 - (limit - cost - curr) / prev);
        } else {
            t = (k + 1.0) * window + window * (1.0 - (limit - cost) / curr);
        }
        return std::max(0.0, t - now);
    }
};

}  // namespace ratelimiter

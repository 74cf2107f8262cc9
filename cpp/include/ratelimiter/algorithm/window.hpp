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

// The same, answered without a division when `guess` (say the stored index: most steps land
// in the window they were stored in) already satisfies k·window <= now < (k+1)·window. Such
// an integer k is unique (k·window is non-decreasing in k), so the answer is the same.
inline double aligned_window_index(double now, double window, double guess) {
    // is_integral(guess) is guess == floor(guess) except at ±inf, where the bounds fail.
    if (guess * window <= now && now < (guess + 1.0) * window && is_integral(guess)) {
        return guess;
    }
    return aligned_window_index(now, window);
}

// Two adjacent window counters (the sliding window counter's state, also used twice by the
// adaptive limiter). Rolls forward to the window of `now`; never backwards.
// The pair carries the window its k was computed with and is always evaluated on that grid,
// so a changed window never misreads it; it moves to the new grid when next admitted
// (`migrate`). docs/ALGORITHMS.md, "Stored state: validation, clock glitches, ...".
struct WindowPair {
    double k = 0.0;
    double curr = 0.0;
    double prev = 0.0;
    double window = 0.0;  // the window k was computed with (0: legacy, the current one)

    static WindowPair fresh(double now, double window) {
        return WindowPair{aligned_window_index(now, window), 0.0, 0.0, window};
    }
    // A stored pair made usable at `now` with `window` in effect: corrupt (non-finite,
    // negative, non-integer k) → fresh; legacy → the current window; written by a clock
    // glitch (start beyond now + kClockTolerance) → its counts, in the window of now.
    void sanitize(double now, double current_window) {
        if (!plausible_index(k) || !plausible_count(curr) || !plausible_count(prev) ||
            !std::isfinite(window) || window < 0.0) {
            *this = fresh(now, current_window);
            return;
        }
        if (window == 0.0) window = current_window;
        if (ahead_of_clock(k * window, now)) {
            k = aligned_window_index(now, current_window);
            window = current_window;
        }
    }
    // Whether sanitize would re-base a clock glitch: a sound pair whose window starts beyond
    // now + kClockTolerance (on the grid it was written on).
    bool glitched(double now, double current_window) const {
        // The clock test first: it is false on almost every step, and the conjunction is
        // the same in either order (a corrupt pair is never a glitch).
        if (!ahead_of_clock(k * (window == 0.0 ? current_window : window), now)) return false;
        return plausible_index(k) && plausible_count(curr) && plausible_count(prev) &&
               std::isfinite(window) && window >= 0.0;
    }
    // Before an admission under `current_window`: a pair on another grid becomes a pair on
    // this one whose current window holds everything it still counted (`weighted` at now).
    void migrate(double now, double current_window) {
        if (window == current_window) return;
        *this = WindowPair{aligned_window_index(now, current_window), weighted(now, window), 0.0,
                           current_window};
    }

    // Requires a sanitized pair (k a finite integer: every caller sanitizes first).
    void roll(double now, double w) {
        // Still in window k (most steps): aligned_window_index(now, w, k) would return k
        // itself (its integrality test holds), and nothing below would change.
        if (k * w <= now && now < (k + 1.0) * w) return;
        const double k_now = aligned_window_index(now, w);
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
    double weight_prev(double now, double w) const {
        const double elapsed = std::max(0.0, now - k * w);
        return std::max(0.0, 1.0 - elapsed / w);
    }
    double weighted(double now, double w) const {
        // prev == ±0 (no previous window, the common case for long windows): prev·weight is
        // that same zero (the weight is finite, >= +0), so the division is skipped and the
        // sum is bit-identical.
        if (prev == 0.0) return prev + curr;
        return prev * weight_prev(now, w) + curr;
    }
    // Seconds from `now` until weighted() + cost <= limit (curr/prev as they are now, nothing
    // else admitted); 0 if it already fits. Requires cost <= limit.
    double wait_for(double cost, double limit, double now, double w) const {
        if (weighted(now, w) + cost <= limit + kEps) return 0.0;
        // Not fitting implies prev > 0 in the first branch and curr > 0 in the second.
        double t;
        if (curr + cost <= limit) {
            t = k * w + w * (1.0 - (limit - cost - curr) / prev);
        } else {
            t = (k + 1.0) * w + w * (1.0 - (limit - cost) / curr);
        }
        return std::max(0.0, t - now);
    }
};

}  // namespace ratelimiter

// Sliding window log: exact count of units admitted in (now − window, now].
// The arithmetic is specified in docs/ALGORITHMS.md ("Sliding window log"); shape as
// token_bucket.hpp. The log merges entries with equal timestamps and never holds more than
// `limit` units, so it has at most `limit` entries.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <vector>

#include "ratelimiter/algorithm/common.hpp"

namespace ratelimiter {

struct SlidingWindow {
    // Stable: stores index their tables by it and SQLite rows are named by it.
    static constexpr AlgorithmId id{1};
    static constexpr const char* name = "sliding_window";
    // Decision::meta, in order: the names (and kinds) of result.metadata.
    static constexpr std::array<MetaField, 1> kMetadata{
        {{"current_count", MetaKind::count}}};
    static constexpr std::size_t kStateSize = 0;  // variable: [t1, n1, t2, n2, ...]

    struct Spec {
        std::int64_t limit = 0;
        double window = 0.0;
    };
    struct Params {
        std::int64_t limit = 0;
        double window = 0.0;
    };
    struct Entry {
        double t = 0.0;  // admission time
        double n = 0.0;  // units admitted at t (an integer >= 1)
    };
    // Oldest-first entries in one vector with a moving head: pop_front is O(1) amortised and
    // an idle key costs 48 bytes plus its entries (a std::deque allocates ~600 bytes up front).
    // The oldest and newest times are mirrored beside the vector: a step reads only them
    // unless an entry expires, so a long log's entries (a cache miss each, with many keys)
    // are read only to expire or merge, and written only to append.
    class Log {
    public:
        std::size_t size() const { return items_.size() - head_; }
        bool empty() const { return size() == 0; }
        const Entry& operator[](std::size_t i) const { return items_[head_ + i]; }
        // The oldest and newest entries' times (only when !empty()), without reading them.
        double oldest_t() const { return oldest_t_; }
        double newest_t() const { return newest_t_; }
        const Entry& back() const { return items_.back(); }
        // The newest entry's units, to merge into (its time never changes).
        double& newest_n() { return items_.back().n; }
        void push_back(const Entry& e) {
            if (empty()) oldest_t_ = e.t;
            newest_t_ = e.t;
            items_.push_back(e);
        }
        void pop_back() {
            items_.pop_back();
            if (items_.size() == head_) {
                items_.clear();
                head_ = 0;
            } else {
                newest_t_ = items_.back().t;
            }
        }
        void pop_front() {
            if (++head_ == items_.size()) {
                items_.clear();
                head_ = 0;
                return;
            }
            if (head_ >= 16 && head_ * 2 >= items_.size()) {
                items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(head_));
                head_ = 0;
            }
            oldest_t_ = items_[head_].t;
        }
        auto begin() const { return items_.begin() + static_cast<std::ptrdiff_t>(head_); }
        auto end() const { return items_.end(); }

    private:
        std::vector<Entry> items_;
        std::size_t head_ = 0;
        double oldest_t_ = 0.0;
        double newest_t_ = 0.0;
    };
    struct State {
        Log entries;                // oldest first, strictly increasing t
        double total = 0.0;         // sum of n: kept so a step is O(expired entries)
    };

    static Params make_params(const Spec& spec) {
        require_positive_count(spec.limit, "limit");
        require_window(spec.window);
        return Params{spec.limit, spec.window};
    }

    static State fresh(double /*now*/, const Params& /*p*/) { return State{}; }

    // A step first re-bases a clock glitch (see rebase): a rejection keeps the re-based log,
    // so a store must write the state back when the step admitted *or* rebase changed it.
    static Decision step(State& s, double now, std::int64_t cost, const Params& p) {
        rebase(s, now);
        const View v = view(s, now, p);
        Decision d = decide(s, v, now, cost, p);
        if (!d.allowed) return d;  // a rejection leaves the log untouched
        for (std::size_t i = 0; i < v.expired; ++i) s.entries.pop_front();
        const double need = static_cast<double>(cost);
        if (!s.entries.empty() && s.entries.newest_t() == v.now) {
            s.entries.newest_n() += need;
        } else {
            s.entries.push_back(Entry{v.now, need});
        }
        s.total = v.count + need;
        d.meta[0] = s.total;
        d.remaining = floor_count(static_cast<double>(p.limit) - s.total);
        d.reset_after = s.entries.newest_t() + p.window - now;
        return d;
    }

    static Decision peek(const State& s, double now, const Params& p) {
        if (glitched(s, now)) {  // rare: copy only then, a peek stays O(1) on a long log
            State copy = s;
            rebase(copy, now);
            return decide(copy, view(copy, now, p), now, 1, p);
        }
        return decide(s, view(s, now, p), now, 1, p);
    }

    // Clock glitch (docs/ALGORITHMS.md, "Stored state"): entries more than kClockTolerance
    // ahead of `now` were admitted by a clock that jumped forward and was then corrected.
    // They still count (no fresh quota) but move back to c = max(now, the newest entry within
    // the tolerance), merged into one entry at c (so t stays strictly increasing): they
    // expire one window after c, not after real time catches up. They are the log's newest
    // entries, so this costs O(glitched entries), once. The units are exact integers, so the
    // sum is the same in any order; total is unchanged. Returns whether the log changed.
    static bool rebase(State& s, double now) {
        if (!glitched(s, now)) return false;
        double units = 0.0;
        while (!s.entries.empty() && ahead_of_clock(s.entries.newest_t(), now)) {
            units += s.entries.newest_n();
            s.entries.pop_back();
        }
        if (!s.entries.empty() && s.entries.newest_t() >= now) {
            s.entries.newest_n() += units;  // c = that entry's t (skew within the tolerance)
        } else {
            s.entries.push_back(Entry{now, units});
        }
        return true;
    }

    // The shape every algorithm has (apply_step): the log's re-base needs no params.
    static bool rebase(State& s, double now, const Params& /*p*/) { return rebase(s, now); }

    static bool glitched(const State& s, double now) {
        return !s.entries.empty() && ahead_of_clock(s.entries.newest_t(), now);
    }

    static double fresh_at(const State& s, const Params& p) {
        return s.entries.empty() ? -kInf : s.entries.newest_t() + p.window;
    }

    static void encode(const State& s, std::vector<double>& out) {
        out.clear();
        out.reserve(2 * s.entries.size());
        for (const Entry& e : s.entries) {
            out.push_back(e.t);
            out.push_back(e.n);
        }
    }
    // Rejects anything a step could not have produced (odd length, unordered times,
    // non-integer or non-positive counts), so corrupt rows cannot poison decisions.
    static bool decode(const double* data, std::size_t n, State& s) {
        if (n % 2 != 0) return false;
        State out;
        for (std::size_t i = 0; i < n; i += 2) {
            const Entry e{data[i], data[i + 1]};
            if (!std::isfinite(e.t) || !(e.n >= 1.0) || e.n != std::floor(e.n) ||
                e.n > static_cast<double>(kMaxCount)) {
                return false;
            }
            if (!out.entries.empty() && !(e.t > out.entries.newest_t())) return false;
            out.entries.push_back(e);
            out.total += e.n;
        }
        s = std::move(out);
        return true;
    }

private:
    // The log as seen at `now`, without modifying it.
    struct View {
        double now;           // now, raised to the newest entry (the clock never goes back)
        std::size_t expired;  // leading entries outside the window
        double count;         // units inside the window
    };

    static View view(const State& s, double now, const Params& p) {
        View v{now, 0, s.total};
        if (s.entries.empty()) return v;
        v.now = std::max(now, s.entries.newest_t());
        // `t + window <= now` (not `t <= now - window`): the same sum as retry_after, so a
        // caller waiting exactly retry_after sees that entry expired. Nothing expired: the
        // entries are not read.
        if (s.entries.oldest_t() + p.window > v.now) return v;
        while (v.expired < s.entries.size() && s.entries[v.expired].t + p.window <= v.now) {
            v.count -= s.entries[v.expired].n;
            ++v.expired;
        }
        return v;
    }

    static Decision decide(const State& s, const View& v, double now, std::int64_t cost,
                           const Params& p) {
        const double limit = static_cast<double>(p.limit);
        const double need = static_cast<double>(cost);
        Decision d;
        if (need > limit) {
            d = insufficient_capacity(0, 0.0);
        } else if (v.count + need <= limit) {
            d.allowed = true;
        } else {
            // Oldest entries leave first; wait until enough units have left.
            const double to_leave = v.count + need - limit;
            double left = 0.0;
            for (std::size_t i = v.expired; i < s.entries.size(); ++i) {
                left += s.entries[i].n;
                if (left >= to_leave) {
                    d.retry_after = s.entries[i].t + p.window - now;
                    break;
                }
            }
        }
        d.remaining = floor_count(limit - v.count);
        d.reset_after = v.count > 0.0 ? s.entries.newest_t() + p.window - now : 0.0;
        d.meta[0] = v.count;
        return d;
    }
};

}  // namespace ratelimiter

// Sliding window log: exact count of units admitted in (now − window, now].
// The arithmetic is specified in docs/ALGORITHMS.md ("Sliding window log"); shape as
// token_bucket.hpp. The log merges entries with equal timestamps and never holds more than
// `limit` units, so it has at most `limit` entries.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <new>
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
    // Oldest-first entries in a list of chunks. Why not one vector: at 10,000 keys each
    // append went to the end of its key's own growing buffer, and each doubling copied the
    // whole log into a new buffer (touching every cache line and page of the old and new
    // one); that made an admission ~2x the cost of the other algorithms' (bench_core.py).
    // A log of up to kMaxChunk entries is one chunk that doubles as a vector would (copying
    // at most 16 entries); past that, chunks of kMaxChunk entries are never copied or moved:
    // a full tail gets a new chunk after it, an emptied head chunk is freed. So a small log
    // costs one allocation (16 bytes more than a vector's), and a long log's slack is at
    // most one chunk (a vector's is up to half its size).
    // The oldest and newest times are mirrored beside the chunks: a step reads only them
    // unless an entry expires, so a long log's entries (a cache miss each, with many keys)
    // are read only to expire or merge, and written only to append.
    // The struct is 48 bytes (as the vector-based log was); an empty log holds no chunk or
    // at most the one it emptied (it is refilled next).
    class Log {
        struct Chunk {
            Chunk* next;
            std::uint32_t capacity;  // entries, <= kMaxChunk
            Entry* items() { return reinterpret_cast<Entry*>(this + 1); }
            const Entry* items() const { return reinterpret_cast<const Entry*>(this + 1); }
        };
        static_assert(sizeof(Chunk) % alignof(Entry) == 0, "entries follow the header");

    public:
        // 32 entries: 528-byte chunks (a 3% header), allocated once per 32 appends.
        static constexpr std::size_t kMinChunk = 1;
        static constexpr std::size_t kMaxChunk = 32;

        // Forward iteration, oldest first.
        class const_iterator {
        public:
            using iterator_category = std::forward_iterator_tag;
            using value_type = Entry;
            using difference_type = std::ptrdiff_t;
            using pointer = const Entry*;
            using reference = const Entry&;

            const_iterator() = default;
            reference operator*() const { return chunk_->items()[index_]; }
            pointer operator->() const { return chunk_->items() + index_; }
            const_iterator& operator++() {
                if (++index_ == end_) {
                    chunk_ = chunk_ == log_->tail_ ? nullptr : chunk_->next;
                    index_ = 0;
                    end_ = chunk_ == nullptr ? 0 : log_->end_of(chunk_);
                }
                return *this;
            }
            const_iterator operator++(int) {
                const_iterator before = *this;
                ++*this;
                return before;
            }
            bool operator==(const const_iterator& o) const {
                return chunk_ == o.chunk_ && index_ == o.index_;
            }
            bool operator!=(const const_iterator& o) const { return !(*this == o); }

        private:
            friend class Log;
            const_iterator(const Log* log, const Chunk* chunk, std::size_t index, std::size_t end)
                : log_(log), chunk_(chunk), index_(index), end_(end) {}
            const Log* log_ = nullptr;
            const Chunk* chunk_ = nullptr;  // nullptr: end()
            std::size_t index_ = 0;
            std::size_t end_ = 0;
        };

        Log() noexcept = default;
        Log(const Log& other) {
            try {
                for (const Entry& e : other) push_back(e);
            } catch (...) {
                release();
                throw;
            }
        }
        // noexcept: the memory store's table moves its nodes (never copies them) as it grows.
        Log(Log&& other) noexcept { steal(other); }
        Log& operator=(const Log& other) {
            if (this != &other) {
                Log copy(other);
                release();
                steal(copy);
            }
            return *this;
        }
        Log& operator=(Log&& other) noexcept {
            if (this != &other) {
                release();
                steal(other);
            }
            return *this;
        }
        ~Log() { release(); }

        std::size_t size() const { return size_; }
        bool empty() const { return size_ == 0; }
        // The oldest and newest entries' times (only when !empty()), without reading them.
        double oldest_t() const { return oldest_t_; }
        double newest_t() const { return newest_t_; }
        const Entry& front() const { return head_->items()[head_index_]; }
        const Entry& back() const { return tail_->items()[tail_size_ - 1]; }
        // The i-th oldest entry: O(i / chunk size). Sequential readers iterate instead.
        const Entry& operator[](std::size_t i) const {
            auto it = begin();
            std::advance(it, static_cast<std::ptrdiff_t>(i));
            return *it;
        }
        // The newest entry's units, to merge into (its time never changes).
        double& newest_n() { return tail_->items()[tail_size_ - 1].n; }

        void push_back(const Entry& e) {
            if (tail_ == nullptr) {
                head_ = tail_ = allocate(kMinChunk);
            } else if (tail_size_ == tail_->capacity) {
                if (head_ == tail_ && tail_->capacity < kMaxChunk) {
                    grow_single_chunk();
                } else {
                    Chunk* chunk = allocate(kMaxChunk);
                    tail_->next = chunk;
                    tail_ = chunk;
                    tail_size_ = 0;
                }
            }
            new (tail_->items() + tail_size_) Entry(e);
            ++tail_size_;
            if (size_++ == 0) oldest_t_ = e.t;
            newest_t_ = e.t;
        }
        void pop_back() {
            --tail_size_;
            if (--size_ == 0) {  // head_ == tail_: keep the chunk for the next append
                head_index_ = tail_size_ = 0;
                return;
            }
            if (tail_size_ == 0) {  // rare (clock glitches only): find the chunk before
                Chunk* before = head_;
                while (before->next != tail_) before = before->next;
                deallocate(tail_);
                before->next = nullptr;
                tail_ = before;
                tail_size_ = before->capacity;  // every chunk before the tail is full
            }
            newest_t_ = back().t;
        }
        void pop_front() {
            ++head_index_;
            if (--size_ == 0) {  // head_ == tail_: keep the chunk for the next append
                head_index_ = tail_size_ = 0;
                return;
            }
            if (head_ != tail_ && head_index_ == head_->capacity) {
                Chunk* spent = head_;
                head_ = head_->next;
                head_index_ = 0;
                deallocate(spent);
            }
            oldest_t_ = front().t;
        }
        const_iterator begin() const {
            return empty() ? end() : const_iterator(this, head_, head_index_, end_of(head_));
        }
        const_iterator end() const { return const_iterator(this, nullptr, 0, 0); }

    private:
        // A log of one chunk below kMaxChunk grows as a vector would (double, copy its at
        // most 16 live entries to the front of the new chunk): small logs cost one
        // allocation, and only logs past kMaxChunk entries are chained.
        void grow_single_chunk() {
            const std::size_t live = tail_size_ - head_index_;
            Chunk* bigger = allocate(std::min(2 * static_cast<std::size_t>(tail_->capacity),
                                              kMaxChunk));
            std::copy(tail_->items() + head_index_, tail_->items() + tail_size_, bigger->items());
            deallocate(tail_);
            head_ = tail_ = bigger;
            head_index_ = 0;
            tail_size_ = static_cast<std::uint32_t>(live);
        }
        // One past the last entry used in `chunk`: every chunk but the tail is full.
        std::size_t end_of(const Chunk* chunk) const {
            return chunk == tail_ ? tail_size_ : chunk->capacity;
        }
        static Chunk* allocate(std::size_t capacity) {
            void* raw = ::operator new(sizeof(Chunk) + capacity * sizeof(Entry));
            return new (raw) Chunk{nullptr, static_cast<std::uint32_t>(capacity)};
        }
        static void deallocate(Chunk* chunk) noexcept { ::operator delete(chunk); }
        void release() noexcept {
            while (head_ != nullptr) {
                Chunk* next = head_ == tail_ ? nullptr : head_->next;
                deallocate(head_);
                head_ = next;
            }
            tail_ = nullptr;
            head_index_ = tail_size_ = 0;
            size_ = 0;
        }
        void steal(Log& other) noexcept {
            head_ = other.head_;
            tail_ = other.tail_;
            head_index_ = other.head_index_;
            tail_size_ = other.tail_size_;
            size_ = other.size_;
            oldest_t_ = other.oldest_t_;
            newest_t_ = other.newest_t_;
            other.head_ = other.tail_ = nullptr;
            other.head_index_ = other.tail_size_ = 0;
            other.size_ = 0;
        }

        Chunk* head_ = nullptr;        // oldest chunk; live entries from head_index_
        Chunk* tail_ = nullptr;        // newest chunk; entries [0, tail_size_) used
        std::uint32_t head_index_ = 0;
        std::uint32_t tail_size_ = 0;
        std::size_t size_ = 0;
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
        for (const Entry& e : s.entries) {
            if (!(e.t + p.window <= v.now)) break;
            v.count -= e.n;
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
            auto it = s.entries.begin();
            std::advance(it, static_cast<std::ptrdiff_t>(v.expired));
            for (; it != s.entries.end(); ++it) {
                left += it->n;
                if (left >= to_leave) {
                    d.retry_after = it->t + p.window - now;
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

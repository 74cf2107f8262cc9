#include <deque>

#include "algorithm_properties.hpp"

using namespace rl_test;
using ratelimiter::SlidingWindow;

namespace {
SlidingWindow::Params params(std::int64_t limit, double window) {
    return SlidingWindow::make_params({limit, window});
}
}  // namespace

TEST_CASE("sliding log: exact admitted sequence", "[sliding_window]") {
    const auto p = params(3, 10.0);
    auto s = SlidingWindow::fresh(0.0, p);
    REQUIRE(SlidingWindow::step(s, 0.0, 1, p).allowed);
    REQUIRE(SlidingWindow::step(s, 1.0, 1, p).allowed);
    const auto third = SlidingWindow::step(s, 2.0, 1, p);
    REQUIRE(third.allowed);
    REQUIRE(third.remaining == 0);
    REQUIRE(third.meta[0] == 3.0);
    REQUIRE(third.reset_after == 10.0);  // newest entry (t=2) leaves at 12

    const auto rejected = SlidingWindow::step(s, 3.0, 1, p);
    REQUIRE_FALSE(rejected.allowed);
    REQUIRE(rejected.retry_after == 7.0);  // the t=0 entry leaves at 10
    const auto two = SlidingWindow::step(s, 3.0, 2, p);
    REQUIRE(two.retry_after == 8.0);  // two units: the t=1 entry must leave too

    REQUIRE_FALSE(SlidingWindow::step(s, 9.999, 1, p).allowed);
    const auto at_ten = SlidingWindow::step(s, 10.0, 1, p);  // window is (0, 10]
    REQUIRE(at_ten.allowed);
    REQUIRE(at_ten.meta[0] == 3.0);
    REQUIRE(encoded<SlidingWindow>(s) == std::vector<double>{1.0, 1.0, 2.0, 1.0, 10.0, 1.0});
}

TEST_CASE("sliding log: same-timestamp entries merge; state bounded by limit",
          "[sliding_window]") {
    const auto p = params(5, 1.0);
    auto s = SlidingWindow::fresh(0.0, p);
    REQUIRE(SlidingWindow::step(s, 0.5, 2, p).allowed);
    REQUIRE(SlidingWindow::step(s, 0.5, 1, p).allowed);
    REQUIRE(encoded<SlidingWindow>(s) == std::vector<double>{0.5, 3.0});
    // Many requests at distinct instants: never more than `limit` entries.
    for (int i = 0; i < 1000; ++i) {
        SlidingWindow::step(s, 1.0 + i * 0.01, 1, p);
        REQUIRE(s.entries.size() <= 5);
    }
}

TEST_CASE("sliding log: clock going backwards counts as no time passing", "[sliding_window]") {
    const auto p = params(2, 10.0);
    auto s = SlidingWindow::fresh(0.0, p);
    REQUIRE(SlidingWindow::step(s, 20.0, 1, p).allowed);
    const auto back = SlidingWindow::step(s, 15.0, 1, p);  // recorded at 20, not 15
    REQUIRE(back.allowed);
    REQUIRE(encoded<SlidingWindow>(s) == std::vector<double>{20.0, 2.0});
    const auto full = SlidingWindow::step(s, 15.0, 1, p);
    REQUIRE_FALSE(full.allowed);
    REQUIRE(full.retry_after == 15.0);  // 20 + 10 - 15
}

TEST_CASE("sliding log never admits more than limit in any window-length span",
          "[sliding_window]") {
    const std::int64_t limit = 7;
    const double window = 2.0;
    const auto p = params(limit, window);
    std::mt19937 rng(7);
    const auto trace = random_trace(rng, 5000, 50.0, 0.25, 3);
    auto s = SlidingWindow::fresh(trace.front().now, p);
    std::deque<Event> admitted;
    std::int64_t in_span = 0;
    int total = 0;
    for (const Event& e : trace) {
        if (!SlidingWindow::step(s, e.now, e.cost, p).allowed) continue;
        ++total;
        admitted.push_back(e);
        in_span += e.cost;
        // Units admitted in (e.now - window, e.now], recomputed independently of the log.
        while (!(admitted.front().now > e.now - window)) {
            in_span -= admitted.front().cost;
            admitted.pop_front();
        }
        REQUIRE(in_span <= limit);
    }
    REQUIRE(total > 1000);
}

TEST_CASE("sliding log: decode rejects malformed states", "[sliding_window]") {
    SlidingWindow::State s;
    const std::vector<double> odd{1.0, 1.0, 2.0};
    const std::vector<double> unordered{2.0, 1.0, 1.0, 1.0};
    const std::vector<double> fractional{1.0, 0.5};
    const std::vector<double> good{1.0, 2.0, 3.0, 1.0};
    REQUIRE_FALSE(SlidingWindow::decode(odd.data(), odd.size(), s));
    REQUIRE_FALSE(SlidingWindow::decode(unordered.data(), unordered.size(), s));
    REQUIRE_FALSE(SlidingWindow::decode(fractional.data(), fractional.size(), s));
    REQUIRE(SlidingWindow::decode(good.data(), good.size(), s));
    REQUIRE(s.total == 3.0);
}

TEST_CASE("sliding log: invalid parameters throw ConfigError", "[sliding_window]") {
    require_config_error([] { params(0, 1.0); }, "limit");
    require_config_error([] { params(1, 0.0); }, "window");
    require_config_error([] { params(1, std::nan("")); }, "window");
}

TEST_CASE("sliding log: properties on random traces", "[sliding_window][properties]") {
    PropertyOptions o;
    o.capacity = 6;
    o.grid = 1.5;
    check_all_properties<SlidingWindow>(params(6, 10.0), o);
    o.grid = 0.03;
    check_all_properties<SlidingWindow>(params(6, 0.1), o);
}

TEST_CASE("sliding log: a corrected forward clock glitch moves the future entries to now",
          "[sliding_window][glitch]") {
    const auto p = params(5, 60.0);
    constexpr double kYear = 365 * 86400.0;
    auto s = SlidingWindow::fresh(0.0, p);
    REQUIRE(SlidingWindow::step(s, 1000.0 + kYear, 2, p).allowed);
    REQUIRE(SlidingWindow::step(s, 1000.0 + kYear + 5.0, 3, p).allowed);  // the key is full

    // The clock is corrected: the 5 glitched units still count (no fresh quota), at 1001 ...
    const auto peeked = SlidingWindow::peek(s, 1001.0, p);
    REQUIRE_FALSE(peeked.allowed);
    REQUIRE(peeked.retry_after == 60.0);
    REQUIRE(encoded<SlidingWindow>(s).size() == 4);  // a peek changes nothing
    const auto rejected = SlidingWindow::step(s, 1001.0, 1, p);
    REQUIRE_FALSE(rejected.allowed);
    REQUIRE(rejected.meta[0] == 5.0);
    REQUIRE(rejected.retry_after == 60.0);  // ... so they leave at 1061, not in a year
    REQUIRE(rejected.reset_after == 60.0);
    // The rejection keeps the re-based log (else a full key would stay locked: each
    // request would re-base to its own now and be rejected again).
    REQUIRE(encoded<SlidingWindow>(s) == std::vector<double>{1001.0, 5.0});
    REQUIRE(SlidingWindow::fresh_at(s, p) == 1061.0);
    REQUIRE_FALSE(SlidingWindow::step(s, 1060.0, 1, p).allowed);
    const auto back = SlidingWindow::step(s, 1061.0, 5, p);
    REQUIRE(back.allowed);
    REQUIRE(back.remaining == 0);
}

TEST_CASE("sliding log: glitch tolerance is 60 s; entries within it stay, order is kept",
          "[sliding_window][glitch]") {
    const auto p = params(10, 100.0);
    auto s = SlidingWindow::fresh(0.0, p);
    REQUIRE(SlidingWindow::step(s, 1030.0, 1, p).allowed);  // 30 s ahead: skew, trusted
    REQUIRE(SlidingWindow::step(s, 1060.0, 1, p).allowed);  // exactly 60 s ahead: trusted
    REQUIRE(SlidingWindow::step(s, 1090.0, 2, p).allowed);  // 90 s ahead: a glitch
    REQUIRE(SlidingWindow::step(s, 1100.0, 3, p).allowed);  // 100 s ahead: a glitch

    // At 1000, entries at t > 1060 merge into the newest entry within the tolerance (t=1060).
    const auto d = SlidingWindow::step(s, 1000.0, 1, p);
    REQUIRE(d.allowed);
    REQUIRE(d.meta[0] == 8.0);
    REQUIRE(d.reset_after == 160.0);  // newest entry at 1060 (vnow) leaves at 1160
    REQUIRE(encoded<SlidingWindow>(s) == std::vector<double>{1030.0, 1.0, 1060.0, 7.0});

    // Nothing within the tolerance: the glitched units move to now itself.
    auto t = SlidingWindow::fresh(0.0, p);
    REQUIRE(SlidingWindow::step(t, 990.0, 1, p).allowed);
    REQUIRE(SlidingWindow::step(t, 1061.0, 2, p).allowed);
    REQUIRE(SlidingWindow::rebase(t, 1000.0));
    REQUIRE_FALSE(SlidingWindow::rebase(t, 1000.0));  // idempotent
    REQUIRE(encoded<SlidingWindow>(t) == std::vector<double>{990.0, 1.0, 1000.0, 2.0});

    // Only glitched entries: the whole log becomes one entry at now.
    auto u = SlidingWindow::fresh(0.0, p);
    REQUIRE(SlidingWindow::step(u, 2000.0, 4, p).allowed);
    REQUIRE(SlidingWindow::step(u, 2001.0, 1, p).allowed);
    REQUIRE(SlidingWindow::peek(u, 1000.0, p).meta[0] == 5.0);
    REQUIRE(SlidingWindow::rebase(u, 1000.0));
    REQUIRE(encoded<SlidingWindow>(u) == std::vector<double>{1000.0, 5.0});
}

namespace {
using Entry = SlidingWindow::Entry;
using Log = SlidingWindow::Log;

std::vector<double> flat(const Log& log) {
    std::vector<double> out;
    for (const Entry& e : log) {
        out.push_back(e.t);
        out.push_back(e.n);
    }
    return out;
}
std::vector<double> flat(const std::deque<Entry>& model) {
    std::vector<double> out;
    for (const Entry& e : model) {
        out.push_back(e.t);
        out.push_back(e.n);
    }
    return out;
}
void require_same(const Log& log, const std::deque<Entry>& model) {
    REQUIRE(log.size() == model.size());
    REQUIRE(log.empty() == model.empty());
    REQUIRE(flat(log) == flat(model));
    if (model.empty()) return;
    REQUIRE(log.oldest_t() == model.front().t);
    REQUIRE(log.newest_t() == model.back().t);
    REQUIRE(log.front().t == model.front().t);
    REQUIRE(log.back().n == model.back().n);
    REQUIRE(log[model.size() - 1].t == model.back().t);
}
}  // namespace

// The log is a list of chunks (sizes follow the log's, up to Log::kMaxChunk): pushes and pops
// at both ends across chunk boundaries, emptying and refilling, copies and moves, all
// checked against a std::deque after every operation.
TEST_CASE("sliding log: the chunked log behaves as a deque", "[sliding_window][log]") {
    std::mt19937 rng(15);
    Log log;
    std::deque<Entry> model;
    double t = 0.0;
    for (int i = 0; i < 20000; ++i) {
        const auto op = rng() % 100;
        // Phases of growth and shrinkage, so the log crosses many chunk sizes and empties.
        const bool growing = (i / 2000) % 2 == 0;
        if (model.empty() || op < (growing ? 70u : 30u)) {
            t += 1.0;
            const Entry e{t, static_cast<double>(1 + rng() % 3)};
            log.push_back(e);
            model.push_back(e);
        } else if (op < 95) {
            log.pop_front();
            model.pop_front();
        } else {
            log.pop_back();
            model.pop_back();
        }
        if (!model.empty() && rng() % 7 == 0) {
            log.newest_n() += 1.0;
            model.back().n += 1.0;
        }
        require_same(log, model);
        if (i % 997 == 0) {
            Log copy(log);
            require_same(copy, model);
            Log moved(std::move(copy));
            require_same(moved, model);
            REQUIRE(copy.empty());  // NOLINT(bugprone-use-after-move): moved-from is empty
            Log assigned;
            assigned.push_back(Entry{-1.0, 1.0});
            assigned = moved;
            require_same(assigned, model);
            assigned = std::move(moved);
            require_same(assigned, model);
            log = assigned;  // copy-assign over a non-empty log
            require_same(log, model);
        }
    }
}

// A log long enough to span many chunks: expiry from the head, a retry_after found deep in
// the log, and a glitch re-base popping entries across chunk boundaries.
TEST_CASE("sliding log: a long log across chunks decides exactly", "[sliding_window][log]") {
    const std::int64_t limit = 500;
    const auto p = params(limit, 1000.0);
    auto s = SlidingWindow::fresh(0.0, p);
    for (int i = 0; i < limit; ++i) REQUIRE(SlidingWindow::step(s, 1.0 * i, 1, p).allowed);
    REQUIRE(s.entries.size() == 500);
    // Full: 7 units must leave; the 7th oldest (t=6) leaves at 1006.
    const auto rejected = SlidingWindow::step(s, 600.0, 7, p);
    REQUIRE_FALSE(rejected.allowed);
    REQUIRE(rejected.retry_after == 406.0);
    // At 1100.5 the entries at t <= 100 (101 of them) have expired.
    const auto d = SlidingWindow::step(s, 1100.5, 1, p);
    REQUIRE(d.allowed);
    REQUIRE(d.meta[0] == 400.0);
    REQUIRE(s.entries.size() == 400);
    REQUIRE(s.entries.oldest_t() == 101.0);
    REQUIRE(s.entries.front().t == 101.0);

    // Entries admitted by a clock running ~4 minutes ahead (expiring t <= 389 as it goes),
    // then the clock is corrected to 1150: those 90 entries (t > 1210) merge into one entry
    // at now, popped from the back across several chunks.
    for (int i = 0; i < 90; ++i) REQUIRE(SlidingWindow::step(s, 1300.0 + i, 1, p).allowed);
    REQUIRE(s.entries.size() == 110 + 1 + 90);  // t = 390..499, 1100.5, 1300..1389
    REQUIRE(SlidingWindow::peek(s, 1150.0, p).meta[0] == 201.0);
    REQUIRE(SlidingWindow::rebase(s, 1150.0));
    const auto flat_state = encoded<SlidingWindow>(s);
    REQUIRE(flat_state.size() == 2 * 112);
    REQUIRE(flat_state[0] == 390.0);
    REQUIRE(flat_state[flat_state.size() - 4] == 1100.5);
    REQUIRE(flat_state[flat_state.size() - 2] == 1150.0);
    REQUIRE(flat_state.back() == 90.0);
    REQUIRE(s.entries.newest_t() == 1150.0);
    REQUIRE(s.total == 201.0);
}

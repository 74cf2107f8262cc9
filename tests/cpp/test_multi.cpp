// The apply-step helper (store/apply_step.hpp), the multi-limit decision (store/multi.hpp)
// and adjust (algorithm/adjust.hpp), alone and on the memory and SQLite stores.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "catch.hpp"
#include "ratelimiter/store/apply_step.hpp"
#include "ratelimiter/store/memory_store.hpp"
#include "ratelimiter/store/multi.hpp"
#include "ratelimiter/store/sqlite_store.hpp"

using namespace ratelimiter;

namespace {

const double kNow = 1000.0;

std::vector<FixedWindow::Params> fixed(std::initializer_list<std::pair<std::int64_t, double>> l) {
    std::vector<FixedWindow::Params> out;
    for (const auto& [limit, window] : l) out.push_back(FixedWindow::make_params({limit, window}));
    return out;
}

}  // namespace

TEST_CASE("apply_step saves only what a step changed", "[apply_step]") {
    const auto p = TokenBucket::make_params({2, 10.0, std::nullopt});
    auto state = TokenBucket::fresh(kNow, p);
    int saves = 0;
    double saved_at = 0.0;
    const auto save = [&](const TokenBucket::State&, double fresh_at) {
        ++saves;
        saved_at = fresh_at;
    };
    REQUIRE(apply_step<TokenBucket>(state, kNow, 1, p, Operation::peek, save).allowed);
    REQUIRE(saves == 0);
    REQUIRE(apply_step<TokenBucket>(state, kNow, 2, p, Operation::consume, save).allowed);
    REQUIRE(saves == 1);
    REQUIRE(saved_at == Approx(kNow + 10.0));
    REQUIRE_FALSE(apply_step<TokenBucket>(state, kNow, 1, p, Operation::consume, save).allowed);
    REQUIRE(saves == 1);  // a rejection writes nothing
}

TEST_CASE("stores hand the per-call input (the adaptive aggregate load) to the step",
          "[apply_step]") {
    // limit 10 / 10 s, burst_multiplier 2: effective_burst 20 at a low load, 10 at load >= 0.8.
    Adaptive::Spec spec;
    spec.limit = 10;
    spec.window = 10.0;
    const auto p = Adaptive::make_params(spec);
    const auto dir = std::filesystem::temp_directory_path() /
                     ("rl_step_input_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    MemoryStore memory;
    SqliteStore sqlite((dir / "db.sqlite").string(), SqliteStore::Options{});
    for (const double load : {0.0, 0.9}) {
        CAPTURE(load);
        const std::string key = "k" + std::to_string(load);
        const double burst = load == 0.0 ? 20.0 : 10.0;
        REQUIRE(memory.apply<Adaptive>(key, kNow, 1, p, Operation::peek, load).meta[2] == burst);
        REQUIRE(sqlite.apply<Adaptive>(key, kNow, 1, p, Operation::peek, load).meta[2] == burst);
        int admitted_memory = 0;
        int admitted_sqlite = 0;
        for (int i = 0; i < 30; ++i) {
            admitted_memory += memory.apply<Adaptive>(key, kNow, 1, p, Operation::consume, load)
                                   .allowed;
            admitted_sqlite += sqlite.apply<Adaptive>(key, kNow, 1, p, Operation::consume, load)
                                   .allowed;
        }
        REQUIRE(admitted_memory == static_cast<int>(burst));
        REQUIRE(admitted_sqlite == static_cast<int>(burst));
    }
    // Without an input the key's own sensor decides: 20 admitted in one instant.
    REQUIRE(memory.apply<Adaptive>("own", kNow, 1, p, Operation::peek).meta[5] == 0.0);
    std::filesystem::remove_all(dir);
}

TEST_CASE("apply_encoded_step decodes, steps and encodes; corrupt rows are reported",
          "[apply_step]") {
    const auto p = FixedWindow::make_params({3, 10.0});
    EncodedWrite out;
    const Decision d = apply_encoded_step<FixedWindow>(false, nullptr, 0, kNow, 2, p,
                                                       Operation::consume, out, [] { FAIL(); });
    REQUIRE(d.allowed);
    REQUIRE(out.write);
    REQUIRE(out.encoded == std::vector<double>{100.0, 2.0, 10.0});
    REQUIRE(out.fresh_at == 1010.0);
    EncodedWrite again;
    const Decision d2 = apply_encoded_step<FixedWindow>(true, out.encoded.data(), out.encoded.size(),
                                                        kNow, 2, p, Operation::consume, again,
                                                        [] { FAIL(); });
    REQUIRE_FALSE(d2.allowed);
    REQUIRE_FALSE(again.write);
    const double bad[5] = {1, 2, 3, 4, 5};
    bool reported = false;
    REQUIRE_THROWS_AS(apply_encoded_step<FixedWindow>(
                          true, bad, 5, kNow, 1, p, Operation::consume, again,
                          [&] {
                              reported = true;
                              throw BackendError("corrupt");
                          }),
                      BackendError);
    REQUIRE(reported);
}

TEST_CASE("apply_multi commits all or nothing", "[multi]") {
    const auto params = fixed({{5, 1.0}, {7, 60.0}});
    std::vector<FixedWindow::State> states = {FixedWindow::fresh(kNow, params[0]),
                                              FixedWindow::fresh(kNow, params[1])};
    Decision out[2];
    std::vector<std::size_t> saved;
    const auto save = [&](std::size_t i, const FixedWindow::State&, double) { saved.push_back(i); };
    const std::int64_t four[2] = {4, 4};
    REQUIRE(apply_multi<FixedWindow>(states.data(), params.data(), four, 2, kNow,
                                     MultiOp::consume, out, save));
    REQUIRE(saved == std::vector<std::size_t>{0, 1});
    REQUIRE(out[0].remaining == 1);
    REQUIRE(out[1].remaining == 3);
    // Cost 3: the first limit refuses (4 + 3 > 5) while the second would admit: nothing is
    // consumed anywhere.
    saved.clear();
    const std::int64_t three[2] = {3, 3};
    REQUIRE_FALSE(apply_multi<FixedWindow>(states.data(), params.data(), three, 2, kNow,
                                           MultiOp::consume, out, save));
    REQUIRE(saved.empty());
    REQUIRE_FALSE(out[0].allowed);
    REQUIRE(out[1].allowed);  // would admit: reported as the state is, unconsumed
    REQUIRE(out[1].remaining == 3);
    REQUIRE(out[1].retry_after == 0.0);
    REQUIRE(states[1].count == 4.0);
    // A limit of cost 0 is not consulted.
    const std::int64_t only_second[2] = {0, 3};
    REQUIRE(apply_multi<FixedWindow>(states.data(), params.data(), only_second, 2, kNow,
                                     MultiOp::consume, out, save));
    REQUIRE(saved == std::vector<std::size_t>{1});
    REQUIRE(states[0].count == 4.0);
    REQUIRE(states[1].count == 7.0);
    const MultiSummary s = summarize(out, 2);
    REQUIRE(s.allowed);
    REQUIRE(s.restrictive == 1);  // remaining 0 < 1
}

namespace {

const double kYear = 365.0 * 86400.0;

// A state filled by a clock a year ahead, then asked at kNow (corrected): the peek writes
// nothing; the step rejects (the units still count) but saves the re-based state, so the
// next rejection has nothing to save and the reported retry_after admits.
template <class Algo>
void glitch_rebase_is_saved_on_rejection(const typename Algo::Params& p) {
    INFO(Algo::name);
    typename Algo::State state = Algo::fresh(kNow + kYear, p);
    int saves = 0;
    double saved_fresh_at = 0.0;
    const auto save = [&](const typename Algo::State&, double fresh_at) {
        ++saves;
        saved_fresh_at = fresh_at;
    };
    int admitted = 0;
    while (apply_step<Algo>(state, kNow + kYear, 1, p, Operation::consume, save).allowed) {
        ++admitted;
    }
    REQUIRE(admitted > 0);
    REQUIRE(saves == admitted);
    REQUIRE_FALSE(apply_step<Algo>(state, kNow, 1, p, Operation::peek, save).allowed);
    REQUIRE(saves == admitted);  // a peek never writes
    const Decision d = apply_step<Algo>(state, kNow, 1, p, Operation::consume, save);
    REQUIRE_FALSE(d.allowed);
    REQUIRE(saves == admitted + 1);  // the re-base, saved though the step rejected
    REQUIRE(saved_fresh_at < kNow + kYear);
    REQUIRE_FALSE(Algo::rebase(state, kNow, p));
    REQUIRE_FALSE(apply_step<Algo>(state, kNow, 1, p, Operation::consume, save).allowed);
    REQUIRE(saves == admitted + 1);  // a plain rejection writes nothing
    REQUIRE(d.retry_after > 0.0);
    REQUIRE(d.retry_after <= 60.0);
    REQUIRE(apply_step<Algo>(state, kNow + d.retry_after, 1, p, Operation::consume, save)
                .allowed);
}

}  // namespace

TEST_CASE("apply_step saves a clock-glitch re-base even on a rejection, every algorithm",
          "[apply_step][glitch]") {
    glitch_rebase_is_saved_on_rejection<TokenBucket>(
        TokenBucket::make_params({5, 60.0, std::nullopt}));
    glitch_rebase_is_saved_on_rejection<LeakyBucket>(
        LeakyBucket::make_params({5, 60.0, std::nullopt}));
    glitch_rebase_is_saved_on_rejection<Gcra>(Gcra::make_params({5, 60.0, std::nullopt}));
    glitch_rebase_is_saved_on_rejection<FixedWindow>(FixedWindow::make_params({5, 60.0}));
    glitch_rebase_is_saved_on_rejection<SlidingWindowCounter>(
        SlidingWindowCounter::make_params({5, 60.0}));
    glitch_rebase_is_saved_on_rejection<SlidingWindow>(SlidingWindow::make_params({5, 60.0}));
    Adaptive::Spec spec;
    spec.limit = 5;
    spec.window = 60.0;
    spec.burst_multiplier = 1.0;
    glitch_rebase_is_saved_on_rejection<Adaptive>(Adaptive::make_params(spec));
}

TEST_CASE("apply_step: a corrupt state is fresh and not written by a rejection",
          "[apply_step][glitch]") {
    const auto p = TokenBucket::make_params({1, 60.0, std::nullopt});
    TokenBucket::State state{std::nan(""), kNow + kYear};
    int saves = 0;
    const auto save = [&](const TokenBucket::State&, double) { ++saves; };
    REQUIRE_FALSE(TokenBucket::rebase(state, kNow, p));
    REQUIRE(apply_step<TokenBucket>(state, kNow, 1, p, Operation::consume, save).allowed);
    REQUIRE_FALSE(apply_step<TokenBucket>(state, kNow, 1, p, Operation::consume, save).allowed);
    REQUIRE(saves == 1);
}

TEST_CASE("apply_multi saves each re-based state on a rejection, consuming nothing",
          "[multi][glitch]") {
    const std::vector<TokenBucket::Params> params{
        TokenBucket::make_params({5, 60.0, std::nullopt}),
        TokenBucket::make_params({50, 3600.0, std::nullopt})};
    std::vector<TokenBucket::State> states{TokenBucket::fresh(kNow + kYear, params[0]),
                                           TokenBucket::fresh(kNow + kYear, params[1])};
    Decision out[2];
    std::vector<std::size_t> saved;
    const auto save = [&](std::size_t i, const TokenBucket::State&, double) {
        saved.push_back(i);
    };
    const std::int64_t five[2] = {5, 5};
    REQUIRE(apply_multi<TokenBucket>(states.data(), params.data(), five, 2, kNow + kYear,
                                     MultiOp::consume, out, save));
    saved.clear();
    const std::int64_t one[2] = {1, 1};
    // Corrected clock: the minute limit refuses, the hour limit would admit.
    REQUIRE(apply_multi<TokenBucket>(states.data(), params.data(), one, 2, kNow, MultiOp::peek,
                                     out, save));
    REQUIRE(saved.empty());  // a peek never writes
    REQUIRE_FALSE(apply_multi<TokenBucket>(states.data(), params.data(), one, 2, kNow,
                                           MultiOp::consume, out, save));
    REQUIRE(saved == std::vector<std::size_t>{0, 1});
    REQUIRE(states[0].last == kNow);
    REQUIRE(states[1].last == kNow);
    REQUIRE(states[0].tokens == 0.0);
    REQUIRE(states[1].tokens == 45.0);  // re-based, not charged
    REQUIRE(out[0].retry_after == Approx(12.0));
    REQUIRE(out[1].allowed);
    saved.clear();
    REQUIRE_FALSE(apply_multi<TokenBucket>(states.data(), params.data(), one, 2, kNow + 6.0,
                                           MultiOp::consume, out, save));
    REQUIRE(saved.empty());  // nothing re-based: a rejection writes nothing
    REQUIRE(apply_multi<TokenBucket>(states.data(), params.data(), one, 2, kNow + 12.0,
                                     MultiOp::consume, out, save));
}

TEST_CASE("summarize: largest refusing wait; insufficient capacity is inf", "[multi]") {
    Decision d[3];
    d[0].allowed = false;
    d[0].retry_after = 2.0;
    d[0].remaining = 0;
    d[0].reset_after = 5.0;
    d[1].allowed = false;
    d[1].retry_after = 9.0;
    d[1].remaining = 0;
    d[1].reset_after = 60.0;
    d[2].allowed = true;
    d[2].remaining = 3;
    MultiSummary s = summarize(d, 3);
    REQUIRE_FALSE(s.allowed);
    REQUIRE(s.retry_after == 9.0);
    REQUIRE(s.restrictive == 1);  // tie on remaining: the longest reset_after
    d[2].allowed = false;
    d[2].insufficient_capacity = true;
    s = summarize(d, 3);
    REQUIRE(s.insufficient_capacity);
    REQUIRE(s.retry_after == kInf);
}

TEST_CASE("adjust: charges carry debt (buckets: one bucket at most), refunds cap",
          "[adjust]") {
    const auto fw = FixedWindow::make_params({10, 10.0});
    auto f = FixedWindow::fresh(kNow, fw);
    adjust_state(f, kNow, 15, fw);
    REQUIRE(f.count == 15.0);
    REQUIRE(FixedWindow::peek(f, kNow, fw).retry_after == 10.0);
    adjust_state(f, kNow, -100, fw);
    REQUIRE(f.count == 0.0);

    const auto tb = TokenBucket::make_params({10, 10.0, std::nullopt});
    auto t = TokenBucket::fresh(kNow, tb);
    adjust_state(t, kNow, 25, tb);  // one bucket of debt at most: -10, not -15
    REQUIRE(t.tokens == -10.0);
    REQUIRE(TokenBucket::peek(t, kNow, tb).retry_after == 11.0);  // (1 - (-10)) / 1
    adjust_state(t, kNow + 2.0, -3, tb);  // refills 2, refunds 3
    REQUIRE(t.tokens == -5.0);
    adjust_state(t, kNow + 2.0, -100, tb);
    REQUIRE(t.tokens == 10.0);

    const auto lb = LeakyBucket::make_params({10, 10.0, std::nullopt});
    auto l = LeakyBucket::fresh(kNow, lb);
    adjust_state(l, kNow, 25, lb);  // level at most 2·capacity
    REQUIRE(l.level == 20.0);
    REQUIRE(LeakyBucket::peek(l, kNow, lb).retry_after == 11.0);  // (20 + 1 - 10) / 1
    adjust_state(l, kNow, -100, lb);
    REQUIRE(l.level == 0.0);

    const auto gc = Gcra::make_params({10, 10.0, std::nullopt});
    auto g = Gcra::fresh(kNow, gc);
    adjust_state(g, kNow, 13, gc);
    REQUIRE(g.level == 13.0);
    REQUIRE(Gcra::peek(g, kNow, gc).retry_after == 4.0);  // (13 + 1 - 10) · 1
    REQUIRE(Gcra::peek(g, kNow + 4.0, gc).allowed);        // exactly when the debt is repaid
    adjust_state(g, kNow, 100, gc);
    REQUIRE(g.level == 20.0);

    Adaptive::Spec as;
    as.limit = 10;
    as.window = 10.0;
    const auto ap = Adaptive::make_params(as);  // max burst 20, 1 unit/s
    auto a = Adaptive::fresh(kNow, ap);
    adjust_state(a, kNow, 37, ap);  // guard and sensor carry it whole, the bucket empties
    REQUIRE(a.guard.curr == 37.0);
    REQUIRE(a.load.curr == 37.0);
    REQUIRE(a.tokens == 0.0);
    adjust_state(a, kNow, -100, ap);
    REQUIRE(a.guard.curr == 0.0);
    REQUIRE(a.load.curr == 0.0);
    REQUIRE(a.tokens == 20.0);

    const auto sw = SlidingWindow::make_params({10, 10.0});
    auto log = SlidingWindow::fresh(kNow, sw);
    adjust_state(log, kNow, 4, sw);
    adjust_state(log, kNow + 1.0, 3, sw);
    adjust_state(log, kNow + 2.0, -5, sw);  // newest first: 3 at +1 s, then 2 of the 4
    std::vector<double> flat;
    SlidingWindow::encode(log, flat);
    REQUIRE(flat == std::vector<double>{kNow, 2.0});
}

TEST_CASE("memory store: 8 threads on one key with two limits admit the tighter one",
          "[multi][memory_store]") {
    MemoryStore store;
    const auto params = fixed({{5, 1.0}, {20, 60.0}});
    const std::vector<std::string> keys = {"k\x1f" "5/1", "k\x1f" "20/60"};
    std::atomic<int> admitted{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
        threads.emplace_back([&] {
            const std::int64_t costs[2] = {1, 1};
            Decision out[2];
            for (int i = 0; i < 100; ++i) {
                admitted += store.apply_multi<FixedWindow>("k", keys, params.data(), costs, kNow,
                                                           MultiOp::consume, out);
            }
        });
    }
    for (auto& th : threads) th.join();
    REQUIRE(admitted == 5);
    const std::int64_t ones[2] = {1, 1};
    Decision out[2];
    store.apply_multi<FixedWindow>("k", keys, params.data(), ones, kNow, MultiOp::peek, out);
    REQUIRE(out[0].remaining == 0);
    REQUIRE(out[1].remaining == 15);  // never charged for a rejection
    store.erase_multi<FixedWindow>("k", keys);
    REQUIRE(store.size() == 0);
}

TEST_CASE("SQLite store: a multi decision is one transaction; adjust is stored",
          "[multi][sqlite_store]") {
    const std::string path =
        (std::filesystem::temp_directory_path() / ("rl-multi-" + std::to_string(getpid()) + ".db"))
            .string();
    std::filesystem::remove(path);
    {
        SqliteStore store(path, SqliteStore::Options{});
        const auto params = fixed({{2, 1.0}, {3, 60.0}});
        const std::vector<std::string> keys = {"a", "b"};
        const std::int64_t one[2] = {1, 1};
        Decision out[2];
        REQUIRE(store.apply_multi<FixedWindow>(keys, params.data(), one, kNow, MultiOp::consume, out));
        REQUIRE(store.apply_multi<FixedWindow>(keys, params.data(), one, kNow, MultiOp::consume, out));
        REQUIRE_FALSE(
            store.apply_multi<FixedWindow>(keys, params.data(), one, kNow, MultiOp::consume, out));
        REQUIRE(store.snapshot<FixedWindow>("b") == std::vector<double>{16.0, 2.0, 60.0});
        const std::int64_t refund[2] = {0, -2};
        store.apply_multi<FixedWindow>(keys, params.data(), refund, kNow, MultiOp::adjust, out);
        REQUIRE(out[1].remaining == 3);
        REQUIRE(store.snapshot<FixedWindow>("a") == std::vector<double>{1000.0, 2.0, 1.0});
    }
    std::filesystem::remove(path);
}

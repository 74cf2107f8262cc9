#include <limits>
#include "algorithm_properties.hpp"

using namespace rl_test;
using ratelimiter::FixedWindow;

namespace {
FixedWindow::Params params(std::int64_t limit, double window) {
    return FixedWindow::make_params({limit, window});
}
}  // namespace

TEST_CASE("fixed window: exact admitted sequence and window arithmetic", "[fixed_window]") {
    const auto p = params(3, 10.0);
    auto s = FixedWindow::fresh(100.0, p);
    for (int i = 0; i < 3; ++i) {
        const auto d = FixedWindow::step(s, 101.0 + i, 1, p);
        REQUIRE(d.allowed);
        REQUIRE(d.remaining == 2 - i);
        REQUIRE(d.meta[0] == 100.0);  // window_start
        REQUIRE(d.meta[1] == i + 1);  // count
        REQUIRE(d.reset_after == 10.0 - (1.0 + i));
    }
    const auto rejected = FixedWindow::step(s, 104.0, 1, p);
    REQUIRE_FALSE(rejected.allowed);
    REQUIRE(rejected.retry_after == 6.0);
    REQUIRE(rejected.remaining == 0);
    REQUIRE(FixedWindow::step(s, 109.999, 1, p).allowed == false);
    const auto next = FixedWindow::step(s, 110.0, 2, p);  // the next window starts empty
    REQUIRE(next.allowed);
    REQUIRE(next.meta[0] == 110.0);
    REQUIRE(next.meta[1] == 2.0);
    REQUIRE_FALSE(FixedWindow::step(s, 111.0, 2, p).allowed);  // 2 + 2 > 3: cost counts whole
    REQUIRE(FixedWindow::step(s, 111.0, 1, p).allowed);
}

TEST_CASE("fixed window admits 2*limit across a boundary", "[fixed_window]") {
    const auto p = params(5, 1.0);
    auto s = FixedWindow::fresh(0.0, p);
    int admitted = 0;
    for (int i = 0; i < 10; ++i) admitted += FixedWindow::step(s, 0.99, 1, p).allowed;
    for (int i = 0; i < 10; ++i) admitted += FixedWindow::step(s, 1.0, 1, p).allowed;
    REQUIRE(admitted == 10);  // within 0.01 s: the documented weakness of fixed windows
}

TEST_CASE("fixed window: sub-second windows and exact boundaries", "[fixed_window]") {
    const auto p = params(1, 0.1);
    // For every m, a request at the computed instant m*0.1 lies in window m, and the previous
    // window's retry_after lands exactly there (floor(m*0.1/0.1) alone is wrong for some m).
    auto s = FixedWindow::fresh(0.0, p);
    for (int m = 1; m < 5000; ++m) {
        const double now = m * 0.1;
        const auto d = FixedWindow::step(s, now, 1, p);
        REQUIRE(d.allowed);
        REQUIRE(d.meta[0] == now);
        const auto again = FixedWindow::step(s, now, 1, p);
        REQUIRE_FALSE(again.allowed);
        REQUIRE(FixedWindow::step(s, now + again.retry_after, 1, p).allowed);
        REQUIRE_FALSE(FixedWindow::step(s, now + again.retry_after, 1, p).allowed);
        s = FixedWindow::fresh(now, p);
        FixedWindow::step(s, now, 1, p);
    }
}

TEST_CASE("fixed window: clock going backwards keeps the newer window", "[fixed_window]") {
    const auto p = params(2, 10.0);
    auto s = FixedWindow::fresh(25.0, p);
    REQUIRE(FixedWindow::step(s, 25.0, 2, p).allowed);
    const auto d = FixedWindow::step(s, 5.0, 1, p);  // 20 s in the past
    REQUIRE_FALSE(d.allowed);
    REQUIRE(d.retry_after == 25.0);  // until the end of window [20, 30)
    REQUIRE(d.meta[0] == 20.0);
}

TEST_CASE("fixed window: invalid parameters throw ConfigError", "[fixed_window]") {
    require_config_error([] { params(0, 1.0); }, "limit");
    require_config_error([] { params(-3, 1.0); }, "limit");
    require_config_error([] { params(1, 0.0); }, "window");
    require_config_error([] { params(1, -1.0); }, "window");
    require_config_error([] { params(1, std::nan("")); }, "window");
    require_config_error([] { params(1, kInf); }, "window");
}

TEST_CASE("fixed window: properties on random traces", "[fixed_window][properties]") {
    rl_test::PropertyOptions o;
    o.capacity = 5;
    o.grid = 2.5;
    check_all_properties<FixedWindow>(params(5, 10.0), o);
    o.grid = 0.03;
    check_all_properties<FixedWindow>(params(5, 0.1), o);
}

TEST_CASE("fixed window: a state written under another window is never misread",
          "[fixed_window]") {
    const auto one = params(5, 1.0);
    auto s = FixedWindow::fresh(1000.5, one);
    for (int i = 0; i < 5; ++i) REQUIRE(FixedWindow::step(s, 1000.5, 1, one).allowed);
    const auto sixty = params(5, 60.0);
    // Still inside the old window [1000, 1001), which lies inside [960, 1020): counts.
    auto d = FixedWindow::step(s, 1000.5, 1, sixty);
    REQUIRE_FALSE(d.allowed);
    REQUIRE(d.retry_after == 0.5);  // the carried count stops applying when [1000, 1001) ends
    REQUIRE(FixedWindow::step(s, 1001.0, 1, sixty).allowed);
    REQUIRE(FixedWindow::step(s, 4600.0, 1, sixty).allowed);  // an hour later: no lockout
}

TEST_CASE("fixed window: corrupt state is a fresh key, never an over-admission", "[fixed_window]") {
    const auto p = params(5, 60.0);
    const double nan = std::numeric_limits<double>::quiet_NaN();
    for (auto bad : {FixedWindow::State{1e300, -1e300, 60.0}, FixedWindow::State{nan, nan, nan},
                     FixedWindow::State{16.0, 3.0, -1.0}}) {
        auto s = bad;
        std::int64_t admitted = 0;
        for (int i = 0; i < 20; ++i) {
            const auto d = FixedWindow::step(s, 1000.0, 1, p);
            admitted += d.allowed;
            REQUIRE(d.remaining >= 0);
            REQUIRE(d.remaining <= 5);
        }
        REQUIRE(admitted == 5);
    }
}

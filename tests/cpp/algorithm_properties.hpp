// Properties every algorithm must have, checked on random traces with a fake clock.
// Each test_<algorithm>.cpp calls check_all_properties<Algo>(params, ...).
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "catch.hpp"
#include "ratelimiter/algorithm/all.hpp"

namespace rl_test {

using ratelimiter::Decision;
using ratelimiter::kInf;

inline bool near(double a, double b, double tol = 1e-9) {
    if (std::isinf(a) || std::isinf(b)) return a == b;
    return std::fabs(a - b) <= tol * std::max(1.0, std::max(std::fabs(a), std::fabs(b)));
}

template <class Algo>
std::vector<double> encoded(const typename Algo::State& s) {
    std::vector<double> out;
    Algo::encode(s, out);
    return out;
}

// `make` must throw ConfigError whose message names `parameter`.
template <class F>
void require_config_error(F make, const std::string& parameter) {
    bool thrown = false;
    try {
        make();
    } catch (const ratelimiter::ConfigError& e) {
        thrown = true;
        CAPTURE(e.what());
        REQUIRE(std::string(e.what()).find(parameter) != std::string::npos);
    }
    REQUIRE(thrown);
}

// Decisions compared field by field; continuous values with a tolerance.
inline void require_same_decision(const Decision& a, const Decision& b) {
    REQUIRE(a.allowed == b.allowed);
    REQUIRE(a.insufficient_capacity == b.insufficient_capacity);
    REQUIRE(a.remaining == b.remaining);
    REQUIRE(near(a.retry_after, b.retry_after, 1e-7));
    REQUIRE(near(a.reset_after, b.reset_after, 1e-7));
    for (std::size_t i = 0; i < a.meta.size(); ++i) REQUIRE(near(a.meta[i], b.meta[i], 1e-7));
}

// A random trace: times moving forward by random gaps (some zero, some landing exactly on
// multiples of `grid`, some arbitrary), costs in [1, max_cost].
struct Event {
    double now;
    std::int64_t cost;
};
inline std::vector<Event> random_trace(std::mt19937& rng, std::size_t n, double start,
                                       double grid, std::int64_t max_cost) {
    std::vector<Event> out;
    std::uniform_int_distribution<int> kind(0, 3);
    std::uniform_real_distribution<double> gap(0.0, 3.0 * grid);
    std::uniform_int_distribution<int> steps(1, 4);
    std::uniform_int_distribution<std::int64_t> cost(1, max_cost);
    double now = start;
    for (std::size_t i = 0; i < n; ++i) {
        switch (kind(rng)) {
            case 0: break;  // same instant
            case 1: now = (std::floor(now / grid) + steps(rng)) * grid; break;
            default: now += gap(rng); break;
        }
        out.push_back(Event{now, cost(rng)});
    }
    return out;
}

struct PropertyOptions {
    double start = 1000.0;      // fake clock origin
    double grid = 1.0;          // typical time step of the traces
    std::int64_t max_cost = 3;  // costs drawn in [1, max_cost]
    double capacity = 0.0;      // largest admissible cost
    bool retry_is_minimal = true;  // waiting a little less than retry_after still rejects
};

// Runs random traces and, at every step, checks the properties against copies of the state.
template <class Algo>
void check_all_properties(const typename Algo::Params& p, const PropertyOptions& o) {
    using State = typename Algo::State;
    std::mt19937 rng(20240601);
    int rejections_checked = 0;
    for (int trace_no = 0; trace_no < 20; ++trace_no) {
        const auto trace = random_trace(rng, 300, o.start + trace_no, o.grid, o.max_cost);
        State s = Algo::fresh(trace.front().now, p);
        for (const Event& e : trace) {
            CAPTURE(trace_no, e.now, e.cost);
            const std::vector<double> before = encoded<Algo>(s);

            // encode/decode round-trip gives a state that decides identically.
            State decoded;
            REQUIRE(Algo::decode(before.data(), before.size(), decoded));
            REQUIRE(encoded<Algo>(decoded) == before);

            // peek decides a cost-1 request and changes nothing.
            const Decision peeked = Algo::peek(s, e.now, p);
            REQUIRE(encoded<Algo>(s) == before);
            State probe = s;
            REQUIRE(Algo::step(probe, e.now, 1, p).allowed == peeked.allowed);

            // A cost above capacity is never admissible and changes nothing.
            State big = s;
            const Decision too_big =
                Algo::step(big, e.now, static_cast<std::int64_t>(o.capacity) + 1, p);
            REQUIRE_FALSE(too_big.allowed);
            REQUIRE(too_big.insufficient_capacity);
            REQUIRE(too_big.retry_after == kInf);
            REQUIRE(encoded<Algo>(big) == before);

            const Decision d = Algo::step(s, e.now, e.cost, p);
            const Decision d_decoded = Algo::step(decoded, e.now, e.cost, p);
            require_same_decision(d, d_decoded);
            REQUIRE(encoded<Algo>(decoded) == encoded<Algo>(s));
            REQUIRE(d.remaining >= 0);
            REQUIRE(d.reset_after >= 0.0);
            REQUIRE_FALSE(d.insufficient_capacity);
            if (d.allowed) {
                REQUIRE(d.retry_after == 0.0);
                continue;
            }
            // Rejected: state unchanged; waiting exactly retry_after admits the same request.
            ++rejections_checked;
            REQUIRE(encoded<Algo>(s) == before);
            REQUIRE(d.retry_after > 0.0);
            REQUIRE(std::isfinite(d.retry_after));
            State later = s;
            REQUIRE(Algo::step(later, e.now + d.retry_after, e.cost, p).allowed);
            if (o.retry_is_minimal && d.retry_after > 1e-4) {
                State sooner = s;
                REQUIRE_FALSE(Algo::step(sooner, e.now + d.retry_after - 1e-5, e.cost, p).allowed);
            }
        }
        // From fresh_at on, the state decides like a new key, for every cost.
        const double t = Algo::fresh_at(s, p);
        for (double at : {t, t + 0.37 * o.grid}) {
            for (std::int64_t cost = 1; cost <= static_cast<std::int64_t>(o.capacity); ++cost) {
                CAPTURE(trace_no, at, cost);
                State old = s;
                State fresh = Algo::fresh(at, p);
                require_same_decision(Algo::step(old, at, cost, p), Algo::step(fresh, at, cost, p));
            }
        }
    }
    REQUIRE(rejections_checked > 100);  // the traces really exercised rejections
}

}  // namespace rl_test

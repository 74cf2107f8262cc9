// `_core.MultiLimiter`: several limits of one algorithm decided together (MultiRateLimiter).
// Converts arguments, reads the clock once, runs one multi operation on the store (one
// critical section / transaction / EVALSHA) and wraps the decisions in one result. The
// decision itself is store/multi.hpp's; no arithmetic here.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "convert.hpp"
#include "ratelimiter/store/multi.hpp"
#include "store_instances.hpp"
#include "store_ref.hpp"

namespace ratelimiter::binding {

// One limit as Python describes it.
struct LimitDef {
    std::int64_t amount = 0;
    double window = 0.0;
    std::string dimension;  // "" when the limits are not named
};

class MultiLimiter {
public:
    // `algorithm`: an algorithm name (adaptive: per-key load mode); `limits`: distinct LimitDefs;
    // `result_class`: the Python class of results (a RateLimitResult subclass with a `_multi`
    // slot); `info`: attached to every result, describing the limits for its metadata.
    MultiLimiter(const py::object& backend, const std::string& algorithm,
                 std::vector<LimitDef> limits, std::string key_prefix, py::object clock,
                 py::object result_class, py::object info);
    ~MultiLimiter();

    py::object is_allowed(py::handle key, py::handle cost);
    py::object peek(py::handle key);
    py::object adjust(py::handle key, py::handle cost);
    py::list is_allowed_many(py::handle keys, py::handle cost);
    void reset(py::handle key);
    py::object fast_is_allowed(py::handle self);

    // The asyncio path (AsyncRedisBackend): builds the one multi-script call (script name,
    // state keys, ARGV, now) and reads its reply, so Python only awaits the round trip.
    py::tuple redis_call(py::handle key, py::handle cost, const std::string& op,
                         const std::string& key_prefix, bool use_server_time, bool binary_reply);
    py::object redis_result(py::handle key, const std::vector<std::string>& reply, double now);

    const std::string& algorithm() const;
    const std::string& key_prefix() const { return prefix_; }
    std::size_t size() const { return limits_.size(); }

    // The per-algorithm part (Params per limit and the store calls).
    struct Engine;

private:
    std::vector<std::int64_t>& read_costs(py::handle cost, MultiOp op);
    py::object decide(py::handle key, MultiOp op, const std::vector<std::int64_t>& costs,
                      double now);
    py::object build_result(py::handle key, const Decision* decisions, double now);
    std::string& group_key(std::string_view key) const;

    StoreRef store_;
    std::unique_ptr<Engine> engine_;
    std::vector<LimitDef> limits_;
    std::vector<std::string> signatures_;  // per limit: identifies its definition in keys
    std::unordered_map<std::string, std::vector<std::size_t>> dimensions_;
    std::string prefix_;
    py::object clock_;
    py::object result_class_;
    py::object info_;
};

}  // namespace ratelimiter::binding

// One Python-facing limiter per algorithm: converts arguments, reads the clock, runs one
// atomic step on the store, and wraps the Decision in a RateLimitResult. No arithmetic here
// (the core's `reported` adjusts retry_after; AggregateLoad uses the core's WindowPair).
#pragma once

// Only pybind11's object types (pytypes.h, via convert.hpp), not pybind11.h: this header is
// the binding's hot part, whose compile is on the build's critical path (issue 8), and the
// hot part never registers anything with pybind11 (register_limiters.cpp does).

#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "aggregate_load.hpp"
#include "convert.hpp"
#include "fast_call.hpp"
#include "result_object.hpp"
#include "store_ref.hpp"

namespace ratelimiter::binding {

// What Python calls on a limiter, whatever its algorithm. pybind11 binds these once, on
// `_core._NativeLimiter`, rather than once per algorithm (build time: each bound method
// instantiates pybind11's dispatch machinery); the hot path, `_fast_is_allowed`, reaches
// Limiter<Algo>::is_allowed directly, without a virtual call.
class LimiterBase {
public:
    virtual ~LimiterBase() = default;
    virtual py::object is_allowed(py::handle key, py::handle cost) = 0;
    virtual py::object peek(py::handle key) = 0;
    virtual py::list is_allowed_many(py::handle keys, py::handle cost, py::handle detail) = 0;
    virtual void reset(py::handle key) = 0;
    virtual std::string storage_key(py::handle key) const = 0;
    virtual std::vector<double> state(py::handle key) = 0;
    virtual const std::string& key_prefix() const = 0;
    virtual py::tuple redis_call(py::handle key, py::handle cost, bool peek,
                                 bool use_server_time, bool binary_reply) = 0;
    virtual py::object redis_result(py::handle key, const std::vector<std::string>& reply,
                                    std::int64_t limit, double window, double now,
                                    std::int64_t cost) = 0;
    virtual py::object fast_is_allowed(py::handle self) = 0;
};

template <class Algo>
class Limiter final : public LimiterBase {
public:
    using Spec = typename Algo::Spec;
    using Params = typename Algo::Params;

    Limiter(const py::object& backend, Spec spec, std::string key_prefix, py::object clock,
            py::object config_provider)
        : store_(store_from_backend(backend)),
          spec_(spec),
          params_(Algo::make_params(spec)),
          prefix_(std::move(key_prefix)),
          clock_(std::move(clock)),
          provider_(std::move(config_provider)) {
        if (prefix_.size() >= kMaxKeyBytes) {
            raise_configuration_error("key_prefix must be shorter than 1024 bytes");
        }
        if (!clock_.is_none() && !PyCallable_Check(clock_.ptr())) {
            raise_configuration_type_error("clock must be a zero-argument callable, got " +
                                           type_name(clock_));
        }
    }

    py::object is_allowed(py::handle key, py::handle cost_arg) override {
        const std::int64_t cost = PyLong_CheckExact(cost_arg.ptr()) ? fast_cost(cost_arg)
                                                                     : to_count(cost_arg, "cost");
        const std::string_view k = hot_key_view(key.ptr());
        const double now = read_clock(clock_ptr());
        double window = 0.0;
        const Params params = current_params(window);
        const Decision d = run(storage_view(k), now, cost, params, Operation::consume,
                               aggregate_.measure(params, now));
        aggregate_.record(d, cost, now);
        return steal(make_result(key.ptr(), params.limit, window, d, Algo::id));
    }

    py::object peek(py::handle key) override {
        const std::string_view k = hot_key_view(key.ptr());
        const double now = read_clock(clock_ptr());
        double window = 0.0;
        const Params params = current_params(window);
        const Decision d = run(storage_view(k), now, 1, params, Operation::peek,
                               aggregate_.measure(params, now));
        return steal(make_result(key.ptr(), params.limit, window, d, Algo::id));
    }

    // Decides several keys at one clock reading, in order; one Python↔C++ crossing in all.
    // detail=False answers a list of bools (no result objects to build).
    py::list is_allowed_many(py::handle keys, py::handle cost_arg, py::handle detail_arg) override {
        const std::int64_t cost = to_count(cost_arg, "cost");
        if (!PyBool_Check(detail_arg.ptr())) {
            raise_configuration_type_error("detail must be a bool, got " + type_name(detail_arg));
        }
        const bool detail = detail_arg.ptr() == Py_True;
        // A str is a sequence (of one-character strs): deciding "user42" as six keys is never
        // what the caller meant, so text and bytes are refused rather than iterated.
        if (PyUnicode_Check(keys.ptr()) || PyBytes_Check(keys.ptr()) ||
            PyByteArray_Check(keys.ptr())) {
            raise_configuration_type_error(
                "keys must be a list or tuple of str, not a single " + type_name(keys) +
                " (use is_allowed for one key)");
        }
        auto seq = py::reinterpret_steal<py::object>(
            PySequence_Fast(keys.ptr(), "keys must be a list or tuple of str"));
        if (!seq) throw py::error_already_set();
        const auto n = static_cast<std::size_t>(PySequence_Fast_GET_SIZE(seq.ptr()));
        // The keys are read as views into their str objects, also while the GIL is released
        // (a batch on the memory store, each step on SQLite or Redis), when another thread
        // could empty a list. A tuple cannot change; a list's items are copied and held here
        // (a reference each, taken in the validation pass, which reads each object anyway:
        // cheaper than copying the list to a tuple).
        HeldKeys held;
        PyObject** items = PySequence_Fast_ITEMS(seq.ptr());
        if (PyList_CheckExact(seq.ptr())) {
            held.items.assign(items, items + n);
            items = held.items.data();
        }
        // Validate every key before deciding any, so a bad key changes no state.
        std::vector<std::string_view> views(n);
        for (std::size_t i = 0; i < n; ++i) {
            // Distinct keys are scattered str objects: fetch a few ahead (a hint only).
            if (i + 8 < n) __builtin_prefetch(items[i + 8]);
            views[i] = hot_key_view(items[i]);
            if (!held.items.empty()) {
                Py_INCREF(items[i]);
                held.count = i + 1;
            }
        }
        const double now = read_clock(clock_ptr());
        double window = 0.0;
        const Params params = current_params(window);
        py::list out(n);
        if (auto* memory = std::get_if<std::shared_ptr<MemoryStore>>(&store_);
            memory != nullptr && !needs_aggregate_load(params)) {
            if (!detail) {  // only `allowed` is kept: a byte per key, no Decision copies
                std::vector<unsigned char> allowed(n);
                decide_on_memory(**memory, views, now, cost, params,
                                 MemoryStore::BatchOut{nullptr, allowed.data()});
                PyObject** slots = PySequence_Fast_ITEMS(out.ptr());
                std::size_t trues = 0;
                for (std::size_t i = 0; i < n; ++i) {
                    trues += allowed[i];
                    slots[i] = allowed[i] ? Py_True : Py_False;
                }
                // The n new references, taken at once: an INCREF per item is a chain of
                // dependent read-modify-writes of one counter (~5 cycles each).
                add_references(Py_True, trues);
                add_references(Py_False, n - trues);
                return out;
            }
            std::vector<Decision> decisions(n);
            decide_on_memory(**memory, views, now, cost, params,
                             MemoryStore::BatchOut{decisions.data(), nullptr});
            for (std::size_t i = 0; i < n; ++i) {
                put_result(out, i, items[i], params.limit, window, reported(decisions[i], now));
            }
            return out;
        }
        decide_many_elsewhere(items, views, now, cost, params, window, detail, out);
        return out;
    }

    // Defined in limiter_cold.hpp (compiled in the binding's cold part: build time).
    void reset(py::handle key) override;
    // The validated storage key (key_prefix + key), for callers that reach the store
    // without a decision (the async Redis reset).
    std::string storage_key(py::handle key) const override;
    // Encoded state of `key` (empty if none) on the memory store; for tests and debugging.
    std::vector<double> state(py::handle key) override;
    const std::string& key_prefix() const override { return prefix_; }
    // The asyncio front end (AsyncRedisBackend) runs the same script call as RedisStore:
    // redis_call builds it (clock, params, ARGV) and redis_result reads the reply, so the
    // Python coroutine only awaits the network round trip in between.
    py::tuple redis_call(py::handle key, py::handle cost_arg, bool peek, bool use_server_time,
                         bool binary_reply) override;
    py::object redis_result(py::handle key, const std::vector<std::string>& reply,
                            std::int64_t limit, double window, double now,
                            std::int64_t cost) override;

    // `is_allowed` as a direct CPython callable (see fast_call.hpp); `self` owns this limiter.
    py::object fast_is_allowed(py::handle self) override {
        return make_fast_is_allowed(this, self);
    }

private:
    static py::object steal(PyObject* obj) {
        if (obj == nullptr) throw py::error_already_set();
        return py::reinterpret_steal<py::object>(obj);
    }

    static std::int64_t fast_cost(py::handle cost) {
        int overflow = 0;
        const long long n = PyLong_AsLongLongAndOverflow(cost.ptr(), &overflow);
        if (overflow == 0 && n >= 1 && n <= kMaxCount) return n;
        return to_count(cost, "cost");  // raises with the full message
    }

    // The adaptive limiter's whole-service load (load_capacity) changes its step input after
    // every decision, so its batches stay one decision at a time.
    static bool needs_aggregate_load(const Params& params) {
        if constexpr (std::is_same_v<Algo, Adaptive>) {
            return static_cast<bool>(params.load_capacity);
        } else {
            (void)params;
            return false;
        }
    }

    // key_view's common case inline: an exact str of ASCII characters is its own UTF-8, read
    // in place; key_view checks (and raises for) everything else.
    std::string_view hot_key_view(PyObject* key) const {
        if (PyUnicode_CheckExact(key) && PyUnicode_IS_COMPACT_ASCII(key)) {
            const auto size = static_cast<std::size_t>(PyUnicode_GET_LENGTH(key));
            if (size != 0 && prefix_.size() + size <= kMaxKeyBytes) {
                return {static_cast<const char*>(PyUnicode_DATA(key)), size};
            }
        }
        return key_view(key, prefix_.size());
    }

    PyObject* clock_ptr() const { return clock_.is_none() ? nullptr : clock_.ptr(); }

    // The key as stored: `key` itself without a prefix (no copy), else full_key(key).
    std::string_view storage_view(std::string_view key) const {
        return prefix_.empty() ? key : std::string_view(full_key(key));
    }

    // Prefix + key in a thread-local buffer (no allocation once warm).
    std::string& full_key(std::string_view key) const {
        thread_local std::string buffer;
        buffer.assign(prefix_);
        buffer.append(key.data(), key.size());
        return buffer;
    }

    // With a config provider, limit and window are read (and validated) on every call, and
    // derived rates follow them.
    Params current_params(double& window) const {
        if (provider_.is_none()) {
            window = spec_.window;
            return params_;
        }
        Spec spec = spec_;
        spec.limit = to_count(call_method(provider_, "get_limit"), "limit (from config_provider)");
        spec.window = to_positive_float(call_method(provider_, "get_window"),
                                        "window (from config_provider)");
        window = spec.window;
        return Algo::make_params(spec);
    }

    // One step on the limiter's store: the memory store here (the hot path), every other
    // store in run_elsewhere (limiter_cold.hpp).
    Decision run(std::string_view key, double now, std::int64_t cost, const Params& params,
                 Operation op, const StepInputOf<Algo>& input) {
        if (auto* memory = std::get_if<std::shared_ptr<MemoryStore>>(&store_)) {
            return reported((*memory)->template apply<Algo>(key, now, cost, params, op, input),
                            now);
        }
        return run_elsewhere(key, now, cost, params, op, input);
    }
    Decision run_elsewhere(std::string_view key, double now, std::int64_t cost,
                           const Params& params, Operation op, const StepInputOf<Algo>& input);
    // is_allowed_many on a store other than memory, or with a per-call input: fills `out`.
    void decide_many_elsewhere(PyObject* const* items, const std::vector<std::string_view>& views,
                               double now, std::int64_t cost, const Params& params,
                               double window, bool detail, py::list& out);
    // out[i] = the result object of `d` for key `key`.
    static void put_result(py::list& out, std::size_t i, PyObject* key, std::int64_t limit,
                           double window, const Decision& d) {
        PyObject* result = make_result(key, limit, window, d, Algo::id);
        if (result == nullptr) throw py::error_already_set();
        PyList_SET_ITEM(out.ptr(), static_cast<Py_ssize_t>(i), result);
    }

    // A memory-store batch: `views` (into str objects kept alive by the caller's tuple),
    // or with a prefix, prefix + key copied into one buffer, decided shard by shard into
    // `out`. Large batches release the GIL, so threads deciding on disjoint keys run in
    // parallel; a small one keeps it (releasing costs more than a few steps).
    void decide_on_memory(MemoryStore& store, const std::vector<std::string_view>& views,
                          double now, std::int64_t cost, const Params& params,
                          MemoryStore::BatchOut out) {
        constexpr std::size_t kReleaseGilFrom = 32;
        const std::size_t n = views.size();
        std::string buffer;
        std::vector<std::string_view> prefixed;
        const std::string_view* keys = views.data();
        if (!prefix_.empty()) {
            std::size_t bytes = 0;
            for (const std::string_view key : views) bytes += prefix_.size() + key.size();
            buffer.resize(bytes);
            prefixed.resize(n);
            char* at = buffer.data();
            for (std::size_t i = 0; i < n; ++i) {
                char* start = at;
                at = std::copy(prefix_.begin(), prefix_.end(), at);
                at = std::copy(views[i].begin(), views[i].end(), at);
                prefixed[i] = std::string_view(start, static_cast<std::size_t>(at - start));
            }
            keys = prefixed.data();
        }
        if (n >= kReleaseGilFrom) {
            ReleasedGil released;
            store.template apply_many<Algo>(keys, n, now, cost, params, out);
        } else {
            store.template apply_many<Algo>(keys, n, now, cost, params, out);
        }
    }

    // `count` new references to `object` (a bool: a batch's answers), as one update.
    static void add_references(PyObject* object, std::size_t count) {
#ifdef Py_REF_DEBUG
        for (std::size_t i = 0; i < count; ++i) Py_INCREF(object);  // keeps _Py_RefTotal right
#else
        Py_SET_REFCNT(object, Py_REFCNT(object) + static_cast<Py_ssize_t>(count));
#endif
    }

    // A list's items, each holding a reference (the first `count`) until the batch returns.
    struct HeldKeys {
        std::vector<PyObject*> items;
        std::size_t count = 0;
        HeldKeys() = default;
        HeldKeys(const HeldKeys&) = delete;
        HeldKeys& operator=(const HeldKeys&) = delete;
        ~HeldKeys() {
            for (std::size_t i = 0; i < count; ++i) Py_DECREF(items[i]);
        }
    };

    StoreRef store_;
    Spec spec_;
    Params params_;
    std::string prefix_;
    py::object clock_;
    py::object provider_;
    AggregateLoad<Algo> aggregate_;
};

}  // namespace ratelimiter::binding

// `_core.MultiLimiter` (see multi_limiter.hpp) and its registration.
#include <pybind11/stl.h>

#include <cmath>
#include <cstdio>
#include <cstring>

#include "fast_call.hpp"
#include "modules.hpp"
#include "multi_limiter.hpp"
#include "result_object.hpp"

namespace ratelimiter::binding {

namespace {

// Signed units for adjust(): any int with |n| <= 2**52 (0 is a no-op).
std::int64_t to_signed_count(py::handle value, const std::string& name) {
    PyObject* obj = value.ptr();
    if (PyBool_Check(obj) || !PyLong_Check(obj)) {
        raise_configuration_type_error(name + " must be an int, got " + type_name(value));
    }
    int overflow = 0;
    const long long n = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (overflow != 0 || n < -kMaxCount || n > kMaxCount) {
        raise_configuration_error(name + " must be an int between -2**52 and 2**52, got " +
                                  repr_text(value));
    }
    return n;
}

std::string signature_of(const LimitDef& limit) {
    char buffer[64];
    const int n = std::snprintf(buffer, sizeof buffer, "%lld/%.17g",
                                static_cast<long long>(limit.amount), limit.window);
    std::string out;
    if (!limit.dimension.empty()) out = limit.dimension + ":";
    out.append(buffer, static_cast<std::size_t>(n));
    return out;
}

}  // namespace

struct MultiLimiter::Engine {
    virtual ~Engine() = default;
    virtual AlgorithmId id() const = 0;
    virtual const std::string& name() const = 0;
    // One operation on every limit of `group` (the prefixed limiter key); fills out[i].
    virtual bool run(StoreRef& store, const std::string& group,
                     const std::vector<std::string>& signatures, const std::int64_t* costs,
                     double now, MultiOp op, Decision* out) = 0;
    virtual void erase(StoreRef& store, const std::string& group,
                       const std::vector<std::string>& signatures) = 0;
    virtual void redis_args(std::vector<std::string>& args, const std::int64_t* costs) const = 0;
};

namespace {

// Memory, SQLite and Python-backend stores name limit i's state "<group>\x1f<signature>"
// (a control character no sensible key contains); Redis names it by hash tag (RedisStore).
std::vector<std::string>& entry_keys(const std::string& group,
                                     const std::vector<std::string>& signatures) {
    thread_local std::vector<std::string> keys;
    keys.resize(signatures.size());
    for (std::size_t i = 0; i < signatures.size(); ++i) {
        keys[i].assign(group);
        keys[i] += '\x1f';
        keys[i] += signatures[i];
    }
    return keys;
}

template <class Algo>
struct EngineFor final : MultiLimiter::Engine {
    explicit EngineFor(const std::vector<LimitDef>& limits) {
        for (const LimitDef& limit : limits) {
            typename Algo::Spec spec;
            spec.limit = limit.amount;
            spec.window = limit.window;
            params.push_back(Algo::make_params(spec));
        }
    }
    AlgorithmId id() const override { return Algo::id; }
    const std::string& name() const override {
        static const std::string n = Algo::name;
        return n;
    }

    bool run(StoreRef& store, const std::string& group, const std::vector<std::string>& sigs,
             const std::int64_t* costs, double now, MultiOp op, Decision* out) override {
        return std::visit(
            [&](auto& s) -> bool {
                using Store = typename std::decay_t<decltype(s)>::element_type;
                if constexpr (std::is_same_v<Store, MemoryStore>) {
                    return s->template apply_multi<Algo>(group, entry_keys(group, sigs),
                                                         params.data(), costs, now, op, out);
                } else if constexpr (std::is_same_v<Store, RedisStore>) {
                    py::gil_scoped_release release;
                    return s->template apply_multi<Algo>(group, sigs, params.data(), costs, now,
                                                         op, out);
                } else if constexpr (std::is_same_v<Store, SqliteStore>) {
                    const auto& keys = entry_keys(group, sigs);
                    py::gil_scoped_release release;
                    return s->template apply_multi<Algo>(keys, params.data(), costs, now, op,
                                                         out);
                } else if constexpr (std::is_same_v<Store, PythonBackendStore>) {
                    return s->template apply_multi<Algo>(entry_keys(group, sigs), params.data(),
                                                         costs, now, op, out);
                } else {
                    // AsyncOnlyStore: its apply raises the "use is_allowed_async" error.
                    return s->template apply<Algo>(group, now, 1, params[0], Operation::peek)
                        .allowed;
                }
            },
            store);
    }

    void erase(StoreRef& store, const std::string& group,
               const std::vector<std::string>& sigs) override {
        std::visit(
            [&](auto& s) {
                using Store = typename std::decay_t<decltype(s)>::element_type;
                if constexpr (std::is_same_v<Store, MemoryStore>) {
                    s->template erase_multi<Algo>(group, entry_keys(group, sigs));
                } else if constexpr (std::is_same_v<Store, RedisStore>) {
                    py::gil_scoped_release release;
                    s->template erase_multi<Algo>(group, sigs);
                } else if constexpr (std::is_same_v<Store, SqliteStore>) {
                    const auto& keys = entry_keys(group, sigs);
                    py::gil_scoped_release release;
                    s->template erase_multi<Algo>(keys);
                } else if constexpr (std::is_same_v<Store, PythonBackendStore>) {
                    s->template erase_multi<Algo>(entry_keys(group, sigs));
                } else {
                    s->template erase<Algo>(group);
                }
            },
            store);
    }

    void redis_args(std::vector<std::string>& args, const std::int64_t* costs) const override {
        for (std::size_t i = 0; i < params.size(); ++i) {
            args.push_back(std::to_string(costs[i]));
            RedisStore::append_params(args, params[i]);
        }
    }

    std::vector<typename Algo::Params> params;
};

std::unique_ptr<MultiLimiter::Engine> make_engine(const std::string& algorithm,
                                                  const std::vector<LimitDef>& limits) {
    if (algorithm == FixedWindow::name) return std::make_unique<EngineFor<FixedWindow>>(limits);
    if (algorithm == SlidingWindow::name) {
        return std::make_unique<EngineFor<SlidingWindow>>(limits);
    }
    if (algorithm == SlidingWindowCounter::name) {
        return std::make_unique<EngineFor<SlidingWindowCounter>>(limits);
    }
    if (algorithm == TokenBucket::name) return std::make_unique<EngineFor<TokenBucket>>(limits);
    if (algorithm == LeakyBucket::name) return std::make_unique<EngineFor<LeakyBucket>>(limits);
    if (algorithm == Gcra::name) return std::make_unique<EngineFor<Gcra>>(limits);
    // Per-key load mode only (each limit's sensor measures its own key): the Spec leaves
    // load_capacity unset, since the aggregate mode needs limiter-wide state.
    if (algorithm == Adaptive::name) return std::make_unique<EngineFor<Adaptive>>(limits);
    raise_configuration_error("algorithm '" + algorithm +
                              "' cannot run several limits (use fixed_window, sliding_window, "
                              "sliding_window_counter, token_bucket, leaky_bucket, gcra or "
                              "adaptive)");
}

}  // namespace

MultiLimiter::MultiLimiter(const py::object& backend, const std::string& algorithm,
                           std::vector<LimitDef> limits, std::string key_prefix,
                           py::object clock, py::object result_class, py::object info)
    : store_(store_from_backend(backend)),
      limits_(std::move(limits)),
      prefix_(std::move(key_prefix)),
      clock_(std::move(clock)),
      result_class_(std::move(result_class)),
      info_(std::move(info)) {
    if (limits_.empty()) raise_configuration_error("limits must name at least one limit");
    engine_ = make_engine(algorithm, limits_);
    if (prefix_.size() >= kMaxKeyBytes) {
        raise_configuration_error("key_prefix must be shorter than 1024 bytes");
    }
    if (!clock_.is_none() && !PyCallable_Check(clock_.ptr())) {
        raise_configuration_type_error("clock must be a zero-argument callable, got " +
                                       type_name(clock_));
    }
    if (!PyType_Check(result_class_.ptr())) {
        raise_configuration_type_error("result_class must be a type");
    }
    for (std::size_t i = 0; i < limits_.size(); ++i) {
        signatures_.push_back(signature_of(limits_[i]));
        if (!limits_[i].dimension.empty()) dimensions_[limits_[i].dimension].push_back(i);
    }
}

MultiLimiter::~MultiLimiter() = default;

const std::string& MultiLimiter::algorithm() const { return engine_->name(); }

std::string& MultiLimiter::group_key(std::string_view key) const {
    thread_local std::string buffer;
    buffer.assign(prefix_);
    buffer.append(key.data(), key.size());
    return buffer;
}

// An int applies to every limit; a dict {dimension: int} to that dimension's limits (a
// dimension not named costs 0: not consulted, not charged). is_allowed takes costs >= 1
// (an int) or >= 0 (dict values); only adjust takes negative ones (refunds).
std::vector<std::int64_t>& MultiLimiter::read_costs(py::handle cost, MultiOp op) {
    thread_local std::vector<std::int64_t> costs;
    const std::size_t n = limits_.size();
    costs.assign(n, 0);
    const bool adjusting = op == MultiOp::adjust;
    if (PyLong_Check(cost.ptr()) && !PyBool_Check(cost.ptr())) {
        const std::int64_t c = adjusting ? to_signed_count(cost, "cost") : to_count(cost, "cost");
        costs.assign(n, c);
        return costs;
    }
    if (!PyDict_Check(cost.ptr())) {
        raise_configuration_type_error("cost must be an int or a dict of {dimension: int}, got " +
                                       type_name(cost));
    }
    PyObject* name = nullptr;
    PyObject* value = nullptr;
    Py_ssize_t pos = 0;
    while (PyDict_Next(cost.ptr(), &pos, &name, &value)) {
        if (!PyUnicode_Check(name)) {
            raise_configuration_type_error("cost dimensions must be str, got " +
                                           type_name(name));
        }
        const std::string dim = py::handle(name).cast<std::string>();
        const auto it = dimensions_.find(dim);
        if (it == dimensions_.end()) {
            std::string known;
            for (const auto& [known_name, indices] : dimensions_) {
                (void)indices;
                known += (known.empty() ? "'" : ", '") + known_name + "'";
            }
            raise_configuration_error("cost names an unknown dimension '" + dim + "' (known: " +
                                      (known.empty() ? "none; limits are not named" : known) +
                                      ")");
        }
        const std::string what = "cost for dimension '" + dim + "'";
        const std::int64_t c = to_signed_count(value, what);
        if (c < 0 && !adjusting) {
            raise_configuration_error(what + " must be >= 0 (only adjust() refunds), got " +
                                      std::to_string(c));
        }
        for (std::size_t i : it->second) costs[i] = c;
    }
    return costs;
}

py::object MultiLimiter::decide(py::handle key, MultiOp op, const std::vector<std::int64_t>& costs,
                                double now) {
    thread_local std::vector<Decision> decisions;
    decisions.assign(limits_.size(), Decision{});
    const std::string_view k = key_view(key, prefix_.size());
    const std::string group = group_key(k);
    engine_->run(store_, group, signatures_, costs.data(), now, op, decisions.data());
    return build_result(key, decisions.data(), now);
}

// One result: the most restrictive limit's numbers (store/multi.hpp summarize), the largest
// refusing wait, and every limit's own numbers packed into `_multi` (read by Python lazily).
py::object MultiLimiter::build_result(py::handle key, const Decision* decisions, double now) {
    const std::size_t n = limits_.size();
    const MultiSummary summary = summarize(decisions, n);
    Decision d = decisions[summary.restrictive];
    d.allowed = summary.allowed;
    d.insufficient_capacity = summary.insufficient_capacity;
    d.retry_after = summary.allowed ? 0.0 : wait_until_representable(now, summary.retry_after);
    for (std::size_t i = 0; i < n; ++i) d.fallback = d.fallback || decisions[i].fallback;
    const LimitDef& shown = limits_[summary.restrictive];
    PyObject* obj = make_result_as(reinterpret_cast<PyTypeObject*>(result_class_.ptr()),
                                   key.ptr(), shown.amount, shown.window, d, engine_->id());
    if (obj == nullptr) throw py::error_already_set();
    auto result = py::reinterpret_steal<py::object>(obj);
    // Per limit: allowed, insufficient_capacity, remaining, reset_after, retry_after.
    thread_local std::vector<double> raw;
    raw.resize(5 * n);
    for (std::size_t i = 0; i < n; ++i) {
        const Decision& e = decisions[i];
        raw[5 * i] = e.allowed ? 1.0 : 0.0;
        raw[5 * i + 1] = e.insufficient_capacity ? 1.0 : 0.0;
        raw[5 * i + 2] = static_cast<double>(e.remaining);
        raw[5 * i + 3] = e.reset_after;
        raw[5 * i + 4] = e.allowed ? 0.0 : wait_until_representable(now, e.retry_after);
    }
    PyObject* bytes = PyBytes_FromStringAndSize(reinterpret_cast<const char*>(raw.data()),
                                                static_cast<Py_ssize_t>(raw.size() * sizeof(double)));
    if (bytes == nullptr) throw py::error_already_set();
    PyObject* payload = PyTuple_Pack(2, info_.ptr(), bytes);
    Py_DECREF(bytes);
    if (payload == nullptr) throw py::error_already_set();
    static PyObject* const slot_name = PyUnicode_InternFromString("_multi");
    const int rc = PyObject_SetAttr(obj, slot_name, payload);
    Py_DECREF(payload);
    if (rc < 0) throw py::error_already_set();
    return result;
}

py::object MultiLimiter::is_allowed(py::handle key, py::handle cost) {
    const auto& costs = read_costs(cost, MultiOp::consume);
    const double now = read_clock(clock_.is_none() ? nullptr : clock_.ptr());
    return decide(key, MultiOp::consume, costs, now);
}

py::object MultiLimiter::peek(py::handle key) {
    thread_local std::vector<std::int64_t> costs;
    costs.assign(limits_.size(), 1);
    const double now = read_clock(clock_.is_none() ? nullptr : clock_.ptr());
    return decide(key, MultiOp::peek, costs, now);
}

py::object MultiLimiter::adjust(py::handle key, py::handle cost) {
    const auto& costs = read_costs(cost, MultiOp::adjust);
    const double now = read_clock(clock_.is_none() ? nullptr : clock_.ptr());
    return decide(key, MultiOp::adjust, costs, now);
}

py::list MultiLimiter::is_allowed_many(py::handle keys, py::handle cost) {
    const std::vector<std::int64_t> costs = read_costs(cost, MultiOp::consume);
    if (PyUnicode_Check(keys.ptr()) || PyBytes_Check(keys.ptr()) ||
        PyByteArray_Check(keys.ptr())) {  // as Limiter::is_allowed_many: one str is not keys
        raise_configuration_type_error("keys must be a list or tuple of str, not a single " +
                                       type_name(keys) + " (use is_allowed for one key)");
    }
    const auto seq = py::reinterpret_steal<py::object>(
        PySequence_Fast(keys.ptr(), "keys must be a list or tuple of str"));
    if (!seq) throw py::error_already_set();
    const auto n = static_cast<std::size_t>(PySequence_Fast_GET_SIZE(seq.ptr()));
    PyObject** items = PySequence_Fast_ITEMS(seq.ptr());
    for (std::size_t i = 0; i < n; ++i) (void)key_view(items[i], prefix_.size());
    const double now = read_clock(clock_.is_none() ? nullptr : clock_.ptr());
    py::list out(n);
    for (std::size_t i = 0; i < n; ++i) {
        py::object r = decide(items[i], MultiOp::consume, costs, now);
        PyList_SET_ITEM(out.ptr(), static_cast<Py_ssize_t>(i), r.release().ptr());
    }
    return out;
}

void MultiLimiter::reset(py::handle key) {
    const std::string group = group_key(key_view(key, prefix_.size()));
    engine_->erase(store_, group, signatures_);
}

py::object MultiLimiter::fast_is_allowed(py::handle self) {
    return make_fast_is_allowed(this, self);
}

py::tuple MultiLimiter::redis_call(py::handle key, py::handle cost, const std::string& op_name,
                                   const std::string& backend_prefix, bool use_server_time,
                                   bool binary_reply) {
    MultiOp op = MultiOp::consume;
    if (op_name == "peek") {
        op = MultiOp::peek;
    } else if (op_name == "adjust") {
        op = MultiOp::adjust;
    } else if (op_name != "consume") {
        raise_configuration_error("op must be 'consume', 'peek' or 'adjust'");
    }
    std::vector<std::int64_t> costs(limits_.size(), 1);
    if (op != MultiOp::peek) costs = read_costs(cost, op);
    const std::string group = group_key(key_view(key, prefix_.size()));
    const double now = read_clock(clock_.is_none() ? nullptr : clock_.ptr());
    std::vector<std::string> args;
    RedisStore::append_multi_call_args(args, use_server_time, now, op, binary_reply);
    engine_->redis_args(args, costs.data());
    py::list keys;
    for (const std::string& sig : signatures_) {
        keys.append(py::str(RedisStore::multi_storage_key(backend_prefix, group,
                                                          engine_->name().c_str(), sig)));
    }
    py::list argv;
    for (const std::string& arg : args) argv.append(py::bytes(arg));
    return py::make_tuple(engine_->name(), keys, argv, now);
}

py::object MultiLimiter::redis_result(py::handle key, const std::vector<std::string>& reply,
                                      double now) {
    std::vector<Decision> decisions(limits_.size());
    RedisStore::parse_multi_reply(engine_->id(), limits_.size(), reply, decisions.data());
    return build_result(key, decisions.data(), now);
}

void register_multi(py::module_& m) {
    py::class_<MultiLimiter>(m, "MultiLimiter")
        .def(py::init([](const py::object& backend, const std::string& algorithm,
                         const std::vector<std::tuple<py::object, py::object, std::string>>& limits,
                         std::string key_prefix, py::object clock, py::object result_class,
                         py::object info) {
                 std::vector<LimitDef> defs;
                 for (const auto& [amount, window, dimension] : limits) {
                     defs.push_back(LimitDef{to_count(amount, "amount"),
                                             to_positive_float(window, "window"), dimension});
                 }
                 return new MultiLimiter(backend, algorithm, std::move(defs),
                                         std::move(key_prefix), std::move(clock),
                                         std::move(result_class), std::move(info));
             }),
             py::arg("backend"), py::arg("algorithm"), py::arg("limits"), py::arg("key_prefix"),
             py::arg("clock"), py::arg("result_class"), py::arg("info"))
        .def("is_allowed", &MultiLimiter::is_allowed, py::arg("key"), py::arg("cost") = 1)
        .def("_fast_is_allowed",
             [](py::object self) { return self.cast<MultiLimiter&>().fast_is_allowed(self); })
        .def("peek", &MultiLimiter::peek, py::arg("key"))
        .def("adjust", &MultiLimiter::adjust, py::arg("key"), py::arg("cost"))
        .def("is_allowed_many", &MultiLimiter::is_allowed_many, py::arg("keys"),
             py::arg("cost") = 1)
        .def("reset", &MultiLimiter::reset, py::arg("key"))
        .def("_redis_call", &MultiLimiter::redis_call, py::arg("key"), py::arg("cost"),
             py::arg("op"), py::arg("key_prefix"), py::arg("use_server_time"),
             py::arg("binary_reply"))
        .def("_redis_result", &MultiLimiter::redis_result, py::arg("key"), py::arg("reply"),
             py::arg("now"))
        .def_property_readonly("algorithm", &MultiLimiter::algorithm)
        .def_property_readonly("key_prefix", &MultiLimiter::key_prefix)
        .def("__len__", &MultiLimiter::size);
}

}  // namespace ratelimiter::binding

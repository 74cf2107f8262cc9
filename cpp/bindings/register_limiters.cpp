// Binds Limiter<Algo> for every algorithm in AllAlgorithms as `_core.<Name>Limiter` (a
// subclass of `_core._NativeLimiter`, which carries the methods), and `_core.algorithms()`.
// The public classes in python/ratelimiter/algorithms/ hold one of these.
#include <pybind11/stl.h>

#include "limiter.hpp"
#include "modules.hpp"

namespace ratelimiter {
// Compiled in the hot part, store_instances_hot.cpp (build time: see store_instances.hpp).
#define RATELIMITER_EXTERN_LIMITER(Algo) extern template class binding::Limiter<Algo>;
RATELIMITER_FOR_EACH_ALGORITHM(RATELIMITER_EXTERN_LIMITER)
#undef RATELIMITER_EXTERN_LIMITER
}  // namespace ratelimiter

namespace ratelimiter::binding {
namespace {

// Extra constructor parameters, passed from Python as a dict (validated here, by name).
py::handle extra(const py::dict& extras, const char* name) {
    return extras.contains(name) ? py::handle(extras[name]) : py::handle(Py_None);
}

template <class Spec>
Spec base_spec(py::handle limit, py::handle window) {
    Spec spec;
    spec.limit = to_count(limit, "limit");
    spec.window = to_positive_float(window, "window");
    return spec;
}

template <class Algo>
typename Algo::Spec parse_spec(py::handle limit, py::handle window, const py::dict&) {
    return base_spec<typename Algo::Spec>(limit, window);
}

template <>
TokenBucket::Spec parse_spec<TokenBucket>(py::handle limit, py::handle window,
                                          const py::dict& extras) {
    auto spec = base_spec<TokenBucket::Spec>(limit, window);
    spec.refill_rate = to_optional_positive_float(extra(extras, "refill_rate"), "refill_rate");
    return spec;
}

template <>
LeakyBucket::Spec parse_spec<LeakyBucket>(py::handle limit, py::handle window,
                                          const py::dict& extras) {
    auto spec = base_spec<LeakyBucket::Spec>(limit, window);
    spec.leak_rate = to_optional_positive_float(extra(extras, "leak_rate"), "leak_rate");
    return spec;
}

template <>
Gcra::Spec parse_spec<Gcra>(py::handle limit, py::handle window, const py::dict& extras) {
    auto spec = base_spec<Gcra::Spec>(limit, window);
    const py::handle burst = extra(extras, "burst");
    if (!burst.is_none()) spec.burst = to_count(burst, "burst");
    return spec;
}

template <>
Adaptive::Spec parse_spec<Adaptive>(py::handle limit, py::handle window, const py::dict& extras) {
    auto spec = base_spec<Adaptive::Spec>(limit, window);
    const auto number = [&](const char* name, double fallback) {
        const py::handle value = extra(extras, name);
        return value.is_none() ? fallback : to_finite_float(value, name);
    };
    spec.burst_multiplier = number("burst_multiplier", spec.burst_multiplier);
    spec.adaptive_window =
        to_optional_positive_float(extra(extras, "adaptive_window"), "adaptive_window");
    spec.high_load_threshold = number("high_load_threshold", spec.high_load_threshold);
    spec.low_load_threshold = number("low_load_threshold", spec.low_load_threshold);
    spec.penalty = number("penalty", spec.penalty);
    spec.load_capacity =
        to_optional_positive_float(extra(extras, "load_capacity"), "load_capacity");
    return spec;
}

// "fixed_window" -> "FixedWindowLimiter": the `_core` class name of an algorithm.
std::string class_name_of(const char* algorithm) {
    std::string out;
    bool upper = true;
    for (const char* c = algorithm; *c != '\0'; ++c) {
        if (*c == '_') {
            upper = true;
            continue;
        }
        out += upper ? static_cast<char>(*c - 'a' + 'A') : *c;
        upper = false;
    }
    return out + "Limiter";
}

// The methods every limiter has, bound once on the base class.
void bind_limiter_base(py::module_& m) {
    using L = LimiterBase;
    py::class_<L>(m, "_NativeLimiter")
        .def("is_allowed", &L::is_allowed, py::arg("key"), py::arg("cost") = 1)
        .def("_fast_is_allowed",
             [](py::object self) { return self.cast<L&>().fast_is_allowed(self); })
        .def("_redis_call", &L::redis_call, py::arg("key"), py::arg("cost"), py::arg("peek"),
             py::arg("use_server_time"), py::arg("binary_reply"))
        .def("_redis_result", &L::redis_result, py::arg("key"), py::arg("reply"),
             py::arg("limit"), py::arg("window"), py::arg("now"), py::arg("cost"))
        .def("peek", &L::peek, py::arg("key"))
        .def("is_allowed_many", &L::is_allowed_many, py::arg("keys"), py::arg("cost") = 1,
             py::kw_only(), py::arg("detail") = true)
        .def("reset", &L::reset, py::arg("key"))
        .def("state", &L::state, py::arg("key"))
        .def("_storage_key", &L::storage_key, py::arg("key"))
        .def_property_readonly("key_prefix", &L::key_prefix);
}

// `_core.<Name>Limiter`: only its constructor and `algorithm` are its own.
template <class Algo>
void bind_limiter(py::module_& m) {
    using L = Limiter<Algo>;
    py::class_<L, LimiterBase> cls(m, class_name_of(Algo::name).c_str());
    cls.def(py::init([](const py::object& backend, py::handle limit, py::handle window,
                        const py::dict& extras, std::string key_prefix, py::object clock,
                        py::object config_provider) {
                return new L(backend, parse_spec<Algo>(limit, window, extras),
                             std::move(key_prefix), std::move(clock), std::move(config_provider));
            }),
            py::arg("backend"), py::arg("limit"), py::arg("window"), py::arg("extras"),
            py::arg("key_prefix"), py::arg("clock"), py::arg("config_provider"));
    cls.attr("algorithm") = py::str(Algo::name);
}

// Runs Algo's own parameter check on (limit, window) with its default options; raises
// ConfigurationError naming both values and the algorithm that refuses them.
template <class Algo>
void check_with_defaults(std::int64_t limit, double window, py::handle limit_arg,
                         py::handle window_arg) {
    typename Algo::Spec spec;
    spec.limit = limit;
    spec.window = window;
    try {
        static_cast<void>(Algo::make_params(spec));
    } catch (const ConfigError& e) {
        raise_configuration_error("limit=" + repr_text(limit_arg) +
                                  " with window=" + repr_text(window_arg) +
                                  " is unusable by the " + Algo::name +
                                  " algorithm (default options): " + e.what());
    }
}

// The rules for a (limit, window) pair not yet bound to one limiter (DynamicConfig): the
// conversions every limiter constructor uses, then every algorithm's make_params with its
// default options, so a pair accepted here is accepted by any limiter built with default
// options. This catches derived values too: limit / window overflowing to inf (or
// window / limit underflowing to 0), the adaptive window 5 * window overflowing, and
// limit * burst_multiplier (default 2) beyond 2**52. Non-default options (a larger
// burst_multiplier, an explicit burst) are checked with the limiter's own values when it
// decides, with the same message.
py::tuple validate_limit_window(py::handle limit, py::handle window) {
    const std::int64_t n = to_count(limit, "limit");
    const double w = to_positive_float(window, "window");
    for_each_algorithm([&](auto tag) {
        check_with_defaults<typename decltype(tag)::type>(n, w, limit, window);
    });
    return py::make_tuple(n, w);
}

// What Python derives its per-algorithm tables from (ratelimiter.algorithms.registry).
py::tuple algorithms(const py::module_& m) {
    py::list out;
    for_each_algorithm([&](auto tag) {
        using Algo = typename decltype(tag)::type;
        py::list names;
        for (const MetaField& field : Algo::kMetadata) names.append(field.name);
        out.append(py::make_tuple(Algo::name, m.attr(class_name_of(Algo::name).c_str()),
                                  py::tuple(names)));
    });
    return py::tuple(out);
}

}  // namespace

void register_limiters(py::module_& m) {
    m.def("validate_limit_window", &validate_limit_window, py::arg("limit"), py::arg("window"),
          "Validate (limit, window) as every limiter would; returns (int, float) or raises "
          "ConfigurationError naming the parameter.");
    bind_limiter_base(m);
    for_each_algorithm([&](auto tag) { bind_limiter<typename decltype(tag)::type>(m); });
    const py::tuple table = algorithms(m);
    m.def("algorithms", [table]() { return table; },
          "Every algorithm in AlgorithmId order: (name, _core class, metadata names).");
}

}  // namespace ratelimiter::binding

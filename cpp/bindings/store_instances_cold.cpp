// The cold part's templates (store_instances.hpp): the cold stores' per-algorithm step
// paths, and Limiter<Algo>'s members off the memory store's path (limiter_cold.hpp),
// compiled once, at -O1.
#include "limiter_cold.hpp"
#include "store_instances.hpp"

namespace ratelimiter {

namespace py = pybind11;

#define RATELIMITER_DEFINE_COLD(Algo)                                                      \
    RATELIMITER_COLD_STORE_INSTANCES(template, Algo)                                       \
    template Decision binding::Limiter<Algo>::run_elsewhere(                               \
        std::string_view, double, std::int64_t, const Algo::Params&, Operation,            \
        const StepInputOf<Algo>&);                                                         \
    template void binding::Limiter<Algo>::decide_many_elsewhere(                           \
        PyObject* const*, const std::vector<std::string_view>&, double, std::int64_t,      \
        const Algo::Params&, double, bool, py::list&);                                     \
    template void binding::Limiter<Algo>::reset(py::handle);                               \
    template std::string binding::Limiter<Algo>::storage_key(py::handle) const;            \
    template std::vector<double> binding::Limiter<Algo>::state(py::handle);                \
    template py::tuple binding::Limiter<Algo>::redis_call(py::handle, py::handle, bool,    \
                                                          bool, bool);                     \
    template py::object binding::Limiter<Algo>::redis_result(                              \
        py::handle, const std::vector<std::string>&, std::int64_t, double, double,         \
        std::int64_t);
RATELIMITER_FOR_EACH_ALGORITHM(RATELIMITER_DEFINE_COLD)
#undef RATELIMITER_DEFINE_COLD

static_assert(kAlgorithmCount == 7, "RATELIMITER_FOR_EACH_ALGORITHM must list every algorithm");

}  // namespace ratelimiter

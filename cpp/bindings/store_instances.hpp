// Where each store's per-algorithm templates are compiled (build time, issue 8). The
// binding is two parts (CMakeLists.txt): a hot one at -O2 (the limiters, the memory store,
// result objects) and a cold one at -O1 (pybind11 registration, module setup, the SQLite,
// Redis, Python-backend and multi-limit paths: I/O-bound or run once). The declarations
// below keep a template out of the part that would otherwise instantiate it implicitly:
//   * the Python-backend store's single-step paths, reached from Limiter<Algo> (hot), are
//     compiled once, at -O1, in store_instances_cold.cpp, with Limiter<Algo>'s members
//     off the memory store's path (limiter_cold.hpp); the SQLite store's are compiled in
//     the core library (sqlite_store.cpp), which has no pybind11 to parse;
//   * the memory store's multi-limit paths, reached from MultiLimiter (cold), stay at -O2,
//     compiled in store_instances_hot.cpp (which also compiles every Limiter<Algo>).
// With GCC's LTO each function keeps the optimisation level of the TU that compiled it.
#pragma once

#include "python_backend_store.hpp"
#include "ratelimiter/algorithm/all.hpp"
#include "ratelimiter/store/memory_store.hpp"
#include "ratelimiter/store/sqlite_store.hpp"

#define RATELIMITER_COLD_STORE_INSTANCES(PREFIX, Algo)                                     \
    PREFIX Decision binding::PythonBackendStore::apply<Algo>(                               \
        std::string_view, double, std::int64_t, const Algo::Params&, Operation,             \
        const StepInputOf<Algo>&);

#define RATELIMITER_HOT_STORE_INSTANCES(PREFIX, Algo)                                       \
    PREFIX bool MemoryStore::apply_multi<Algo>(std::string_view,                            \
                                               const std::vector<std::string>&,             \
                                               const Algo::Params*, const std::int64_t*,    \
                                               double, MultiOp, Decision*);

namespace ratelimiter {

#define RATELIMITER_EXTERN_COLD(Algo) RATELIMITER_COLD_STORE_INSTANCES(extern template, Algo)
RATELIMITER_FOR_EACH_ALGORITHM(RATELIMITER_EXTERN_COLD)
#undef RATELIMITER_EXTERN_COLD

#define RATELIMITER_EXTERN_HOT(Algo) RATELIMITER_HOT_STORE_INSTANCES(extern template, Algo)
RATELIMITER_FOR_EACH_ALGORITHM(RATELIMITER_EXTERN_HOT)
#undef RATELIMITER_EXTERN_HOT

}  // namespace ratelimiter

// Where each store's per-algorithm templates are compiled (build time, issue 8). The
// binding is two parts (CMakeLists.txt): a hot one at -O2 (the limiters, the memory store,
// result objects) and a cold one at -O1 (pybind11 registration, module setup, the SQLite,
// Redis, Python-backend and multi-limit paths: I/O-bound or run once). The declarations
// below keep a template out of the part that would otherwise instantiate it implicitly:
//   * the Python-backend store's single-step paths, reached from Limiter<Algo>, are
//     compiled once, at -O1, in store_instances_cold.cpp, with Limiter<Algo>'s members
//     off the memory store's path (limiter_cold.hpp); the SQLite store's are compiled in
//     the core library (sqlite_store.cpp), which has no pybind11 to parse;
//   * the memory store's multi-limit paths: memory_instances.hpp.
// The hot part sees PythonBackendStore only as a declared class (store_ref.hpp): this
// header, with pybind11.h and stl.h behind it, is for the cold part.
// With GCC's LTO each function keeps the optimisation level of the TU that compiled it.
#pragma once

#include "memory_instances.hpp"
#include "python_backend_store.hpp"
#include "ratelimiter/algorithm/all.hpp"

#define RATELIMITER_COLD_STORE_INSTANCES(PREFIX, Algo)                                     \
    PREFIX Decision binding::PythonBackendStore::apply<Algo>(                               \
        std::string_view, double, std::int64_t, const Algo::Params&, Operation,             \
        const StepInputOf<Algo>&);

namespace ratelimiter {

#define RATELIMITER_EXTERN_COLD(Algo) RATELIMITER_COLD_STORE_INSTANCES(extern template, Algo)
RATELIMITER_FOR_EACH_ALGORITHM(RATELIMITER_EXTERN_COLD)
#undef RATELIMITER_EXTERN_COLD

}  // namespace ratelimiter

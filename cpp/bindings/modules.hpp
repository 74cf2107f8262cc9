// One registration function per area of the extension; module.cpp calls them in order.
#pragma once

#include <pybind11/pybind11.h>

namespace ratelimiter::binding {

// Maps the core's C++ exceptions to ratelimiter.exceptions classes (convert.hpp's
// translate_core_exception) wherever pybind11 dispatches a call.
void register_exception_translators();
void register_memory_store(pybind11::module_& m);
void register_sqlite_store(pybind11::module_& m);
void register_redis_store(pybind11::module_& m);
void register_limiters(pybind11::module_& m);
void register_multi(pybind11::module_& m);

}  // namespace ratelimiter::binding

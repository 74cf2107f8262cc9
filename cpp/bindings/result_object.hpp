// RateLimitResult's C base type. Creating a pybind11 class instance per decision costs more
// than the decision itself, so results are a plain CPython object with C fields: allocation
// plus a few stores. `metadata` is built from the numeric fields only when read. The public
// class ratelimiter.RateLimitResult subclasses this type in Python (headers, repr, equality).
#pragma once

#include <Python.h>

#include "ratelimiter/result.hpp"

namespace ratelimiter::binding {

// Registers the base type as `_core.RateLimitResultBase`.
void register_result_type(PyObject* module);

// Builds a result of the registered public class for a decision on `key` (a str).
PyObject* make_result(PyObject* key, std::int64_t limit, double window, const Decision& decision,
                      AlgorithmId algorithm);
// The same, of `type` (a subclass of the public class, e.g. MultiRateLimitResult).
PyObject* make_result_as(PyTypeObject* type, PyObject* key, std::int64_t limit, double window,
                         const Decision& decision, AlgorithmId algorithm);

}  // namespace ratelimiter::binding

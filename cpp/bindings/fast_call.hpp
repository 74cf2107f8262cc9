// A direct CPython entry point for `is_allowed`, bypassing pybind11's generic dispatcher
// (argument vectors, overload resolution), which otherwise costs as much as the decision.
// The public limiter binds the returned callable onto its instance as `is_allowed`.
#pragma once

#include <Python.h>

#include <pybind11/pytypes.h>

namespace ratelimiter::binding {

namespace py = pybind11;

// Sets the Python error for the exception being handled (inside a catch block).
void set_error_from_current_exception();

// A callable `(key, cost=1)` that runs `Target::is_allowed` on `target`, keeping `owner`
// (the pybind11 object that owns `target`) alive.
template <class Target>
py::object make_fast_is_allowed(Target* target, py::handle owner);

namespace detail {

struct FastCallSelf {
    PyObject_HEAD
    void* target;
    PyObject* owner;
};

PyTypeObject* fast_call_self_type();
// Parses (key, cost=1) from a vectorcall; returns false with a Python error set.
bool parse_key_cost(PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames, PyObject** key,
                    PyObject** cost);

template <class Target>
PyObject* fast_is_allowed(PyObject* self, PyObject* const* args, Py_ssize_t nargs,
                          PyObject* kwnames) {
    PyObject* key = nullptr;
    PyObject* cost = nullptr;
    if (!parse_key_cost(args, nargs, kwnames, &key, &cost)) return nullptr;
    auto* target = static_cast<Target*>(reinterpret_cast<FastCallSelf*>(self)->target);
    try {
        return target->is_allowed(key, cost).release().ptr();
    } catch (...) {
        set_error_from_current_exception();
        return nullptr;
    }
}

}  // namespace detail

template <class Target>
py::object make_fast_is_allowed(Target* target, py::handle owner) {
    static PyMethodDef def = {
        "is_allowed", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(
                          &detail::fast_is_allowed<Target>)),
        METH_FASTCALL | METH_KEYWORDS,
        "is_allowed(key, cost=1) -> RateLimitResult\n\nDecide one request of `cost` units for "
        "`key`, consuming quota if admitted."};
    PyTypeObject* type = detail::fast_call_self_type();
    auto* self = PyObject_New(detail::FastCallSelf, type);
    if (self == nullptr) throw py::error_already_set();
    self->target = target;
    self->owner = owner.inc_ref().ptr();
    PyObject* func = PyCFunction_NewEx(&def, reinterpret_cast<PyObject*>(self), nullptr);
    Py_DECREF(reinterpret_cast<PyObject*>(self));
    if (func == nullptr) throw py::error_already_set();
    return py::reinterpret_steal<py::object>(func);
}

}  // namespace ratelimiter::binding

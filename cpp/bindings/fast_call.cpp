#include "fast_call.hpp"

#include <stdexcept>

#include "convert.hpp"

namespace ratelimiter::binding {
namespace detail {
namespace {

void self_dealloc(PyObject* obj) {
    auto* self = reinterpret_cast<FastCallSelf*>(obj);
    Py_XDECREF(self->owner);
    PyTypeObject* type = Py_TYPE(obj);
    type->tp_free(obj);
    Py_DECREF(type);
}

}  // namespace

PyTypeObject* fast_call_self_type() {
    static PyTypeObject* type = [] {
        static PyType_Slot slots[] = {
            {Py_tp_dealloc, reinterpret_cast<void*>(self_dealloc)},
            {0, nullptr},
        };
        static PyType_Spec spec = {"ratelimiter._core._BoundLimiter",
                                   static_cast<int>(sizeof(FastCallSelf)), 0, Py_TPFLAGS_DEFAULT,
                                   slots};
        PyObject* created = PyType_FromSpec(&spec);
        if (created == nullptr) throw py::error_already_set();
        return reinterpret_cast<PyTypeObject*>(created);
    }();
    return type;
}

bool parse_key_cost(PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames, PyObject** key,
                    PyObject** cost) {
    static PyObject* one = PyLong_FromLong(1);
    if (nargs > 2) {
        PyErr_Format(PyExc_TypeError, "is_allowed() takes at most 2 arguments (%zd given)", nargs);
        return false;
    }
    *key = nargs >= 1 ? args[0] : nullptr;
    *cost = nargs >= 2 ? args[1] : nullptr;
    const Py_ssize_t nkw = kwnames == nullptr ? 0 : PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t i = 0; i < nkw; ++i) {
        PyObject* name = PyTuple_GET_ITEM(kwnames, i);
        PyObject** slot = nullptr;
        if (PyUnicode_CompareWithASCIIString(name, "key") == 0) slot = key;
        if (PyUnicode_CompareWithASCIIString(name, "cost") == 0) slot = cost;
        if (slot == nullptr) {
            PyErr_Format(PyExc_TypeError, "is_allowed() got an unexpected keyword argument '%U'",
                         name);
            return false;
        }
        if (*slot != nullptr) {
            PyErr_Format(PyExc_TypeError, "is_allowed() got multiple values for argument '%U'",
                         name);
            return false;
        }
        *slot = args[nargs + i];
    }
    if (*key == nullptr) {
        PyErr_SetString(PyExc_TypeError, "is_allowed() missing required argument 'key'");
        return false;
    }
    if (*cost == nullptr) *cost = one;
    return true;
}

}  // namespace detail

void set_error_from_current_exception() {
    try {
        throw;
    } catch (py::error_already_set& e) {
        e.restore();
    } catch (const py::builtin_exception& e) {
        e.set_error();
    } catch (const std::exception& e) {
        if (!translate_core_exception(e)) PyErr_SetString(PyExc_RuntimeError, e.what());
    } catch (...) {
        PyErr_SetString(PyExc_RuntimeError, "unknown C++ exception");
    }
}

}  // namespace ratelimiter::binding

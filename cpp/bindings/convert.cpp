#include "convert.hpp"

#include <cmath>

#include "ratelimiter/algorithm/common.hpp"
#include "ratelimiter/error.hpp"

namespace ratelimiter::binding {
namespace {

// Exception classes live in the pure-Python module; looked up once, kept for the process.
PyObject* exception_class(const char* name) {
    const auto exceptions =
        py::reinterpret_steal<py::object>(PyImport_ImportModule("ratelimiter.exceptions"));
    if (!exceptions) throw py::error_already_set();
    PyObject* cls = PyObject_GetAttrString(exceptions.ptr(), name);
    if (cls == nullptr) throw py::error_already_set();
    return cls;
}

PyObject* configuration_error() {
    static PyObject* cls = exception_class("ConfigurationError");
    return cls;
}
PyObject* configuration_type_error() {
    static PyObject* cls = exception_class("ConfigurationTypeError");
    return cls;
}

bool is_real_number(py::handle value) {
    return !PyBool_Check(value.ptr()) && (PyLong_Check(value.ptr()) || PyFloat_Check(value.ptr()));
}

}  // namespace

std::string type_name(py::handle value) { return Py_TYPE(value.ptr())->tp_name; }

std::string repr_text(py::handle value) { return std::string(py::repr(value)); }

py::object call_method(py::handle obj, const char* name) {
    PyObject* result = PyObject_CallMethod(obj.ptr(), name, nullptr);
    if (result == nullptr) throw py::error_already_set();
    return py::reinterpret_steal<py::object>(result);
}

void raise_configuration_error(const std::string& message) {
    PyErr_SetString(configuration_error(), message.c_str());
    throw py::error_already_set();
}

void raise_configuration_error_from(const std::string& message) {
    PyObject* cls = nullptr;
    {
        py::error_scope pending;  // the first lookup imports a module: not with an error set
        cls = configuration_error();
    }
    py::raise_from(cls, message.c_str());
    throw py::error_already_set();
}

void raise_configuration_type_error(const std::string& message) {
    PyErr_SetString(configuration_type_error(), message.c_str());
    throw py::error_already_set();
}

bool translate_core_exception(const std::exception& e) {
    if (dynamic_cast<const ConfigError*>(&e) != nullptr) {
        PyErr_SetString(configuration_error(), e.what());
    } else if (dynamic_cast<const BackendConnectionError*>(&e) != nullptr) {
        static PyObject* cls = exception_class("BackendConnectionError");
        PyErr_SetString(cls, e.what());
    } else if (dynamic_cast<const BackendError*>(&e) != nullptr) {
        static PyObject* cls = exception_class("BackendError");
        PyErr_SetString(cls, e.what());
    } else {
        return false;
    }
    return true;
}

std::int64_t to_count(py::handle value, const char* name) {
    PyObject* obj = value.ptr();
    if (PyBool_Check(obj) || !PyLong_Check(obj)) {
        raise_configuration_type_error(std::string(name) + " must be an int, got " +
                                       type_name(value));
    }
    int overflow = 0;
    const long long n = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (overflow != 0 || n <= 0 || n > kMaxCount) {
        raise_configuration_error(std::string(name) + " must be a positive int <= 2**52, got " +
                                  repr_text(value));
    }
    return n;
}

double to_finite_float(py::handle value, const char* name) {
    if (!is_real_number(value)) {
        raise_configuration_type_error(std::string(name) + " must be a number, got " +
                                       type_name(value));
    }
    const double x = PyFloat_AsDouble(value.ptr());
    if (x == -1.0 && PyErr_Occurred()) {  // an int too large for a double
        raise_configuration_error_from(std::string(name) +
                                       " is too large to be represented as a float");
    }
    if (!std::isfinite(x)) {
        raise_configuration_error(std::string(name) + " must be finite, got " +
                                  repr_text(value));
    }
    return x;
}

double to_positive_float(py::handle value, const char* name) {
    const double x = to_finite_float(value, name);
    if (x <= 0.0) {
        raise_configuration_error(std::string(name) + " must be > 0, got " +
                                  repr_text(value));
    }
    return x;
}

std::optional<double> to_optional_positive_float(py::handle value, const char* name) {
    if (value.is_none()) return std::nullopt;
    return to_positive_float(value, name);
}

std::string_view key_view(py::handle key, std::size_t prefix_bytes) {
    if (!PyUnicode_Check(key.ptr())) {
        raise_configuration_type_error("key must be a str, got " + type_name(key));
    }
    Py_ssize_t size = 0;
    const char* data = PyUnicode_AsUTF8AndSize(key.ptr(), &size);
    if (data == nullptr) {
        // A lone surrogate (U+D800 alone) has no UTF-8 form: the caller's key is at fault, so
        // say so in the library's own exception (the codec error stays as __cause__).
        if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) throw py::error_already_set();
        raise_configuration_error_from(
            "key must be encodable as UTF-8 (lone surrogates such as '\\ud800' are not)");
    }
    if (size == 0) raise_configuration_error("key must be a non-empty str");
    if (prefix_bytes + static_cast<std::size_t>(size) > kMaxKeyBytes) {
        raise_configuration_error("key is too long: " + std::to_string(size) +
                                  " bytes (with key_prefix at most " +
                                  std::to_string(kMaxKeyBytes) + " bytes of UTF-8)");
    }
    return {data, static_cast<std::size_t>(size)};
}

double read_clock(PyObject* clock) {
    static PyObject* time_module = PyImport_ImportModule("time");
    static PyObject* time_name = PyUnicode_InternFromString("time");
    if (time_module == nullptr || time_name == nullptr) throw py::error_already_set();
    // `time.time` is looked up at every call (patching it works), in the module's dict: what
    // getattr finds there, without the generic attribute machinery (a type lookup first).
    static PyObject* time_dict = PyModule_GetDict(time_module);  // borrowed; the module lives
    PyObject* raw;
    if (clock == nullptr) {
        PyObject* time_func = PyDict_GetItemWithError(time_dict, time_name);  // borrowed
        if (time_func == nullptr) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_AttributeError, "time.time is missing");
            throw py::error_already_set();
        }
        Py_INCREF(time_func);  // the call may replace time.time (and drop the dict's reference)
        raw = PyObject_CallNoArgs(time_func);
        Py_DECREF(time_func);
    } else {
        raw = PyObject_CallObject(clock, nullptr);
    }
    // The clock's own exception propagates unchanged: it is the caller's error, not ours.
    if (raw == nullptr) throw py::error_already_set();
    const auto result = py::reinterpret_steal<py::object>(raw);
    if (PyFloat_CheckExact(raw)) {
        const double now = PyFloat_AS_DOUBLE(raw);
        if (std::isfinite(now)) return now;  // the hot path: one check
    } else if (!is_real_number(result)) {
        raise_configuration_type_error("clock must return a number of seconds, got " +
                                       type_name(result));
    }
    // Every failure is raised here, before any store is touched, so no state changes.
    const double now = PyFloat_AsDouble(raw);
    if (now == -1.0 && PyErr_Occurred()) {  // an int beyond ~1.8e308, or a failing __float__
        raise_configuration_error_from("clock returned " + type_name(result) +
                                       " that cannot be represented as a float");
    }
    if (!std::isfinite(now)) {
        raise_configuration_error("clock returned a non-finite time: " +
                                  repr_text(result));
    }
    return now;
}

}  // namespace ratelimiter::binding

// Conversions from Python values to validated C++ values. Every check a caller's argument
// needs happens here, before any store is touched, so a rejected argument changes no state.
#pragma once

// pybind11's object types only (pytypes.h): the hot part of the binding includes this, and
// pybind11.h would cost it ~2.5 s of compile time (build time, issue 8; see limiter.hpp).
#include <pybind11/pytypes.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ratelimiter::binding {

namespace py = pybind11;

// Longest storage key accepted (prefix + key, UTF-8 bytes).
inline constexpr std::size_t kMaxKeyBytes = 1024;

// Raise ratelimiter.exceptions.ConfigurationError (a ValueError) / ConfigurationTypeError
// (both a ConfigurationError and a TypeError) with `message`.
[[noreturn]] void raise_configuration_error(const std::string& message);
[[noreturn]] void raise_configuration_type_error(const std::string& message);
// As raise_configuration_error, chaining the pending Python error as __cause__.
[[noreturn]] void raise_configuration_error_from(const std::string& message);

// Sets the Python error for a core exception (ConfigError, BackendError...); false if `e` is
// not one of them.
bool translate_core_exception(const std::exception& e);

// A positive int (bool rejected) no larger than 2**52.
std::int64_t to_count(py::handle value, const char* name);
// A finite float > 0 (int accepted, bool rejected).
double to_positive_float(py::handle value, const char* name);
std::optional<double> to_optional_positive_float(py::handle value, const char* name);
// A float (int accepted, bool rejected), any finite value; used for thresholds.
double to_finite_float(py::handle value, const char* name);

// The key's UTF-8 bytes, borrowed from the str object (valid while `key` is alive).
// Not a str → ConfigurationTypeError; empty, too long or not encodable → ConfigurationError.
std::string_view key_view(py::handle key, std::size_t prefix_bytes);

// Calls the limiter's clock (nullptr: time.time looked up now, so patching it works).
// A non-number → ConfigurationTypeError; an int too large for a double, a failing
// __float__ or a non-finite value → ConfigurationError naming `clock`; an exception raised
// by the clock itself propagates unchanged.
double read_clock(PyObject* clock);

std::string type_name(py::handle value);
// repr(value) as UTF-8, for messages.
std::string repr_text(py::handle value);

// obj.name() with no arguments; a Python exception propagates as error_already_set.
py::object call_method(py::handle obj, const char* name);

// Releases the GIL for its scope (pybind11's gil_scoped_release lives in pybind11/gil.h, which
// pulls in pybind11's internals; nothing released here calls back into pybind11).
class ReleasedGil {
public:
    ReleasedGil() : state_(PyEval_SaveThread()) {}
    ReleasedGil(const ReleasedGil&) = delete;
    ReleasedGil& operator=(const ReleasedGil&) = delete;
    ~ReleasedGil() { PyEval_RestoreThread(state_); }

private:
    PyThreadState* state_;
};

}  // namespace ratelimiter::binding

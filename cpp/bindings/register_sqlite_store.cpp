// `_core.SqliteStore`: the native state of ratelimiter.SQLiteBackend. Converts arguments and
// releases the GIL around every SQLite call (they may wait up to busy_timeout on a lock).
#include <pybind11/stl.h>

#include <algorithm>
#include <cctype>
#include <string>

#include "modules.hpp"
#include "store_ref.hpp"

namespace ratelimiter::binding {
namespace {

// Longest busy_timeout accepted: one day (keeps the milliseconds well inside int).
constexpr double kMaxBusyTimeout = 86400.0;

SqliteStore::Synchronous to_synchronous(py::handle value) {
    if (!py::isinstance<py::str>(value)) {
        raise_configuration_type_error("synchronous must be a str, got " + type_name(value));
    }
    std::string name = value.cast<std::string>();
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    if (name == "OFF") return SqliteStore::Synchronous::off;
    if (name == "NORMAL") return SqliteStore::Synchronous::normal;
    if (name == "FULL") return SqliteStore::Synchronous::full;
    if (name == "EXTRA") return SqliteStore::Synchronous::extra;
    raise_configuration_error("synchronous must be one of 'OFF', 'NORMAL', 'FULL', 'EXTRA', got " +
                              repr_text(value));
}

OnError to_on_error(py::handle value) {
    const std::optional<OnError> policy =
        py::isinstance<py::str>(value) ? on_error_from_name(value.cast<std::string>())
                                       : std::nullopt;
    if (!policy) {
        raise_configuration_error("on_error must be 'raise', 'allow' or 'deny', got " +
                                  repr_text(value));
    }
    return *policy;
}

std::shared_ptr<SqliteStore> make_store(py::handle db_path, py::handle wal_mode,
                                        py::handle busy_timeout, py::handle synchronous,
                                        py::handle on_error) {
    if (!py::isinstance<py::str>(db_path)) {
        raise_configuration_type_error("db_path must be a str or os.PathLike, got " +
                                       type_name(db_path));
    }
    std::string path = db_path.cast<std::string>();
    if (path.find('\0') != std::string::npos) {
        raise_configuration_error("db_path must not contain NUL characters");
    }
    if (!PyBool_Check(wal_mode.ptr())) {
        raise_configuration_type_error("wal_mode must be a bool, got " + type_name(wal_mode));
    }
    const double timeout = to_finite_float(busy_timeout, "busy_timeout");
    if (timeout < 0.0 || timeout > kMaxBusyTimeout) {
        raise_configuration_error("busy_timeout must be between 0 and 86400 seconds, got " +
                                  repr_text(busy_timeout));
    }
    SqliteStore::Options options;
    options.wal_mode = wal_mode.ptr() == Py_True;
    options.busy_timeout = std::chrono::milliseconds(static_cast<std::int64_t>(timeout * 1000.0));
    options.synchronous = to_synchronous(synchronous);
    options.on_error = to_on_error(on_error);
    py::gil_scoped_release release;  // opening may wait on another process's lock
    return std::make_shared<SqliteStore>(std::move(path), options);
}

// Runs `f` without the GIL; a primitive used on the wrong kind of value is a TypeError.
template <class F>
auto released(F&& f) -> decltype(f()) {
    try {
        py::gil_scoped_release release;
        return f();
    } catch (const WrongTypeError& e) {
        throw py::type_error(e.what());
    }
}

std::optional<double> to_optional_ttl(py::handle ttl) {
    if (ttl.is_none()) return std::nullopt;
    return to_finite_float(ttl, "ttl");
}

}  // namespace

void register_sqlite_store(py::module_& m) {
    using Store = SqliteStore;
    using Members = std::vector<std::pair<std::string, double>>;
    py::class_<Store, std::shared_ptr<Store>>(m, "SqliteStore")
        .def(py::init(&make_store), py::arg("db_path"), py::arg("wal_mode") = true,
             py::arg("busy_timeout") = 5.0, py::arg("synchronous") = "NORMAL",
             py::arg("on_error") = "raise")
        .def_property_readonly("path", &Store::path)
        .def_property_readonly("counters",
                               [](const Store& s) {
                                   const FallbackCounters c = s.counters();
                                   return py::dict(py::arg("errors") = c.errors,
                                                   py::arg("fallback_allowed") = c.fallback_allowed,
                                                   py::arg("fallback_denied") = c.fallback_denied);
                               })
        .def("__len__", [](Store& s) { return released([&] { return s.size(); }); })
        .def("purge_expired",
             [](Store& s, double now) { return released([&] { return s.purge_expired(now); }); },
             py::arg("now"))
        .def("ping", [](Store& s) { return released([&] { return s.ping(); }); })
        .def("close", [](Store& s) { released([&] { s.close(); }); })
        .def(
            "get",
            [](Store& s, const std::string& key, double now) {
                return released([&] { return s.get(key, now); });
            },
            py::arg("key"), py::arg("now"))
        .def(
            "set",
            [](Store& s, const std::string& key, const std::string& value, py::handle ttl,
               double now) {
                const std::optional<double> t = to_optional_ttl(ttl);
                released([&] { s.set(key, value, t, now); });
            },
            py::arg("key"), py::arg("value"), py::arg("ttl"), py::arg("now"))
        .def(
            "delete",
            [](Store& s, const std::string& key) { return released([&] { return s.del(key); }); },
            py::arg("key"))
        .def(
            "incr",
            [](Store& s, const std::string& key, std::int64_t amount, double now) {
                return released([&] { return s.incr(key, amount, now); });
            },
            py::arg("key"), py::arg("amount"), py::arg("now"))
        .def(
            "expire",
            [](Store& s, const std::string& key, py::handle ttl, double now) {
                const double t = to_finite_float(ttl, "ttl");
                return released([&] { return s.expire(key, t, now); });
            },
            py::arg("key"), py::arg("ttl"), py::arg("now"))
        .def(
            "zadd",
            [](Store& s, const std::string& key, double score, const std::string& member,
               double now) { released([&] { s.zadd(key, score, member, now); }); },
            py::arg("key"), py::arg("score"), py::arg("member"), py::arg("now"))
        .def(
            "zremrangebyscore",
            [](Store& s, const std::string& key, double min, double max, double now) {
                return released([&] { return s.zremrangebyscore(key, min, max, now); });
            },
            py::arg("key"), py::arg("min_score"), py::arg("max_score"), py::arg("now"))
        .def(
            "zcard",
            [](Store& s, const std::string& key, double now) {
                return released([&] { return s.zcard(key, now); });
            },
            py::arg("key"), py::arg("now"))
        .def(
            "zrange_by_score",
            [](Store& s, const std::string& key, double min, double max, double now) -> Members {
                return released([&] { return s.zrange_by_score(key, min, max, now); });
            },
            py::arg("key"), py::arg("min_score"), py::arg("max_score"), py::arg("now"));
}

}  // namespace ratelimiter::binding

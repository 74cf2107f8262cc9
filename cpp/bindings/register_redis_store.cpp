// `_core.RedisStore`: the native state of ratelimiter.RedisBackend, and `_core.lua_scripts()`.
// Two transports: hiredis connections (a plain redis.Redis client or a URL), or a Python
// object that runs the same scripts through a user's own client (SSL, Sentinel, fakeredis,
// custom connection classes). Either way decisions go through RedisStore, so the limiter
// binding needs nothing Redis-specific.
#include <pybind11/stl.h>

#include <cmath>
#include <cstdio>
#include <optional>

#include "modules.hpp"
#include "ratelimiter/store/lua_index.hpp"
#include "store_ref.hpp"

namespace ratelimiter::binding {
namespace {

PyObject* exceptions_attr(const char* name) {
    return py::object(py::module_::import("ratelimiter.exceptions").attr(name)).release().ptr();
}

// Python str/bytes/int/float → the bytes Redis receives.
std::string to_redis_arg(py::handle value) {
    PyObject* obj = value.ptr();
    if (PyBytes_Check(obj)) return value.cast<std::string>();
    if (PyUnicode_Check(obj)) return value.cast<std::string>();
    if (PyBool_Check(obj)) throw py::type_error("redis arguments must be str, bytes, int or float");
    if (PyLong_Check(obj)) return py::str(value).cast<std::string>();
    if (PyFloat_Check(obj)) {
        char buffer[32];
        const int n = std::snprintf(buffer, sizeof buffer, "%.17g", value.cast<double>());
        return std::string(buffer, static_cast<std::size_t>(n));
    }
    throw py::type_error("redis arguments must be str, bytes, int or float, got " +
                         type_name(value));
}

py::object to_python(const RedisValue& v) {
    switch (v.type) {
        case RedisValue::Type::integer: return py::int_(v.integer);
        case RedisValue::Type::string: return py::bytes(v.str);
        case RedisValue::Type::status:
        case RedisValue::Type::error: return py::str(v.str);
        case RedisValue::Type::array: {
            py::list out;
            for (const auto& e : v.elements) out.append(to_python(e));
            return std::move(out);
        }
        case RedisValue::Type::nil: break;
    }
    return py::none();
}

RedisValue from_python(py::handle obj) {
    RedisValue v;
    if (obj.is_none()) return v;
    if (PyBool_Check(obj.ptr())) {
        v.type = RedisValue::Type::status;
        v.str = obj.ptr() == Py_True ? "OK" : "ERR";
    } else if (PyLong_Check(obj.ptr())) {
        v.type = RedisValue::Type::integer;
        v.integer = obj.cast<std::int64_t>();
    } else if (PyBytes_Check(obj.ptr()) || PyUnicode_Check(obj.ptr())) {
        v.type = RedisValue::Type::string;
        v.str = obj.cast<std::string>();
    } else if (py::isinstance<py::sequence>(obj)) {
        v.type = RedisValue::Type::array;
        for (py::handle e : py::reinterpret_borrow<py::sequence>(obj)) {
            v.elements.push_back(from_python(e));
        }
    } else {
        v.type = RedisValue::Type::string;
        v.str = py::str(obj).cast<std::string>();
    }
    return v;
}

py::list str_list(const std::vector<std::string>& items) {
    py::list out;
    for (const auto& item : items) out.append(py::str(item));
    return out;
}

// A script reply as eval returns it (one binary string, or a list) → its fields.
std::vector<std::string> reply_fields(py::handle reply) {
    if (PyBytes_Check(reply.ptr()) || PyUnicode_Check(reply.ptr())) {
        return {reply.cast<std::string>()};
    }
    std::vector<std::string> out;
    for (py::handle e : py::reinterpret_borrow<py::sequence>(reply)) {
        out.push_back(e.cast<std::string>());
    }
    return out;
}

// Runs scripts through a Python object with methods eval(name, key, args) (EVALSHA of
// lua_scripts()[name], NOSCRIPT handled), eval_multi(name, keys, args) (the multi-limit
// script), eval_many(name, keys, args), delete(key) and command(*argv)
// (ratelimiter.backends.redis_backend._ClientOps). Called without the GIL (the limiter
// released it); takes it for the Python call.
class PyClientTransport final : public RedisTransport {
public:
    explicit PyClientTransport(py::object ops) : ops_(std::move(ops)) {}
    ~PyClientTransport() override {
        py::gil_scoped_acquire gil;
        ops_ = py::object();
    }

    std::vector<std::string> eval(AlgorithmId algorithm, const std::string& key,
                                  const std::vector<std::string>& args) override {
        return run_script("eval", lua::script(algorithm), [&] { return py::str(key); }, args);
    }

    std::vector<std::string> eval_multi(AlgorithmId algorithm, const std::vector<std::string>& keys,
                                        const std::vector<std::string>& args) override {
        return run_script("eval_multi", lua::multi_script(algorithm),
                          [&] { return str_list(keys); }, args);
    }

    // ops.eval_many(name, keys, args) → one item per key: the reply, or the exception
    // that key's call raised (e.g. a redis-py pipeline run with raise_on_error=False).
    std::vector<ScriptReply> eval_many(AlgorithmId algorithm, const std::vector<std::string>& keys,
                                       const std::vector<std::string>& args) override {
        const lua::Script& script = lua::script(algorithm);
        py::gil_scoped_acquire gil;
        return guarded([&] {
            const py::object replies =
                ops_.attr("eval_many")(script.name, str_list(keys), str_list(args));
            std::vector<ScriptReply> out;
            out.reserve(keys.size());
            for (py::handle reply : py::reinterpret_borrow<py::sequence>(replies)) {
                ScriptReply r;
                if (PyExceptionInstance_Check(reply.ptr())) {
                    r.error = type_name(reply) + ": " + py::str(reply).cast<std::string>();
                } else {
                    r.fields = reply_fields(reply);
                }
                out.push_back(std::move(r));
            }
            return out;
        });
    }

    void del(const std::string& key) override {
        py::gil_scoped_acquire gil;
        guarded([&] {
            ops_.attr("delete")(key);
            return 0;
        });
    }

    RedisValue command(const std::vector<std::string>& argv) override {
        py::gil_scoped_acquire gil;
        return guarded([&] {
            py::tuple py_argv(argv.size());
            for (std::size_t i = 0; i < argv.size(); ++i) py_argv[i] = py::bytes(argv[i]);
            return from_python(ops_.attr("command")(*py_argv));
        });
    }

    // A user's client may decode every reply as UTF-8 (decode_responses=True).
    bool binary_replies() const override { return false; }

private:
    // ops.<method>(script name, keys, args), the single and multi-limit scripts alike;
    // `keys` builds the key argument (a str, or a list of them) once the GIL is held.
    template <class Keys>
    std::vector<std::string> run_script(const char* method, const lua::Script& script,
                                        Keys&& keys, const std::vector<std::string>& args) {
        py::gil_scoped_acquire gil;
        return guarded([&] {
            return reply_fields(ops_.attr(method)(script.name, keys(), str_list(args)));
        });
    }

    // Python exceptions → the core's errors, so on_error applies to the client path too.
    // Only Exception subclasses: KeyboardInterrupt and SystemExit propagate unchanged.
    template <class F>
    auto guarded(F&& f) -> decltype(f()) {
        static PyObject* connection_error = exceptions_attr("BackendConnectionError");
        // A configuration mistake found on the way (keys of one decision in several cluster
        // slots) is not an outage: it reaches the caller as is, whatever on_error says.
        static PyObject* configuration_error = exceptions_attr("ConfigurationError");
        try {
            return f();
        } catch (py::error_already_set& e) {
            if (!e.matches(PyExc_Exception) || e.matches(configuration_error)) throw;
            // e.type() is the exception's class: its __name__, not type_name (that is "type").
            const std::string message = e.type().attr("__name__").cast<std::string>() + ": " +
                                        py::str(e.value()).cast<std::string>();
            if (e.matches(connection_error)) throw BackendConnectionError(message);
            throw BackendError(message);
        } catch (const py::cast_error& e) {
            throw BackendError(std::string("redis client returned an unexpected reply: ") + e.what());
        }
    }

    py::object ops_;
};

OnError parse_on_error(const std::string& value) {
    if (value == "raise") return OnError::raise;
    if (value == "allow") return OnError::allow;
    if (value == "deny") return OnError::deny;
    raise_configuration_error("on_error must be 'raise', 'allow' or 'deny', got '" + value + "'");
}

const char* on_error_name(OnError policy) {
    switch (policy) {
        case OnError::allow: return "allow";
        case OnError::deny: return "deny";
        case OnError::raise: break;
    }
    return "raise";
}

double timeout_arg(py::handle value, const char* name) {
    const double seconds = to_positive_float(value, name);
    if (seconds > 86400.0) raise_configuration_error(std::string(name) + " must be <= 86400 s");
    return seconds;
}

// rejection_cache_entries: 0 (no cache) or the cache's bound.
std::size_t cache_entries_arg(py::handle value) {
    if (PyBool_Check(value.ptr()) || !PyLong_Check(value.ptr())) {
        raise_configuration_type_error("rejection_cache_size must be an int, got " +
                                       type_name(value));
    }
    const long long n = value.cast<long long>();
    if (n < 0 || n > 100'000'000) {
        raise_configuration_error("rejection_cache_size must be in 1..100000000, got " +
                                  std::to_string(n));
    }
    return static_cast<std::size_t>(n);
}

std::shared_ptr<RedisStore> with_cache(std::shared_ptr<RedisStore> store, std::size_t entries) {
    if (entries > 0) store->set_rejection_cache(std::make_shared<RejectionCache>(entries));
    return store;
}

AlgorithmId algorithm_arg(const std::string& name) {
    const std::size_t index = algorithm_index(name.c_str());
    if (index >= kAlgorithmCount) raise_configuration_error("unknown algorithm '" + name + "'");
    return static_cast<AlgorithmId>(index);
}

py::dict cache_counters(const RejectionCacheCounters& c, py::dict into) {
    into["cache_hits"] = c.hits;
    into["rejections_cached"] = c.recorded;
    into["cache_evictions"] = c.evictions;
    into["cache_entries"] = c.entries;
    return into;
}

// {name: source} of a script table (single-limit or multi-limit).
template <class Table>
py::dict scripts_dict(const Table& table) {
    py::dict out;
    for (const auto& script : table) out[script.name] = py::str(script.source);
    return out;
}

// `_core.RejectionCache`: the native store's cache (store/rejection_cache.hpp) for front
// ends that run the script call themselves (AsyncRedisBackend). They call ticket() and
// lookup() before sending, record() with the raw reply after; a hit is a reply for the
// limiter's reader (RedisStore::cached_reply), so the result is built as for Redis's own.
void register_rejection_cache(py::module_& m) {
    py::class_<RejectionCache, std::shared_ptr<RejectionCache>>(m, "RejectionCache")
        .def(py::init([](py::handle max_entries) {
                 const std::size_t n = cache_entries_arg(max_entries);
                 if (n == 0) raise_configuration_error("rejection_cache_size must be >= 1");
                 return std::make_shared<RejectionCache>(n);
             }),
             py::arg("max_entries") = RejectionCache::kDefaultMaxEntries)
        .def_static("monotonic", &RejectionCache::monotonic_now,
                    "Seconds on the clock the cache's expiries use (steady_clock).")
        .def("ticket", [](const RejectionCache& c, const std::string& storage_key) {
            return c.ticket(storage_key);
        }, py::arg("storage_key"))
        .def(
            "lookup",
            [](RejectionCache& c, const std::string& storage_key, const std::string& algorithm,
               const std::vector<std::string>& args, std::optional<double> mono) -> py::object {
                const AlgorithmId id = algorithm_arg(algorithm);
                Decision d;
                const double at = mono ? *mono : RejectionCache::monotonic_now();
                if (!c.lookup(storage_key, id, args, at, d)) return py::none();
                return py::object(str_list(RedisStore::cached_reply(id, d)));
            },
            py::arg("storage_key"), py::arg("algorithm"), py::arg("args"),
            py::arg("mono") = py::none(),
            "The cached rejection for this script call as a reply, or None (ask Redis).")
        .def(
            "record",
            [](RejectionCache& c, const std::string& storage_key, const std::string& algorithm,
               const std::vector<std::string>& args, py::handle reply, double mono_sent,
               std::uint64_t ticket) {
                const AlgorithmId id = algorithm_arg(algorithm);
                Decision d;
                try {
                    d = RedisStore::parse_reply(id, reply_fields(reply));
                } catch (const std::exception&) {  // BackendError, or a Python cast error
                    return;  // malformed: the limiter's own reading of it raises
                }
                c.record(storage_key, id, args, d, mono_sent, ticket);
            },
            py::arg("storage_key"), py::arg("algorithm"), py::arg("args"), py::arg("reply"),
            py::arg("mono_sent"), py::arg("ticket"),
            "Remember Redis's reply to this script call if it is a rejection worth caching.")
        .def("invalidate", [](RejectionCache& c, const std::string& storage_key) {
            c.invalidate(storage_key);
        }, py::arg("storage_key"))
        .def("clear", &RejectionCache::clear)
        .def_property_readonly("max_entries", &RejectionCache::max_entries)
        .def_property_readonly("counters", [](const RejectionCache& c) {
            return cache_counters(c.counters(), py::dict());
        })
        .def("__len__", [](const RejectionCache& c) { return c.counters().entries; });
}

}  // namespace

void register_redis_store(py::module_& m) {
    register_rejection_cache(m);
    py::class_<RedisStore, std::shared_ptr<RedisStore>>(m, "RedisStore")
        .def(py::init([](std::string host, int port, int db, std::string username,
                         std::string password, std::string unix_socket, py::handle timeout,
                         py::handle connect_timeout, std::string key_prefix,
                         bool use_server_time, const std::string& on_error,
                         std::vector<std::pair<std::string, int>> cluster_nodes,
                         py::handle rejection_cache_entries) {
                 if (port <= 0 || port > 65535) raise_configuration_error("port must be in 1..65535");
                 for (const auto& node : cluster_nodes) {
                     if (node.first.empty() || node.second <= 0 || node.second > 65535) {
                         raise_configuration_error(
                             "cluster_nodes must be (host, port) pairs with a port in 1..65535");
                     }
                 }
                 if (db < 0) raise_configuration_error("db must be >= 0");
                 RedisOptions options;
                 options.host = std::move(host);
                 options.port = port;
                 options.db = db;
                 options.username = std::move(username);
                 options.password = std::move(password);
                 options.unix_socket = std::move(unix_socket);
                 options.command_timeout = timeout_arg(timeout, "timeout");
                 options.connect_timeout = timeout_arg(connect_timeout, "connect_timeout");
                 options.cluster_nodes = std::move(cluster_nodes);
                 const OnError policy = parse_on_error(on_error);
                 const std::size_t cache = cache_entries_arg(rejection_cache_entries);
                 py::gil_scoped_release release;  // a cluster store loads its slot map now
                 return with_cache(std::make_shared<RedisStore>(std::move(options),
                                                                std::move(key_prefix),
                                                                use_server_time, policy),
                                   cache);
             }),
             py::kw_only(), py::arg("host") = "127.0.0.1", py::arg("port") = 6379,
             py::arg("db") = 0, py::arg("username") = "", py::arg("password") = "",
             py::arg("unix_socket") = "", py::arg("timeout") = 0.5,
             py::arg("connect_timeout") = 0.25, py::arg("key_prefix") = RedisStore::kDefaultKeyPrefix,
             py::arg("use_server_time") = true, py::arg("on_error") = "raise",
             py::arg("cluster_nodes") = std::vector<std::pair<std::string, int>>{},
             py::arg("rejection_cache_entries") = 0)
        .def_static(
            "with_client_ops",
            [](py::object ops, std::string key_prefix, bool use_server_time,
               const std::string& on_error, py::handle rejection_cache_entries) {
                const OnError policy = parse_on_error(on_error);
                return with_cache(std::make_shared<RedisStore>(
                                      std::make_unique<PyClientTransport>(std::move(ops)),
                                      std::move(key_prefix), use_server_time, policy),
                                  cache_entries_arg(rejection_cache_entries));
            },
            py::arg("ops"), py::kw_only(), py::arg("key_prefix") = RedisStore::kDefaultKeyPrefix,
            py::arg("use_server_time") = true, py::arg("on_error") = "raise",
            py::arg("rejection_cache_entries") = 0,
            "A store whose scripts run through `ops` (eval/delete/command), e.g. a redis-py client.")
        .def(
            "command",
            [](RedisStore& store, const py::args& args) {
                std::vector<std::string> argv;
                for (py::handle a : args) argv.push_back(to_redis_arg(a));
                if (argv.empty()) throw py::value_error("command() needs at least the command name");
                RedisValue reply;
                {
                    py::gil_scoped_release release;
                    reply = store.command(argv);
                }
                return to_python(reply);
            },
            "Runs one Redis command; strings come back as bytes. Errors raise BackendError.")
        .def("ping", &RedisStore::ping, py::call_guard<py::gil_scoped_release>())
        .def("close", &RedisStore::close, py::call_guard<py::gil_scoped_release>())
        .def("storage_key", [](const RedisStore& s, const std::string& key,
                               const std::string& algorithm) {
            return py::bytes(s.storage_key(key, algorithm.c_str()));
        }, py::arg("key"), py::arg("algorithm"))
        .def_property_readonly("counters",
                               [](const RedisStore& s) {
                                   const RedisCounters c = s.counters();
                                   py::dict d;
                                   d["errors"] = c.errors;
                                   d["fallback_allowed"] = c.fallback_allowed;
                                   d["fallback_denied"] = c.fallback_denied;
                                   // With a rejection cache, its counters too.
                                   const auto& cache = s.rejection_cache();
                                   return cache ? cache_counters(cache->counters(), d) : d;
                               })
        .def_property_readonly("key_prefix", &RedisStore::key_prefix)
        .def_property_readonly("use_server_time", &RedisStore::use_server_time)
        .def_property_readonly("on_error",
                               [](const RedisStore& s) { return on_error_name(s.on_error()); });

    m.def(
        "lua_scripts",
        [] { return scripts_dict(lua::kScripts); },
        "The Redis Lua script of every algorithm: {name: source}. RedisStore runs these; "
        "AsyncRedisBackend runs the same sources.");
    m.def(
        "lua_multi_scripts",
        [] { return scripts_dict(lua::kMultiScripts); },
        "The multi-limit Redis Lua script of every algorithm MultiRateLimiter runs: "
        "{name: source}.");
}

}  // namespace ratelimiter::binding

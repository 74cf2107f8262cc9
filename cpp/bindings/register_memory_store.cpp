// `_core.MemoryStore`: the native state of ratelimiter.MemoryBackend.
#include "modules.hpp"
#include "store_ref.hpp"

namespace ratelimiter::binding {

StoreRef store_from_backend(const py::object& backend) {
    const py::object native = py::getattr(backend, "_native", py::none());
    if (py::isinstance<MemoryStore>(native)) return native.cast<std::shared_ptr<MemoryStore>>();
    if (py::isinstance<SqliteStore>(native)) return native.cast<std::shared_ptr<SqliteStore>>();
    if (py::isinstance<RedisStore>(native)) return native.cast<std::shared_ptr<RedisStore>>();
    if (py::getattr(backend, "is_async", py::bool_(false)).is(py::bool_(true))) {
        return std::make_shared<AsyncOnlyStore>();
    }
    for (const char* method : {"get", "set", "delete"}) {
        if (!py::hasattr(backend, method)) {
            raise_configuration_type_error(
                "backend must be a ratelimiter backend or a BaseBackend subclass, got " +
                type_name(backend));
        }
    }
    return std::make_shared<PythonBackendStore>(backend);
}

void register_memory_store(py::module_& m) {
    py::class_<MemoryStore, std::shared_ptr<MemoryStore>>(m, "MemoryStore")
        .def(py::init([](py::handle max_keys) {
                 return std::make_shared<MemoryStore>(
                     static_cast<std::size_t>(to_count(max_keys, "max_keys")));
             }),
             py::arg("max_keys") = MemoryStore::kDefaultMaxKeys)
        .def("__len__", &MemoryStore::size)
        .def_property_readonly("max_keys", &MemoryStore::max_keys)
        .def_property_readonly("evictions", &MemoryStore::evictions)
        .def("purge_expired", &MemoryStore::purge_expired, py::arg("now"))
        .def("clear", &MemoryStore::clear);
}

// The binding floor for bench/: the cheapest call pybind11 can make.
void register_noop(py::module_& m) {
    m.def("_noop", [](py::handle, py::handle) {}, py::arg("key"), py::arg("cost") = 1);
}

}  // namespace ratelimiter::binding

// store_from_backend: which store a limiter runs on, for every kind of backend.
#include "store_ref.hpp"

#include "convert.hpp"
#include "modules.hpp"
#include "store_instances.hpp"

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

}  // namespace ratelimiter::binding

// `_core.MemoryStore`: the native state of ratelimiter.MemoryBackend.
#include "convert.hpp"
#include "modules.hpp"
#include "ratelimiter/store/memory_store.hpp"

namespace ratelimiter::binding {

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

}  // namespace ratelimiter::binding

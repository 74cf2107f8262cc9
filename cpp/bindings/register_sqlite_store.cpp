// `_core.SqliteStore`: the native state of ratelimiter.SqliteBackend. PLACEHOLDER (issue 3).
#include "modules.hpp"
#include "store_ref.hpp"

namespace ratelimiter::binding {

void register_sqlite_store(py::module_& m) {
    py::class_<SqliteStore, std::shared_ptr<SqliteStore>>(m, "SqliteStore");
}

}  // namespace ratelimiter::binding

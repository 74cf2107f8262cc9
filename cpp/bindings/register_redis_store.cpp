// `_core.RedisStore`: the native state of ratelimiter.RedisBackend. PLACEHOLDER (issue 3).
#include "modules.hpp"
#include "store_ref.hpp"

namespace ratelimiter::binding {

void register_redis_store(py::module_& m) {
    py::class_<RedisStore, std::shared_ptr<RedisStore>>(m, "RedisStore");
}

}  // namespace ratelimiter::binding

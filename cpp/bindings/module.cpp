// The extension module `ratelimiter._core`. Private: the package re-exports public names.
#include "convert.hpp"
#include "modules.hpp"
#include "result_object.hpp"

PYBIND11_MODULE(_core, m) {
    m.doc() = "smart-ratelimiter C++ core (private; use the ratelimiter package).";
    ratelimiter::binding::register_exception_translators();
    ratelimiter::binding::register_result_type(m.ptr());
    ratelimiter::binding::register_memory_store(m);
    ratelimiter::binding::register_sqlite_store(m);
    ratelimiter::binding::register_redis_store(m);
    ratelimiter::binding::register_limiters(m);
    ratelimiter::binding::register_multi(m);
    ratelimiter::binding::register_noop(m);
}

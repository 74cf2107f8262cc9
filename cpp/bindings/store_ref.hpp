// The stores a limiter can run on, and whether a step on each releases the GIL.
#pragma once

#include <memory>
#include <variant>

#include "convert.hpp"
#include "memory_instances.hpp"
#include "ratelimiter/store/memory_store.hpp"
#include "ratelimiter/store/redis_store.hpp"
#include "ratelimiter/store/sqlite_store.hpp"

namespace ratelimiter::binding {

// A user's BaseBackend (python_backend_store.hpp). Only declared here: the hot part holds it
// in a StoreRef but never steps it, and its definition needs pybind11.h and stl.h.
class PythonBackendStore;

// An asyncio backend (AsyncRedisBackend): decisions go through the limiter's *_async
// methods; a synchronous call is a usage error with a clear message.
struct AsyncOnlyStore {
    template <class Algo>
    Decision apply(std::string_view, double, std::int64_t, const typename Algo::Params&,
                   Operation, const StepInputOf<Algo>& = {}) {
        throw ConfigError(
            "this limiter's backend is asynchronous: use `await limiter.is_allowed_async(...)` "
            "or wrap the limiter in AsyncRateLimiter");
    }
    template <class Algo>
    bool erase(std::string_view) {
        throw ConfigError("this limiter's backend is asynchronous: use `await "
                          "limiter.reset_async(...)`");
    }
};

using StoreRef = std::variant<std::shared_ptr<MemoryStore>, std::shared_ptr<PythonBackendStore>,
                              std::shared_ptr<SqliteStore>, std::shared_ptr<RedisStore>,
                              std::shared_ptr<AsyncOnlyStore>>;

// A memory step is cheaper than releasing and re-taking the GIL (see bench/), so it keeps it;
// a Python backend needs it. I/O-bound stores release it.
template <class Store>
struct StoreTraits {
    static constexpr bool kReleaseGil = false;
};

template <>
struct StoreTraits<SqliteStore> {
    static constexpr bool kReleaseGil = true;
};
template <>
struct StoreTraits<RedisStore> {
    static constexpr bool kReleaseGil = true;
};

// Resolves what a limiter was given: a native store object, or a user's backend.
StoreRef store_from_backend(const py::object& backend);

}  // namespace ratelimiter::binding

// The stores a limiter can run on, and whether a step on each releases the GIL.
#pragma once

#include <memory>
#include <variant>

#include "python_backend_store.hpp"
#include "ratelimiter/store/memory_store.hpp"
#include "ratelimiter/store/redis_store.hpp"
#include "ratelimiter/store/sqlite_store.hpp"

namespace ratelimiter::binding {

using StoreRef = std::variant<std::shared_ptr<MemoryStore>, std::shared_ptr<PythonBackendStore>,
                              std::shared_ptr<SqliteStore>, std::shared_ptr<RedisStore>>;

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

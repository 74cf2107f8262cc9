// SqliteStore: PLACEHOLDER wired into the bindings; to be implemented (issue 3).
#pragma once

#include <cstdint>
#include <string_view>

#include "ratelimiter/error.hpp"
#include "ratelimiter/result.hpp"
#include "ratelimiter/store/operation.hpp"

namespace ratelimiter {

class SqliteStore {
public:
    template <class Algo>
    Decision apply(std::string_view, double, std::int64_t, const typename Algo::Params&, Operation) {
        throw BackendError("SqliteStore is not implemented yet");
    }
    template <class Algo>
    bool erase(std::string_view) {
        throw BackendError("SqliteStore is not implemented yet");
    }
};

}  // namespace ratelimiter

// What a caller asks a store to do with one key's state.
#pragma once

namespace ratelimiter {

enum class Operation {
    consume,  // decide and, if admitted, consume (is_allowed)
    peek,     // decide a cost-1 request without changing anything
};

}  // namespace ratelimiter

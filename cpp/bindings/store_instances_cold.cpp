// The cold stores' per-algorithm step paths, compiled once, at -O1 (store_instances.hpp).
#include "store_instances.hpp"

namespace ratelimiter {

#define RATELIMITER_DEFINE_COLD(Algo) RATELIMITER_COLD_STORE_INSTANCES(template, Algo)
RATELIMITER_FOR_EACH_ALGORITHM(RATELIMITER_DEFINE_COLD)
#undef RATELIMITER_DEFINE_COLD

static_assert(kAlgorithmCount == 7, "RATELIMITER_FOR_EACH_ALGORITHM must list every algorithm");

}  // namespace ratelimiter

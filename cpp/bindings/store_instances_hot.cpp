// The hot part's templates (memory_instances.hpp): every limiter, whose decisions on the
// memory store are the hot path, and the memory store's multi-limit paths, called from
// MultiLimiter in the cold part. register_limiters.cpp (cold) binds the limiters without
// compiling them again.
#include "limiter.hpp"
#include "memory_instances.hpp"

namespace ratelimiter {

#define RATELIMITER_DEFINE_HOT(Algo)                       \
    template class binding::Limiter<Algo>;                  \
    RATELIMITER_HOT_STORE_INSTANCES(template, Algo)
RATELIMITER_FOR_EACH_ALGORITHM(RATELIMITER_DEFINE_HOT)
#undef RATELIMITER_DEFINE_HOT

static_assert(kAlgorithmCount == 7, "RATELIMITER_FOR_EACH_ALGORITHM must list every algorithm");

}  // namespace ratelimiter

// The memory store's multi-limit paths, reached from MultiLimiter in the binding's cold part
// (-O1), are compiled once, at -O2, in the hot part (store_instances_hot.cpp, which also
// compiles every Limiter<Algo>): the declarations below keep the cold part from instantiating
// them (build time, issue 8; store_instances.hpp says where the other stores' are compiled).
// Core headers only: the hot part includes this.
#pragma once

#include "ratelimiter/algorithm/all.hpp"
#include "ratelimiter/store/memory_store.hpp"

#define RATELIMITER_HOT_STORE_INSTANCES(PREFIX, Algo)                                       \
    PREFIX bool MemoryStore::apply_multi<Algo>(std::string_view,                            \
                                               const std::vector<std::string>&,             \
                                               const Algo::Params*, const std::int64_t*,    \
                                               double, MultiOp, Decision*);

namespace ratelimiter {

#define RATELIMITER_EXTERN_HOT(Algo) RATELIMITER_HOT_STORE_INSTANCES(extern template, Algo)
RATELIMITER_FOR_EACH_ALGORITHM(RATELIMITER_EXTERN_HOT)
#undef RATELIMITER_EXTERN_HOT

}  // namespace ratelimiter

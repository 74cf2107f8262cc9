// Every algorithm, and what is derived from the list at compile time: the count, tables
// indexed by AlgorithmId (for_each_algorithm / algorithm_table), and the checks that keep
// the per-algorithm facts (id, name, kMetadata in each algorithm's header) consistent.
// Adding an algorithm: its header, one entry below, its Lua script (cpp/lua/<name>.lua),
// its Python class; the stores, the binding, the Lua table and Python derive from here.
#pragma once

#include <array>
#include <cstddef>
#include <tuple>
#include <utility>

#include "ratelimiter/algorithm/adaptive.hpp"
#include "ratelimiter/algorithm/fixed_window.hpp"
#include "ratelimiter/algorithm/gcra.hpp"
#include "ratelimiter/algorithm/leaky_bucket.hpp"
#include "ratelimiter/algorithm/sliding_window.hpp"
#include "ratelimiter/algorithm/sliding_window_counter.hpp"
#include "ratelimiter/algorithm/token_bucket.hpp"

namespace ratelimiter {

// In AlgorithmId order (checked below).
using AllAlgorithms = std::tuple<FixedWindow, SlidingWindow, SlidingWindowCounter, TokenBucket,
                                 LeakyBucket, Adaptive, Gcra>;

inline constexpr std::size_t kAlgorithmCount = std::tuple_size_v<AllAlgorithms>;

// X(Algo) for every algorithm in AllAlgorithms (for explicit template instantiations; each
// file that expands it checks the list is complete with a static_assert).
#define RATELIMITER_FOR_EACH_ALGORITHM(X) \
    X(FixedWindow)                        \
    X(SlidingWindow)                      \
    X(SlidingWindowCounter)               \
    X(TokenBucket)                        \
    X(LeakyBucket)                        \
    X(Adaptive)                           \
    X(Gcra)

// A value standing for an algorithm type, so a generic lambda can receive it.
template <class Algo>
struct AlgorithmTag {
    using type = Algo;
};

// Calls f(AlgorithmTag<Algo>{}) for every algorithm, in AlgorithmId order.
template <class F>
constexpr void for_each_algorithm(F&& f) {
    std::apply([&](auto... algos) { (f(AlgorithmTag<decltype(algos)>{}), ...); },
               AllAlgorithms{});
}

namespace detail {
template <class F, std::size_t... I>
constexpr auto algorithm_table_impl(F&& f, std::index_sequence<I...>) {
    return std::array{f(AlgorithmTag<std::tuple_element_t<I, AllAlgorithms>>{})...};
}
}  // namespace detail

// std::array{f(AlgorithmTag<A0>{}), f(AlgorithmTag<A1>{}), ...}: indexed by AlgorithmId.
template <class F>
constexpr auto algorithm_table(F&& f) {
    return detail::algorithm_table_impl(f, std::make_index_sequence<kAlgorithmCount>{});
}

// Algo::name, indexed by AlgorithmId.
inline constexpr auto kAlgorithmNames =
    algorithm_table([](auto tag) { return decltype(tag)::type::name; });

constexpr bool same_name(const char* a, const char* b) {
    while (*a != '\0' && *a == *b) {
        ++a;
        ++b;
    }
    return *a == *b;
}

// Position of the algorithm called `name` in AllAlgorithms, or kAlgorithmCount.
constexpr std::size_t algorithm_index(const char* name) {
    for (std::size_t i = 0; i < kAlgorithmNames.size(); ++i) {
        if (same_name(kAlgorithmNames[i], name)) return i;
    }
    return kAlgorithmCount;
}

namespace detail {
constexpr bool ids_are_positions() {
    constexpr auto ids = algorithm_table([](auto tag) { return decltype(tag)::type::id; });
    for (std::size_t i = 0; i < ids.size(); ++i) {
        if (static_cast<std::size_t>(ids[i]) != i) return false;
    }
    return true;
}
constexpr bool names_are_unique() {
    for (std::size_t i = 0; i < kAlgorithmNames.size(); ++i) {
        if (algorithm_index(kAlgorithmNames[i]) != i) return false;
    }
    return true;
}
constexpr bool metadata_fits() {
    constexpr auto sizes =
        algorithm_table([](auto tag) { return decltype(tag)::type::kMetadata.size(); });
    for (const std::size_t n : sizes) {
        if (n > kMaxMetadata) return false;
    }
    return true;
}
}  // namespace detail

static_assert(detail::ids_are_positions(),
              "AllAlgorithms must list the algorithms in Algo::id order, ids 0..N-1");
static_assert(detail::names_are_unique(), "two algorithms share a name");
static_assert(detail::metadata_fits(), "an algorithm's kMetadata exceeds Decision::meta");

}  // namespace ratelimiter

// The embedded Lua scripts (cmake/EmbedLua.cmake: for each cpp/lua/<name>.lua, sorted by
// name, its single-key, multi-limit and batch script) looked up by AlgorithmId. The lookup
// is by name at compile time, and fails to compile
// when an algorithm has no script or a script names no algorithm.
#pragma once

#include <array>
#include <cstddef>

#include "ratelimiter/algorithm/all.hpp"
#include "ratelimiter/lua_scripts.hpp"

namespace ratelimiter::lua {
namespace detail {

// For each AlgorithmId, the position of its script in `scripts` (N when there is none).
template <std::size_t N>
constexpr std::array<std::size_t, kAlgorithmCount> index_by_id(
    const std::array<Script, N>& scripts) {
    std::array<std::size_t, kAlgorithmCount> out{};
    for (std::size_t id = 0; id < kAlgorithmCount; ++id) {
        out[id] = N;
        for (std::size_t j = 0; j < N; ++j) {
            if (same_name(scripts[j].name, kAlgorithmNames[id])) out[id] = j;
        }
    }
    return out;
}

template <std::size_t N>
constexpr bool covers_every_algorithm(const std::array<Script, N>& scripts) {
    if (N != kAlgorithmCount) return false;
    for (const std::size_t j : index_by_id(scripts)) {
        if (j == N) return false;
    }
    return true;
}

}  // namespace detail

static_assert(detail::covers_every_algorithm(kScripts),
              "cpp/lua/<name>.lua must exist for exactly the algorithms in AllAlgorithms");
static_assert(detail::covers_every_algorithm(kMultiScripts),
              "the multi-limit scripts must cover exactly the algorithms in AllAlgorithms");
static_assert(detail::covers_every_algorithm(kBatchScripts),
              "the batch scripts must cover exactly the algorithms in AllAlgorithms");

inline constexpr auto kScriptIndex = detail::index_by_id(kScripts);
inline constexpr auto kMultiScriptIndex = detail::index_by_id(kMultiScripts);
inline constexpr auto kBatchScriptIndex = detail::index_by_id(kBatchScripts);

// The single-limit script of an algorithm.
inline const Script& script(AlgorithmId id) {
    return kScripts[kScriptIndex[static_cast<std::size_t>(id)]];
}
// The multi-limit script of an algorithm (MultiRateLimiter).
inline const Script& multi_script(AlgorithmId id) {
    return kMultiScripts[kMultiScriptIndex[static_cast<std::size_t>(id)]];
}
// The FCALL name of a single-key script in the function library (kScripts[i] is
// kFunctions[i]); nullptr for any other script (multi-limit and batch scripts stay scripts).
inline const char* function_of(const Script& s) {
    for (std::size_t i = 0; i < kScripts.size(); ++i) {
        if (&kScripts[i] == &s) return kFunctions[i];
    }
    return nullptr;
}
// The batch script of an algorithm (many keys of one Redis, cpp/lua/batch/_driver.lua).
inline const Script& batch_script(AlgorithmId id) {
    return kBatchScripts[kBatchScriptIndex[static_cast<std::size_t>(id)]];
}

}  // namespace ratelimiter::lua

# Embeds cpp/lua/ into one generated header, <ratelimiter/lua_scripts.hpp>, at configure time:
# for each algorithm (every cpp/lua/<name>.lua whose name does not start with `_`; those are
# helpers) three scripts, each with its SHA1 (what EVALSHA needs) computed here:
#   kScripts       one key:   _common.lua + <name>.lua, its `--! include <file>.lua` lines
#                  replaced by that file (helpers only some scripts need: every function a
#                  script defines costs time on each call).
#   kMultiScripts  several limits of one key (MultiRateLimiter): _common.lua, the included
#                  helpers, multi/adjust_<name>.lua, multi/_wrap.lua, then <name>.lua wrapped
#                  unchanged as `limit_step(KEYS, ARGV, now, cost, consume)` (with `call`,
#                  `store_state` and `reply` shadowed by _wrap.lua), then multi/_driver.lua.
#   kBatchScripts  many keys, one limit (is_allowed_many on one Redis): _common.lua, the
#                  included helpers, batch/_prelude.lua, <name>.lua wrapped unchanged as
#                  `step(KEYS)`, then batch/_driver.lua.
# and one function library (kLibrary, Redis >= 7 `FUNCTION LOAD`): _common.lua down to its
# `--! per call` line and every included helper, run once (at the library's first call),
# then for each algorithm a function `rl_<hash>_<name>` running the rest of _common.lua and
# <name>.lua. The single-key arithmetic is thus the very same text in all of them. The
# library's name and functions carry a hash of its text, so clients of different versions
# sharing one server each find their own. Editing a .lua file re-runs the configure step.
# Usage: include(cmake/EmbedLua.cmake) then ratelimiter_embed_lua(<target>).
#
# The C++ side looks scripts up by Algo::name and static_asserts that they match
# AllAlgorithms (ratelimiter/store/lua_index.hpp), so adding a script needs no edit here.
file(GLOB RATELIMITER_LUA_ALGORITHMS RELATIVE ${CMAKE_CURRENT_LIST_DIR}/../cpp/lua
     CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/../cpp/lua/*.lua)
list(FILTER RATELIMITER_LUA_ALGORITHMS EXCLUDE REGEX "^_")
list(TRANSFORM RATELIMITER_LUA_ALGORITHMS REPLACE "\\.lua$" "")
list(SORT RATELIMITER_LUA_ALGORITHMS)

# Reads cpp/lua/`file` (a configure dependency from now on).
include(${CMAKE_CURRENT_LIST_DIR}/WriteIfChanged.cmake)

function(ratelimiter_lua_read out_var lua_dir file)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${lua_dir}/${file})
  file(READ ${lua_dir}/${file} text)
  set(${out_var} "${text}" PARENT_SCOPE)
endfunction()

# Reads `file` with its `--! include <file>.lua` lines: replaced by the file if `inline`,
# else removed and the names appended to the list `includes_var` (emitted once, at the top
# level of a wrapping script, so their functions are created once per call, not once per
# wrapped step).
function(ratelimiter_lua_read_body out_var includes_var lua_dir file inline)
  ratelimiter_lua_read(body ${lua_dir} ${file})
  string(REGEX MATCHALL "--! include [A-Za-z0-9_]+\\.lua" directives "${body}")
  set(includes ${${includes_var}})
  foreach(directive IN LISTS directives)
    string(REPLACE "--! include " "" included "${directive}")
    if(inline)
      ratelimiter_lua_read(included_source ${lua_dir} ${included})
      string(REPLACE "${directive}" "${included_source}" body "${body}")
    else()
      list(APPEND includes ${included})
      string(REPLACE "${directive}" "-- (${included}: included above)" body "${body}")
    endif()
  endforeach()
  list(REMOVE_DUPLICATES includes)
  set(${includes_var} ${includes} PARENT_SCOPE)
  set(${out_var} "${body}" PARENT_SCOPE)
endfunction()

# Appends one `{name, sha1, source}` initializer to the list text `entries_var`.
function(ratelimiter_lua_entry entries_var name source)
  if(source MATCHES "\\)ratelimiter_lua\"")
    message(FATAL_ERROR "a script for ${name} contains the raw-string delimiter )ratelimiter_lua\"")
  endif()
  string(SHA1 sha "${source}")
  set(${entries_var} "${${entries_var}}    {\"${name}\", \"${sha}\",\n     R\"ratelimiter_lua(${source})ratelimiter_lua\"},\n" PARENT_SCOPE)
endfunction()

function(ratelimiter_embed_lua target)
  set(lua_dir ${CMAKE_CURRENT_SOURCE_DIR}/cpp/lua)
  set(out_dir ${CMAKE_CURRENT_BINARY_DIR}/generated)
  set(out_file ${out_dir}/ratelimiter/lua_scripts.hpp)
  ratelimiter_lua_read(common ${lua_dir} _common.lua)
  ratelimiter_lua_read(multi_wrap ${lua_dir} multi/_wrap.lua)
  ratelimiter_lua_read(multi_driver ${lua_dir} multi/_driver.lua)
  ratelimiter_lua_read(batch_prelude ${lua_dir} batch/_prelude.lua)
  ratelimiter_lua_read(batch_driver ${lua_dir} batch/_driver.lua)

  string(FIND "${common}" "\n--! per call\n" split)
  if(split EQUAL -1)
    message(FATAL_ERROR "cpp/lua/_common.lua has no per-call marker line")
  endif()
  string(SUBSTRING "${common}" 0 ${split} common_once)
  string(SUBSTRING "${common}" ${split} -1 common_per_call)

  set(single "")
  set(multi "")
  set(batch "")
  set(library_helpers "")
  set(library_included "")
  set(library_steps "")
  set(library_registrations "")
  foreach(name IN LISTS RATELIMITER_LUA_ALGORITHMS)
    set(none "")
    ratelimiter_lua_read_body(body none ${lua_dir} ${name}.lua TRUE)
    ratelimiter_lua_entry(single ${name} "${common}\n${body}")

    set(includes "")
    ratelimiter_lua_read_body(body includes ${lua_dir} ${name}.lua FALSE)
    set(helpers "")
    foreach(included IN LISTS includes)
      ratelimiter_lua_read(included_source ${lua_dir} ${included})
      string(APPEND helpers "${included_source}\n")
    endforeach()

    ratelimiter_lua_entry(batch ${name}
      "${common}\n${helpers}${batch_prelude}\nlocal function step(KEYS)\n${body}\nend\n${batch_driver}")

    foreach(included IN LISTS includes)
      if(NOT included IN_LIST library_included)
        list(APPEND library_included ${included})
        ratelimiter_lua_read(included_source ${lua_dir} ${included})
        string(APPEND library_helpers "${included_source}\n")
      endif()
    endforeach()
    string(APPEND library_steps
      "steps.${name} = function(KEYS, ARGV)\n${common_per_call}\n${body}\nend\n")
    string(APPEND library_registrations
      "redis.register_function('rl_@HASH@_${name}', function(keys, args)\n"
      "    return (steps or load())['${name}'](keys, args)\nend)\n")

    if(EXISTS ${lua_dir}/multi/adjust_${name}.lua)
      set(adjust_includes "")
      ratelimiter_lua_read_body(adjust adjust_includes ${lua_dir} multi/adjust_${name}.lua FALSE)
      foreach(included IN LISTS adjust_includes)
        if(NOT included IN_LIST includes)
          ratelimiter_lua_read(included_source ${lua_dir} ${included})
          string(APPEND helpers "${included_source}\n")
        endif()
      endforeach()
      ratelimiter_lua_entry(multi ${name}
        "${common}\n${helpers}${adjust}\n${multi_wrap}\nlocal function limit_step(KEYS, ARGV, now, cost, consume)\nlocal call, store_state, reply = deferring_call, deferring_store_state, values_reply\n${body}\nend\n${multi_driver}")
    else()
      # No multi form (an algorithm without multi/adjust_<name>.lua): a script that says
      # so, so every algorithm has an entry (lua_index.hpp checks it).
      ratelimiter_lua_entry(multi ${name}
        "return redis.error_reply('ERR ratelimiter: ${name} has no multi-limit script')")
    endif()
  endforeach()
  list(LENGTH RATELIMITER_LUA_ALGORITHMS count)

  # `redis` offers only register_function while the library loads, so the helpers (which
  # capture redis.call and the standard libraries) are built at the first call instead.
  set(library "local steps\nlocal function load()\n${common_once}\n${library_helpers}\n"
              "steps = {}\n${library_steps}return steps\nend\n${library_registrations}")
  string(SHA1 library_hash "${library}")
  string(SUBSTRING "${library_hash}" 0 16 library_hash)
  string(REPLACE "@HASH@" "${library_hash}" library "${library}")
  set(library "#!lua name=ratelimiter_${library_hash}\n${library}")
  if(library MATCHES "\\)ratelimiter_lua\"")
    message(FATAL_ERROR "the function library contains the raw-string delimiter")
  endif()
  set(single_with_functions "")
  foreach(name IN LISTS RATELIMITER_LUA_ALGORITHMS)
    string(APPEND single_with_functions "    \"rl_${library_hash}_${name}\",\n")
  endforeach()

  set(content "// GENERATED by cmake/EmbedLua.cmake from cpp/lua/. Do not edit.
#pragma once

#include <array>

namespace ratelimiter::lua {

struct Script {
    const char* name;    // algorithm name (Algo::name)
    const char* sha1;    // hex SHA1 of source, as EVALSHA and SCRIPT LOAD use it
    const char* source;
};

// Each array is sorted by name; ratelimiter/store/lua_index.hpp finds an algorithm's script.
// One key: _common.lua + <name>.lua.
inline constexpr std::array<Script, ${count}> kScripts = {{
${single}}};

// Several limits of one key (MultiRateLimiter): cpp/lua/multi/.
inline constexpr std::array<Script, ${count}> kMultiScripts = {{
${multi}}};

// Many keys, one limit, one clock reading (is_allowed_many on one Redis): cpp/lua/batch/.
inline constexpr std::array<Script, ${count}> kBatchScripts = {{
${batch}}};

// The single-key scripts as one function library (Redis >= 7 Functions: FUNCTION LOAD once,
// FCALL kFunctions[i] with kScripts[i]'s KEYS and ARGV).
inline constexpr const char* kLibrary = R\"ratelimiter_lua(${library})ratelimiter_lua\";
inline constexpr std::array<const char*, ${count}> kFunctions = {
${single_with_functions}};

}  // namespace ratelimiter::lua
")
  ratelimiter_write_if_changed(${out_file} "${content}")
  target_include_directories(${target} PUBLIC ${out_dir})
endfunction()

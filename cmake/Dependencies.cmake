# Finds SQLite (required) and hiredis (optional) and defines the targets the core links:
#   ratelimiter_sqlite3   SQLite 3
#   ratelimiter_hiredis   hiredis, only when RATELIMITER_HAVE_HIREDIS is true
# Options:
#   RATELIMITER_WITH_HIREDIS  AUTO (default: use hiredis when found), ON (required), OFF.
#     Without hiredis, RedisBackend runs its scripts through the user's redis.Redis client.
#   RATELIMITER_STATIC_DEPS   link libhiredis.a and libsqlite3.a (the portable wheel).
# A missing tool or library stops the configure with one line saying what to install.

set(RATELIMITER_WITH_HIREDIS AUTO CACHE STRING
    "Native Redis path over hiredis: AUTO (when found), ON (required), OFF")
set_property(CACHE RATELIMITER_WITH_HIREDIS PROPERTY STRINGS AUTO ON OFF)
option(RATELIMITER_STATIC_DEPS "Link hiredis and SQLite statically (portable wheel)" OFF)

set(_rl_install_hint_sqlite
    "Debian/Ubuntu: apt install libsqlite3-dev; Fedora/RHEL: dnf install sqlite-devel; \
Alpine: apk add sqlite-dev; macOS: brew install sqlite")
set(_rl_install_hint_hiredis
    "Debian/Ubuntu: apt install libhiredis-dev; Fedora/RHEL: dnf install hiredis-devel; \
Alpine: apk add hiredis-dev; macOS: brew install hiredis")

find_package(PkgConfig QUIET)

# _rl_find(<prefix> <pkg-config name> <header> <library name>): sets <prefix>_FOUND,
# <prefix>_INCLUDE_DIRS, <prefix>_LINK (what to link), <prefix>_VERSION and
# <prefix>_LINKAGE (static|dynamic). pkg-config first, then CMake's own search.
function(_rl_find prefix pc_name header lib)
  set(found FALSE)
  set(version "")
  set(hint_inc "")
  set(hint_lib "")
  set(static_extra "")
  if(PKG_CONFIG_FOUND)
    pkg_check_modules(_rl_${prefix} QUIET ${pc_name})
    if(_rl_${prefix}_FOUND)
      set(version ${_rl_${prefix}_VERSION})
      set(hint_inc ${_rl_${prefix}_INCLUDE_DIRS})
      set(hint_lib ${_rl_${prefix}_LIBRARY_DIRS})
      set(static_extra ${_rl_${prefix}_STATIC_LIBRARIES})
      list(REMOVE_ITEM static_extra ${lib})
    endif()
  endif()
  find_path(RATELIMITER_${prefix}_INCLUDE_DIR ${header} HINTS ${hint_inc})
  if(RATELIMITER_STATIC_DEPS)
    set(names lib${lib}.a)
    set(linkage static)
  else()
    set(names ${lib})
    set(linkage dynamic)
  endif()
  # One cache entry per linkage, so switching RATELIMITER_STATIC_DEPS in a build dir works.
  find_library(RATELIMITER_${prefix}_${linkage}_LIBRARY NAMES ${names} HINTS ${hint_lib})
  if(RATELIMITER_${prefix}_INCLUDE_DIR AND RATELIMITER_${prefix}_${linkage}_LIBRARY)
    set(found TRUE)
  endif()
  set(link ${RATELIMITER_${prefix}_${linkage}_LIBRARY})
  if(RATELIMITER_STATIC_DEPS)
    list(APPEND link ${static_extra})
  endif()
  set(${prefix}_FOUND ${found} PARENT_SCOPE)
  set(${prefix}_INCLUDE_DIRS ${RATELIMITER_${prefix}_INCLUDE_DIR} PARENT_SCOPE)
  set(${prefix}_LINK ${link} PARENT_SCOPE)
  set(${prefix}_VERSION "${version}" PARENT_SCOPE)
  set(${prefix}_LINKAGE ${linkage} PARENT_SCOPE)
endfunction()

_rl_find(SQLITE3 sqlite3 sqlite3.h sqlite3)
if(NOT SQLITE3_FOUND)
  message(FATAL_ERROR "smart-ratelimiter needs the SQLite development files "
                      "(sqlite3.h, libsqlite3). Install them: ${_rl_install_hint_sqlite}")
endif()
add_library(ratelimiter_sqlite3 INTERFACE)
target_include_directories(ratelimiter_sqlite3 INTERFACE ${SQLITE3_INCLUDE_DIRS})
target_link_libraries(ratelimiter_sqlite3 INTERFACE ${SQLITE3_LINK})

set(RATELIMITER_HAVE_HIREDIS FALSE)
set(HIREDIS_LINKAGE none)
if(NOT RATELIMITER_WITH_HIREDIS STREQUAL "OFF")
  _rl_find(HIREDIS hiredis hiredis/hiredis.h hiredis)
  if(NOT HIREDIS_FOUND)
    set(HIREDIS_LINKAGE none)
  endif()
  if(HIREDIS_FOUND)
    set(RATELIMITER_HAVE_HIREDIS TRUE)
    add_library(ratelimiter_hiredis INTERFACE)
    target_include_directories(ratelimiter_hiredis INTERFACE ${HIREDIS_INCLUDE_DIRS})
    target_link_libraries(ratelimiter_hiredis INTERFACE ${HIREDIS_LINK})
  elseif(RATELIMITER_WITH_HIREDIS STREQUAL "ON")
    message(FATAL_ERROR "RATELIMITER_WITH_HIREDIS=ON but hiredis was not found. "
                        "Install it: ${_rl_install_hint_hiredis}")
  else()
    message(WARNING "hiredis not found: building without the native Redis path. "
                    "RedisBackend will run its scripts through your redis.Redis client "
                    "(pip install redis). For the native path: ${_rl_install_hint_hiredis}")
  endif()
else()
  message(STATUS "smart-ratelimiter: hiredis disabled (RATELIMITER_WITH_HIREDIS=OFF)")
endif()
message(STATUS "smart-ratelimiter: SQLite ${SQLITE3_VERSION} (${SQLITE3_LINKAGE}), "
               "hiredis: ${RATELIMITER_HAVE_HIREDIS} ${HIREDIS_VERSION} (${HIREDIS_LINKAGE})")

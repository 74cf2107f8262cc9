# ratelimiter_write_if_changed(<file> <content>): writes <content> to <file> only when it
# differs from what is there, so a reconfigure that generates the same header (embedded Lua
# scripts, build info) leaves its timestamp alone and recompiles nothing.
include_guard(GLOBAL)

function(ratelimiter_write_if_changed file content)
  set(old "")
  if(EXISTS ${file})
    file(READ ${file} old)
  endif()
  if(NOT old STREQUAL content)
    file(WRITE ${file} "${content}")
  endif()
endfunction()

// Catch2 v3 where available, else v2 (Debian bookworm ships only Catch2 2.13). The tests use
// only macros common to both.
#pragma once

#if __has_include(<catch2/catch_test_macros.hpp>)
#include <catch2/catch_test_macros.hpp>
#else
#include <catch2/catch.hpp>
#endif

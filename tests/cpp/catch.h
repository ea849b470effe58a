// Catch2 v2 (Debian 12's catch2: catch2/catch.hpp) or v3 (catch2/catch_all.hpp), whichever
// tests/cpp/CMakeLists.txt found.
#pragma once

// c10 defines a fatal CHECK(condition) macro (c10/util/logging_is_not_google_glog.h), which
// would silently replace Catch's CHECK: the tests use the CATCH_-prefixed macros instead.
#define CATCH_CONFIG_PREFIX_ALL

#if defined(SUGAR_CATCH2_V3)
#include <catch2/catch_all.hpp>
#else
#include <catch2/catch.hpp>
#endif

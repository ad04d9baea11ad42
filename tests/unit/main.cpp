// The doctest main of redisfs_unit: every tests/unit/*.cpp links into one
// executable, and this file provides its entry point.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

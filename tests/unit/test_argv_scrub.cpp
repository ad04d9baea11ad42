// scrub_password_in_argv: the password of a --redis URL or a --sentinel
// spec is overwritten in place, in both argument forms, and nothing else
// changes; ArgvCopy keeps the original for the parser.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "redis/endpoint.hpp"

using redisfs::ArgvCopy;
using redisfs::scrub_password_in_argv;

namespace {

// argv as main() gets it: writable strings, scrubbed, then read back.
std::vector<std::string> _scrubbed(std::vector<std::string> args) {
  std::vector<char*> argv;
  for (std::string& a : args) {
    argv.push_back(a.data());
  }
  scrub_password_in_argv(static_cast<int>(argv.size()), argv.data());
  return args;
}

}  // namespace

TEST_SUITE_BEGIN("argv_scrub");

TEST_CASE("passwords in --redis and --sentinel become stars, in place") {
  using V = std::vector<std::string>;
  CHECK(_scrubbed(V{"redisfs", "--redis", "redis://u:hunter2@h:6379/1", "/mnt"}) ==
        V{"redisfs", "--redis", "redis://u:*******@h:6379/1", "/mnt"});
  CHECK(_scrubbed(V{"redisfs", "--redis=rediss://:pw@h", "/mnt"}) == V{"redisfs", "--redis=rediss://:**@h", "/mnt"});
  CHECK(_scrubbed(V{"x", "--redis", "unix://u:p%40ss@/run/r.sock?db=2"}) ==
        V{"x", "--redis", "unix://u:******@/run/r.sock?db=2"});
  CHECK(_scrubbed(V{"x", "--redis", "redis-sentinel://u:s3cr3t@s1:1,s2:2/m"}) ==
        V{"x", "--redis", "redis-sentinel://u:******@s1:1,s2:2/m"});
  CHECK(_scrubbed(V{"x", "--sentinel", "u:pw@s1:26379/m"}) == V{"x", "--sentinel", "u:**@s1:26379/m"});
  CHECK(_scrubbed(V{"x", "--sentinel=u:pw@s1/m"}) == V{"x", "--sentinel=u:**@s1/m"});
  // A password with ':' and '@' in it (lenient, as the parser is).
  CHECK(_scrubbed(V{"x", "--redis", "redis://u:a:b@c@h/0"}) == V{"x", "--redis", "redis://u:*****@h/0"});
  // Two of them, after a subcommand (redisfs-snap's options fall through).
  CHECK(_scrubbed(V{"snap", "copy", "--redis", "redis://:one@h", "A", "B", "--redis=redis://:two@h"}) ==
        V{"snap", "copy", "--redis", "redis://:***@h", "A", "B", "--redis=redis://:***@h"});
}

TEST_CASE("passwords in a -o redis=URL (an fstab line's spelling) become stars, the rest of the list stays") {
  using V = std::vector<std::string>;
  CHECK(_scrubbed(V{"redisfs", "SKX", "/mnt", "-o", "rw,redis=redis://u:pw@h:6379/0,_netdev"}) ==
        V{"redisfs", "SKX", "/mnt", "-o", "rw,redis=redis://u:**@h:6379/0,_netdev"});
  CHECK(_scrubbed(V{"redisfs", "-oredis=rediss://:secret@h", "/mnt"}) == V{"redisfs", "-oredis=rediss://:******@h", "/mnt"});
  CHECK(_scrubbed(V{"redisfs", "-o", "redis=redis://h:1,password_file=/p", "-o", "redis=redis://:x@h"}) ==
        V{"redisfs", "-o", "redis=redis://h:1,password_file=/p", "-o", "redis=redis://:*@h"});
  CHECK(_scrubbed(V{"redisfs", "-o", "fsname=redis://u:pw@h"}) == V{"redisfs", "-o", "fsname=redis://u:pw@h"});
}

TEST_CASE("nothing else is touched") {
  using V = std::vector<std::string>;
  for (const V& args : {
           V{"redisfs", "--redis", "redis://user@h:6379", "/mnt"},  // a user, no password
           V{"redisfs", "--redis", "redis://h:6379/0"},
           V{"redisfs", "--redis", "unix:///tmp/a:b@c/r.sock"},  // '@' in the path only
           V{"redisfs", "--redis"},                               // no value (a usage error later)
           V{"redisfs", "--redisx", "redis://u:pw@h"},            // another option
           V{"redisfs", "--prefix", "redis://u:pw@h"},
           V{"redisfs", "redis://u:pw@h"},                   // a positional argument
           V{"redisfs", "--", "--redis", "redis://u:pw@h"},  // after "--": positional
           V{"redis://u:pw@h"},                              // argv[0]
       }) {
    CHECK(_scrubbed(args) == args);
  }
}

TEST_CASE("ArgvCopy keeps the original for the parser") {
  std::string prog = "redisfs", opt = "--redis", url = "redis://u:pw@h";
  char* argv[] = {prog.data(), opt.data(), url.data(), nullptr};
  ArgvCopy copy(3, argv);
  scrub_password_in_argv(3, argv);
  CHECK(url == "redis://u:**@h");
  REQUIRE(copy.argc() == 3);
  CHECK(std::string(copy.argv()[0]) == "redisfs");
  CHECK(std::string(copy.argv()[2]) == "redis://u:pw@h");
}

TEST_SUITE_END();

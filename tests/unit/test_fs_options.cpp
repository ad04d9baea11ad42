// The daemon's command line, beyond CLI11 (fs/daemon.hpp, fs/log.hpp): -o
// lists taken apart into DaemonConfig, the prefix named in several places,
// --block-size and --log-level, and the op list (op_list.hpp) that the
// stats name the requests by.
#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

#include "daemon.hpp"
#include "log.hpp"
#include "op_stats.hpp"

using namespace redisfs;

namespace {

DaemonConfig _apply(std::vector<std::string> options) {
  DaemonConfig cfg;
  Status st = apply_mount_options(options, cfg);
  REQUIRE_MESSAGE(st.ok(), (st.ok() ? "" : st.error().message));
  return cfg;
}

std::string _refused(std::vector<std::string> options) {
  DaemonConfig cfg;
  Status st = apply_mount_options(options, cfg);
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().code == EINVAL);
  return st.error().message;
}

}  // namespace

TEST_CASE("fs options: our -o options fill the config, FUSE's pass on") {
  DaemonConfig cfg = _apply({"attr_timeout=2.5,entry_timeout=0,noatime,ro", "allow_other,max_idle_threads=40"});
  CHECK(cfg.attr_timeout == 2.5);
  CHECK(cfg.entry_timeout == 0.0);
  CHECK(cfg.noatime);
  CHECK(cfg.read_only);
  CHECK(cfg.max_idle_threads == 40);
  CHECK(cfg.fuse_options == std::vector<std::string>{"allow_other"});

  cfg = _apply({"redis=redis://db:6379/0,password_file=/etc/pw,prefix=P1", "data_dir=/d,timeout=7,sync_replicas=2"});
  CHECK(cfg.endpoint.url == "redis://db:6379/0");
  CHECK(cfg.endpoint.password_file == "/etc/pw");
  CHECK(cfg.prefix == "P1");
  CHECK(cfg.prefix_from == "-o prefix");
  CHECK(cfg.endpoint.data_dir == "/d");
  CHECK(cfg.endpoint.timeout_s == 7.0);
  CHECK(cfg.sync_replicas == 2);
  CHECK(cfg.fuse_options.empty());

  cfg = _apply({"tls,tls_ca_cert=/ca.pem,tls_server_name=db.example",
                "write_through,nonempty,log_level=debug,log_file=/l"});
  CHECK(cfg.endpoint.tls);
  CHECK(cfg.endpoint.tls_ca_cert == "/ca.pem");
  CHECK(cfg.endpoint.tls_server_name == "db.example");
  CHECK(cfg.write_through);
  CHECK(cfg.nonempty);
  CHECK(cfg.log_level == LogLevel::Debug);
  CHECK(cfg.log_file == "/l");
  CHECK_FALSE(cfg.writeback);

  cfg = _apply({"writeback,allow_other"});
  CHECK(cfg.writeback);  // ours, not passed on to FUSE
  CHECK(cfg.fuse_options == std::vector<std::string>{"allow_other"});
}

TEST_CASE("fs options: what only mount(8), fstab or systemd read is dropped") {
  DaemonConfig cfg =
      _apply({"defaults,auto,noauto,nofail,_netdev,user,users", "x-systemd.automount,comment=x,rw,,fsname=f"});
  CHECK(cfg.fuse_options.empty());
  CHECK_FALSE(cfg.read_only);
  CHECK(cfg.fsname == "f");
}

TEST_CASE("fs options: of ro and rw the last wins, as mount(8) reads them, and --read-only with -o rw is refused") {
  CHECK(_apply({"ro"}).read_only);
  CHECK_FALSE(_apply({"ro,rw"}).read_only);
  CHECK(_apply({"rw,ro"}).read_only);
  CHECK_FALSE(_apply({"ro", "noatime,rw"}).read_only);
  CHECK(_apply({"rw", "ro"}).read_only);

  DaemonConfig cfg;
  cfg.read_only = true;  // --read-only
  CHECK(apply_mount_options({"ro"}, cfg).ok());
  CHECK(cfg.read_only);
  Status st = apply_mount_options({"ro,rw"}, cfg);
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().message.find("--read-only asks for a read-only mount, -o rw for a read-write one") !=
        std::string::npos);
}

TEST_CASE("fs options: bad values are refused with the option's name") {
  CHECK(_refused({"attr_timeout=soon"}).find("attr_timeout") != std::string::npos);
  CHECK(_refused({"entry_timeout=-1"}).find("entry_timeout") != std::string::npos);
  CHECK(_refused({"sync_replicas=x"}).find("sync_replicas") != std::string::npos);
  CHECK(_refused({"max_idle_threads=0"}).find("max_idle_threads") != std::string::npos);
  CHECK(_refused({"max_idle_threads=1001"}).find("1 to 1000") != std::string::npos);
  CHECK_FALSE(_refused({"log_level=loud"}).empty());

  // -o redis= and --redis may agree, not differ.
  DaemonConfig cfg;
  cfg.endpoint.url = "redis://a";
  CHECK(apply_mount_options({"redis=redis://a"}, cfg).ok());
  Status st = apply_mount_options({"redis=redis://b"}, cfg);
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().message.find("different values") != std::string::npos);
}

TEST_CASE("fs options: the prefix named twice must be the same") {
  DaemonConfig cfg;
  CHECK(set_prefix(cfg, "SKX2", "SOURCE").ok());
  CHECK(set_prefix(cfg, "SKX2", "--prefix").ok());
  CHECK(cfg.prefix_from == "--prefix");
  Status st = set_prefix(cfg, "OTHER", "-o prefix");
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().message == "-o prefix names prefix 'OTHER' but --prefix named 'SKX2'");
  CHECK_FALSE(apply_mount_options({"prefix=THIRD"}, cfg).ok());
}

TEST_CASE("fs options: --block-size takes a power of two from 4K to 4M") {
  CHECK(parse_block_size("65536").value() == 65536);
  CHECK(parse_block_size("64K").value() == 65536);
  CHECK(parse_block_size("64k").value() == 65536);
  CHECK(parse_block_size("64KiB").value() == 65536);
  CHECK(parse_block_size("4K").value() == 4096);
  CHECK(parse_block_size("1M").value() == 1048576);
  CHECK(parse_block_size("4MiB").value() == 4194304);
  for (const char* bad : {"", "0", "2K", "8M", "65535", "48K", "64KB", "K", "-64K", "64 K", "99999999999999999999"}) {
    INFO(bad);
    auto r = parse_block_size(bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == EINVAL);
    CHECK(r.error().message == "--block-size: '" + std::string(bad) + "' is not a power of two from 4K to 4M");
  }
}

TEST_CASE("fs options: --log-level names") {
  CHECK(parse_log_level("error").value() == LogLevel::Error);
  CHECK(parse_log_level("warning").value() == LogLevel::Warning);
  CHECK(parse_log_level("info").value() == LogLevel::Info);
  CHECK(parse_log_level("debug").value() == LogLevel::Debug);
  CHECK_FALSE(parse_log_level("verbose").ok());
  CHECK_FALSE(parse_log_level("").ok());
}

TEST_CASE("fs ops: every request of op_list.hpp is counted under its own name") {
  std::vector<std::string> names;
#define REDISFS_TEST_NAME(name, Id, Guard, Route) \
  names.emplace_back(#name);               \
  CHECK(static_cast<std::size_t>(OpId::Id) == names.size() - 1);
  REDISFS_FUSE_OPS(REDISFS_TEST_NAME)
#undef REDISFS_TEST_NAME
  CHECK(names.size() == static_cast<std::size_t>(OpId::Count));
  CHECK(names.front() == "lookup");
  CHECK(names.back() == "statfs");
}

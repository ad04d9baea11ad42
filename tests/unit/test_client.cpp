// The client layer's pure parts: Redis Cluster key slots (the spec's CRC16
// and hash-tag rules), the faults error replies map to, prefixes with
// hash tags, the flags the build records for each embedded script, and
// which changes of server may have lost acknowledged writes.
#include <doctest/doctest.h>

#include "redis/lua_scripts.hpp"
#include "redis/redis.hpp"
#include "store/keys.hpp"

using redisfs::Fault;
using redisfs::fault_for_redis_error;
using redisfs::key_slot;
using redisfs::server_replaced;
using redisfs::ServerId;

TEST_SUITE_BEGIN("client");

TEST_CASE("key slots: CRC16 mod 16384, hash tags") {
  // The cluster specification's test vector: CRC16("123456789") = 0x31C3.
  CHECK(key_slot("123456789") == (0x31C3 & 16383));
  CHECK(key_slot("") == 0);
  // The tag is what is between the first '{' and the next '}'...
  CHECK(key_slot("{user1000}.following") == key_slot("user1000"));
  CHECK(key_slot("{user1000}.followers") == key_slot("{user1000}.following"));
  CHECK(key_slot("foo{bar}{zap}") == key_slot("bar"));
  CHECK(key_slot("foo{{bar}}zap") == key_slot("{bar"));
  // ... if that is not empty: then the whole key is hashed.
  CHECK(key_slot("foo{}{bar}") != key_slot("bar"));
  CHECK(key_slot("foo{}{bar}") == key_slot(std::string("foo{}{bar}")));
  // A filesystem's keys and its derived prefixes share its slot.
  CHECK(key_slot("{fs1}:SB") == key_slot("{fs1}:BLK:7:3"));
  CHECK(key_slot("{fs1}~copy~ab12:INODE:1") == key_slot("{fs1}:SB"));
  CHECK(key_slot("{fs1}-monday:SB") == key_slot("{fs1}:SB"));
}

TEST_CASE("error replies: the fault is the first word") {
  CHECK(fault_for_redis_error("LOADING Redis is loading the dataset in memory") == Fault::Loading);
  CHECK(fault_for_redis_error("BUSY Redis is busy running a script.") == Fault::Busy);
  CHECK(fault_for_redis_error("MASTERDOWN Link with MASTER is down") == Fault::MasterDown);
  CHECK(fault_for_redis_error("READONLY You can't write against a read only replica.") == Fault::ReadOnly);
  CHECK(fault_for_redis_error("TRYAGAIN Multiple keys request during rehashing of slot") == Fault::TryAgain);
  CHECK(fault_for_redis_error("CLUSTERDOWN The cluster is down") == Fault::ClusterDown);
  CHECK(fault_for_redis_error("MOVED 3999 127.0.0.1:6381") == Fault::Moved);
  CHECK(fault_for_redis_error("ASK 3999 127.0.0.1:6381") == Fault::Ask);
  CHECK(fault_for_redis_error("NOSCRIPT No matching script.") == Fault::NoScript);
  CHECK(fault_for_redis_error("FROZEN a snapshot is being taken script: abc") == Fault::Frozen);
  // Words elsewhere in the message do not count.
  CHECK(fault_for_redis_error("ERR the word LOADING in a message") == Fault::None);
  CHECK(fault_for_redis_error("ENOENT FROZEN") == Fault::None);
  CHECK(fault_for_redis_error("ASKING") == Fault::None);
  CHECK(fault_for_redis_error("") == Fault::None);
}

TEST_CASE("error replies: the trailer Redis 7 adds to a script's error is not shown") {
  const std::string sha(40, 'a');
  CHECK(redisfs::error_from_redis("EIO P:MOUNTS is a string script: " + sha + ", on @user_script:94.").message ==
        "redis: EIO P:MOUNTS is a string");
  CHECK(redisfs::error_from_redis("WRONGTYPE Operation against a key script: " + sha + ", on @user_script:7").message ==
        "redis: WRONGTYPE Operation against a key");
  CHECK(redisfs::error_from_redis("WRONGTYPE Operation against a key script: " + sha + ", on @user_script:7").code ==
        EIO);
  // Anything else that looks like it stays, whole.
  for (const std::string& kept :
       std::vector<std::string>{"ERR script: " + sha, "ERR x script: abc, on @user_script:1.",
                                "ERR x script: " + sha + ", on @user_script:.", "ERR a script: text"}) {
    CHECK(redisfs::error_from_redis(kept).message == "redis: " + kept);
  }
}

TEST_CASE("prefixes: at most one hash tag, and cluster mode wants one") {
  CHECK(redisfs::validate_prefix("{fs1}").ok());
  CHECK(redisfs::validate_prefix("{fs1}-monday").ok());
  CHECK(redisfs::validate_prefix("pre{fs1}").ok());
  for (const char* bad : {"{}", "a{b", "a}b", "{a}{b}", "{{a}", "}a{", "{a}}"}) {
    auto st = redisfs::validate_prefix(bad);
    CHECK_MESSAGE(!st.ok(), bad);
    if (!st.ok()) {
      CHECK(st.error().message.find("hash tag") != std::string::npos);
    }
  }
  CHECK(redisfs::validate_prefix("{" + std::string(redisfs::k_max_hash_tag, 't') + "}").ok());
  auto long_tag = redisfs::validate_prefix("{" + std::string(redisfs::k_max_hash_tag + 1, 't') + "}");
  REQUIRE_FALSE(long_tag.ok());
  CHECK(long_tag.error().message.find("hash tag is longer") != std::string::npos);
  CHECK(redisfs::hash_tag("{fs1}-monday") == std::optional<std::string_view>("fs1"));
  CHECK_FALSE(redisfs::hash_tag("SKX"));
  auto refused = redisfs::check_cluster_prefix("SKX");
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message.find("{SKX}") != std::string::npos);
  CHECK(redisfs::check_cluster_prefix("{SKX}").ok());
}

TEST_CASE("server changes: a restart or a failover, not a migrated slot") {
  const ServerId a{"127.0.0.1:7000", "runA", "replA", "0000", false};
  ServerId restarted = a;
  restarted.run_id = "runA2";
  restarted.replid = "replA2";
  const ServerId promoted{"127.0.0.1:7001", "runB", "replB", "replA", false};
  const ServerId elsewhere{"127.0.0.1:7002", "runC", "replC", "0000", false};
  // not known, or the same process: nothing changed
  CHECK_FALSE(server_replaced(ServerId{}, a));
  CHECK_FALSE(server_replaced(a, ServerId{}));
  CHECK_FALSE(server_replaced(a, a));
  // behind one address or the sentinels: any new process
  CHECK(server_replaced(a, restarted));
  CHECK(server_replaced(a, promoted));
  CHECK(server_replaced(a, elsewhere));
  // a cluster: a restart, or a replica of the old master promoted; a slot
  // that migrated to another master lost nothing
  auto in_cluster = [](ServerId s) {
    s.cluster = true;
    return s;
  };
  CHECK(server_replaced(in_cluster(a), in_cluster(restarted)));
  CHECK(server_replaced(in_cluster(a), in_cluster(promoted)));
  CHECK_FALSE(server_replaced(in_cluster(a), in_cluster(elsewhere)));
  CHECK_FALSE(server_replaced(in_cluster(elsewhere), in_cluster(promoted)));
}

TEST_CASE("embedded scripts: the writes and records flags agree with the text") {
  // embed_lua.cmake decides both; the client trusts them to send a script
  // with or without the outcome record's key and id (outcome.inc).
  std::size_t records = 0;
  for (std::size_t i = 0; i < redisfs::lua::k_script_count; ++i) {
    const auto& src = redisfs::lua::script_source(redisfs::lua::ScriptId(i));
    std::string_view first = src.text.substr(0, src.text.find('\n'));
    bool writes = !(first.starts_with("#!") && first.find("no-writes") != std::string_view::npos);
    bool wrapped = src.text.find("local __op_key = table.remove(KEYS)") != std::string_view::npos;
    CAPTURE(src.name);
    CHECK(src.writes == writes);
    CHECK(src.records == wrapped);
    CHECK(src.records == (writes && src.text.find("\n--! no-outcome") == std::string_view::npos));
    records += src.records ? 1 : 0;
  }
  CHECK(redisfs::lua::script_source(redisfs::lua::create).records);
  CHECK(!redisfs::lua::script_source(redisfs::lua::read).writes);
  CHECK(!redisfs::lua::script_source(redisfs::lua::cow_begin).records);
  CHECK(records > 10);
}

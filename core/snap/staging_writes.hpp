// A restore's writes to its staging prefix (restore.cpp; an incremental
// restore's, dump_incremental.cpp): one rolling pipeline whose replies are
// read a batch behind (a few MB in flight), and judged. Duplicates are the
// server's to find, so that a restore holds no set of the dump's keys: SET
// NX answers nil, EXISTS before a hash answers 1, HSET answers fewer new
// fields than it was given.
//
// ORDER. The Connection sends a refused command again (BUSY, LOADING, a
// redirection...) after the commands queued behind it have run, and sends
// EXISTS, HSET and PEXPIRE again when their connection was lost after they
// may have run (redis.hpp, sent_again). A reply then may not say what it
// would have said in order:
//  - a PEXPIRE that ran before the command making its key answers 0: it is
//    sent again behind everything (that command has run by then), and must
//    then answer 1, or the key is gone (someone else removed it);
//  - an EXISTS sent again may find the hash its own HSET made, and an HSET
//    sent again its own fields. Such a reply is a doubt, not a fault: doubts
//    are settled once every reply is in (settle(0)). A key is a duplicate
//    when the staging index lists it twice (LPOS: every record is listed
//    there once, RPUSH is never sent twice); a hash's fields were all new
//    when HLEN counts every field its record gave.
// A reply that was not sent again is judged as it comes: a command sent
// again runs later, never earlier, than in order, so what a reply not sent
// again found was there before that command's turn.
//
// A fault is the first in the dump's order: doubts come from earlier
// records, so they are settled before a later record's fault is reported.
// After a fault the pipeline is drained (the connection is clean).
//
// A LOST REPLY of a command that is not sent again (SET NX, RPUSH: it may
// have run or not) is a fault of its own (Fault::Lost): the pipeline is
// abandoned (Connection::abandon), nothing more sent nor sent again, so
// the server ran a prefix of it, where every key written was listed in the
// index before it. The restore keeps its staging for a resume (restore.cpp,
// keep_after_lost), whose rewind removes what came after the checkpoint.
// (A drain would send the idempotent writes behind it again: a hash whose
// RPUSH was not sent, written but not listed.)
//
// Left (documented): a crash between a key's write and its index entry, when
// the RPUSH was refused and the write behind it was not, leaves the key out
// of the index, so --resume does not remove it (rewind_staging) and reports
// that record a duplicate; the key still expires with the staging prefix.
#pragma once

#include <cstdint>
#include <deque>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "redis/redis.hpp"
#include "snap/dump_format.hpp"
#include "store/keys.hpp"
#include "util/result.hpp"

namespace redisfs {

class StagingWrites {
 public:
  using Pairs = std::span<const std::pair<std::string, std::string>>;

  // `index_has_ttl`: the index exists already with its TTL (a resumed restore).
  StagingWrites(Connection& c, const Keys& staging, bool index_has_ttl);

  // Where the records given next are in the dump: a duplicate found a batch
  // later names its own record (dump::fault_at).
  void at(dump::Position p) { m_at = p; }
  // Each stages one record: `key` relative to the staging prefix, listed in
  // the staging index (install.hpp) before it is written.
  Status string(std::string_view key, std::string_view value);
  Status hash_begin(std::string_view key);
  // The next fields of the hash begun last; its first ones give it the TTL.
  Status hash_fields(std::string_view key, Pairs pairs);
  void hash_end() { m_open_hash.clear(); }
  // An entry for a list of the staging prefix that lives as long as it
  // (the TTL set again each time).
  Status push(const std::string& list, std::string_view member);

  // Reads replies until at most `keep_bytes` of commands are in flight (0:
  // all of them, doubts settled).
  Status settle(std::size_t keep_bytes);
  // After a failure: the replies in flight are read and dropped, and the
  // doubts with them (the connection is clean for the cleanup).
  void abandon();

 private:
  struct Pending {
    enum What : std::uint8_t { Set, Exists, HSet, Expire, ExpireAgain, Push } what;
    std::string key;           // relative, or the list's name; Expire*: absolute
    std::uint64_t fields = 0;  // HSet: in this command
    std::uint64_t total = 0;   // HSet: in its record so far, this command's included
    std::size_t bytes = 0;
    dump::Position at{};  // Set, Exists, HSet: its record's
  };
  struct DoubtFields {
    std::uint64_t total = 0;  // fields its record gave
    dump::Position at{};
  };

  Status push_index(std::string_view key);
  Status queued(Pending p);
  Status expire(const std::string& absolute);
  Status judge(const Pending& p, ReplyView v, bool sent_again);
  Status settle_doubts();
  // `st` (a fault), or a doubt settled as an earlier one; the pipeline drained.
  Status fault(Status st);

  Connection& m_c;
  Keys m_staging;
  std::string m_index;
  std::string m_ttl;
  bool m_index_has_ttl;
  std::string m_open_hash;          // relative; empty between hashes
  std::uint64_t m_hash_fields = 0;  // given so far for m_open_hash
  std::deque<Pending> m_pending;
  std::size_t m_pending_bytes = 0;
  dump::Position m_at;
  std::vector<std::pair<std::string, dump::Position>> m_doubt_keys;  // maybe listed twice
  std::unordered_map<std::string, DoubtFields> m_doubt_fields;
};

}  // namespace redisfs

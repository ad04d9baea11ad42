// A SCAN, HSCAN or SSCAN walked page by page, which starts over when the
// server changes under it.
//
// A cursor means nothing to another server process: a restart or a
// failover builds the keyspace (and every hash and set) anew, with another
// hash seed, so a walk that goes on with its old cursor may miss keys. The
// server a page came from is known by its run_id (Connection::answered_by):
// a page from another server than the walk's first is dropped and the walk
// begins again at cursor 0. started_over() tells the caller, which drops
// what it gathered from the earlier pages (or, when what it did with them
// may be done twice, a delete or a move, just goes on).
//
// A server whose run_id is not known (an ACL user without +info) is not
// watched: nothing better is possible there.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "redis/redis.hpp"
#include "util/result.hpp"

namespace redisfs {

// Hashes whose first HSCAN page one pipeline asks for, in a walk that
// reads many (directories, attribute hashes): those pages (up to about
// 1,000 fields each) are held together, the walk's largest piece of
// memory (copy, dump, delete, du, state digests, the layers' check).
inline constexpr std::size_t k_hscans_at_once = 32;

class ScanWalk {
 public:
  // The walk of `command` (e.g. {"SCAN"} or {"HSCAN", key}), the cursor
  // put after it, then `options` (e.g. {"MATCH", m, "COUNT", "1000"}).
  ScanWalk(Connection& c, std::vector<std::string> command, std::vector<std::string> options);

  // The next page's items (views into a reply this walk holds until the
  // next call), or nullopt when the walk is over. EAGAIN when the server
  // changed more than k_max_restarts times in one walk.
  Result<std::optional<ReplyView>> next();

  // The walk's first page (the reply to cursor 0) was read in a pipeline:
  // next() returns it first. `server_before` is answered_by() before that
  // pipeline went: a later page from another server begins again (which,
  // when the whole pipeline went to the new one, costs one walk more).
  void adopt_first(Reply first, std::string server_before);

  // The walk goes on from `cursor`, which a page read elsewhere (another
  // connection, a pipeline, an earlier walk: cursor()) ended with; `server`
  // is the run_id that page came from (that connection's answered_by(),
  // server()). A page from another server begins again at cursor 0, as
  // next() says (started_over). Cursor "0" is the start.
  void resume(std::string cursor, std::string server);

  // Whether the page next() returned last begins the walk again: the
  // server changed since the pages before it.
  bool started_over() const { return m_started_over; }
  // Whether the page next() returned last was the walk's last.
  bool done() const { return m_done; }
  // Where the walk stands, for a walk that stops and goes on later
  // (resume): the cursor of its next page, and the server it is for.
  const std::string& cursor() const { return m_cursor; }
  const std::string& server() const { return m_server; }

  static constexpr int k_max_restarts = 3;

 private:
  Status check(const Reply& r) const;
  Result<Reply> page(const std::string& cursor);

  Connection& m_c;
  std::vector<std::string> m_command;
  std::vector<std::string> m_options;
  std::string m_cursor = "0";
  std::string m_server;  // the run_id the walk's pages come from
  Reply m_page;
  std::optional<Reply> m_first;  // adopt_first's
  bool m_done = false;
  bool m_started_over = false;
  int m_restarts = 0;
};

}  // namespace redisfs

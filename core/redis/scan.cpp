// ScanWalk (scan.hpp): a cursor walk that begins again on another server.
#include "redis/scan.hpp"

#include <chrono>
#include <thread>
#include <utility>

#include "util/fault.hpp"

namespace redisfs {

ScanWalk::ScanWalk(Connection& c, std::vector<std::string> command, std::vector<std::string> options)
    : m_c(c), m_command(std::move(command)), m_options(std::move(options)) {}

void ScanWalk::adopt_first(Reply first, std::string server_before) {
  m_first = std::move(first);
  m_server = std::move(server_before);
}

void ScanWalk::resume(std::string cursor, std::string server) {
  m_cursor = std::move(cursor);
  m_server = std::move(server);
  m_done = false;
}

Status ScanWalk::check(const Reply& r) const {
  ReplyView v = r.view();
  if (!v.is_array() || v.size() != 2 || !v[0].is_string() || !v[1].is_array()) {
    return make_error(
        EIO, "redis: bad " + m_command[0] + " reply" + (m_command.size() > 1 ? " for " + m_command[1] : std::string()));
  }
  return {};
}

Result<Reply> ScanWalk::page(const std::string& cursor) {
  Args argv = m_command;
  argv.push_back(cursor);
  argv.insert(argv.end(), m_options.begin(), m_options.end());
  TRY_ASSIGN(Reply r, m_c.command(argv));
  TRY(check(r));
  return r;
}

Result<std::optional<ReplyView>> ScanWalk::next() {
  m_started_over = false;
  if (m_done) {
    return std::optional<ReplyView>();
  }
  Reply r;
  if (m_first) {
    TRY(check(*m_first));
    r = std::move(*m_first);
    m_first.reset();
  } else {
    if (m_cursor != "0" && fault_injected("scan-slow")) {  // tests: a walk long enough to restart the server
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }
    TRY_ASSIGN(r, page(m_cursor));
    const std::string& server = m_c.answered_by();
    if (m_cursor == "0" || m_server.empty()) {
      m_server = server;
    } else if (!server.empty() && server != m_server) {
      // Another server process: the cursor means nothing to it.
      if (++m_restarts > k_max_restarts) {
        return make_error(EAGAIN, "the Redis server changed (a restart or a failover) " +
                                      std::to_string(k_max_restarts + 1) + " times during one " + m_command[0]);
      }
      m_started_over = true;
      TRY_ASSIGN(r, page("0"));
      m_server = m_c.answered_by();
    }
  }
  m_page = std::move(r);
  m_cursor = std::string(m_page.view()[0].str());
  m_done = m_cursor == "0";
  return std::optional<ReplyView>(m_page.view()[1]);
}

}  // namespace redisfs

// How a restore writes its staging prefix, and judges the replies: see
// staging_writes.hpp (the order the server runs them in, and the doubts).
#include "snap/staging_writes.hpp"

#include "snap/install.hpp"
#include "snap/snapshot.hpp"
#include "util/text.hpp"

namespace redisfs {

namespace {

// The pipeline is read down to 4 MB when it holds more than 8 MB, or more
// than 8192 commands (4096 then).
constexpr std::size_t k_deep_bytes = 8u << 20;
constexpr std::size_t k_keep_bytes = 4u << 20;
constexpr std::size_t k_deep_entries = 8192;
constexpr std::size_t k_keep_entries = 4096;

Status _duplicate_key(std::string_view key, dump::Position at) {
  return dump::fault_at(EINVAL, at, key, "duplicate key " + redisfs::quoted(key));
}
Status _duplicate_field(std::string_view key, dump::Position at) {
  return dump::fault_at(EINVAL, at, key, "duplicate field in hash " + redisfs::quoted(key));
}

}  // namespace

StagingWrites::StagingWrites(Connection& c, const Keys& staging, bool index_has_ttl)
    : m_c(c),
      m_staging(staging),
      m_index(staging_index_key(staging)),
      m_ttl(std::to_string(k_temp_ttl_ms)),
      m_index_has_ttl(index_has_ttl) {}

Status StagingWrites::string(std::string_view key, std::string_view value) {
  TRY(push_index(key));
  m_c.append({"SET", m_staging.absolute(key), value, "NX", "PX", m_ttl});
  return queued(Pending{Pending::Set, std::string(key), 0, 0, value.size(), m_at});
}

Status StagingWrites::hash_begin(std::string_view key) {
  m_open_hash = key;
  m_hash_fields = 0;
  m_c.append({"EXISTS", m_staging.absolute(key)});
  TRY(queued(Pending{Pending::Exists, std::string(key), 0, 0, 0, m_at}));
  return push_index(key);
}

Status StagingWrites::hash_fields(std::string_view key, Pairs pairs) {
  if (pairs.empty()) {
    return {};
  }
  const bool first = m_hash_fields == 0;
  m_hash_fields += pairs.size();
  std::string k = m_staging.absolute(key);
  std::vector<std::string_view> argv;
  argv.reserve(2 + 2 * pairs.size());
  argv.emplace_back("HSET");
  argv.emplace_back(k);
  std::size_t bytes = 0;
  for (const auto& p : pairs) {
    argv.emplace_back(p.first);
    argv.emplace_back(p.second);
    bytes += p.first.size() + p.second.size();
  }
  m_c.append(std::span<const std::string_view>(argv));
  TRY(queued(Pending{Pending::HSet, std::string(key), pairs.size(), m_hash_fields, bytes, m_at}));
  return first ? expire(k) : Status{};
}

Status StagingWrites::push(const std::string& list, std::string_view member) {
  m_c.append({"RPUSH", list, member});
  TRY(queued(Pending{Pending::Push, list, 0, 0, member.size()}));
  return expire(list);
}

Status StagingWrites::push_index(std::string_view key) {
  m_c.append({"RPUSH", m_index, key});
  TRY(queued(Pending{Pending::Push, std::string(key), 0, 0, key.size()}));
  if (m_index_has_ttl) {
    return {};
  }
  m_index_has_ttl = true;
  return expire(m_index);
}

Status StagingWrites::expire(const std::string& absolute) {
  m_c.append({"PEXPIRE", absolute, m_ttl});
  return queued(Pending{Pending::Expire, absolute, 0, 0, 0});
}

Status StagingWrites::queued(Pending p) {
  p.bytes += p.key.size() + 32;
  m_pending_bytes += p.bytes;
  m_pending.push_back(std::move(p));
  if (m_pending_bytes > k_deep_bytes || m_pending.size() > k_deep_entries) {
    return settle(k_keep_bytes);
  }
  return {};
}

Status StagingWrites::settle(std::size_t keep_bytes) {
  while (!m_pending.empty() && (keep_bytes == 0 || m_pending_bytes > keep_bytes || m_pending.size() > k_keep_entries)) {
    Pending p = std::move(m_pending.front());
    m_pending.pop_front();
    m_pending_bytes -= p.bytes;
    auto r = m_c.read_reply();
    if (!r.ok()) {
      Error e = std::move(r).error();  // (its fault kept: a lost reply is resumable, restore.cpp)
      e.message = "restoring " + redisfs::quoted(p.key) + ": " + e.message;
      return fault(std::move(e));
    }
    if (Status st = judge(p, r->view(), m_c.sent_again()); !st.ok()) {
      return fault(std::move(st));
    }
  }
  return m_pending.empty() ? settle_doubts() : Status{};
}

Status StagingWrites::judge(const Pending& p, ReplyView v, bool sent_again) {
  switch (p.what) {
    case Pending::Set:
      return v.is_nil() ? _duplicate_key(p.key, p.at) : Status{};
    case Pending::Exists:
      if (v.integer() != 0) {
        if (!sent_again) {
          return _duplicate_key(p.key, p.at);
        }
        m_doubt_keys.emplace_back(p.key, p.at);
      }
      return {};
    case Pending::HSet: {
      auto doubt = m_doubt_fields.find(p.key);
      if (doubt != m_doubt_fields.end()) {
        doubt->second.total = p.total;  // (a later command of the same record)
      }
      if (static_cast<std::uint64_t>(v.integer()) != p.fields) {
        if (!sent_again) {
          return _duplicate_field(p.key, p.at);
        }
        m_doubt_fields.emplace(p.key, DoubtFields{p.total, p.at});
      }
      return {};
    }
    case Pending::Expire:
      if (v.integer() == 0) {  // it ran before the command that makes the key
        m_c.append({"PEXPIRE", p.key, m_ttl});
        m_pending.push_back(Pending{Pending::ExpireAgain, p.key, 0, 0, 0});
      }
      return {};
    case Pending::ExpireAgain:
      if (v.integer() == 0) {
        return make_error(EIO, "restoring: the staged key " + redisfs::quoted(p.key) +
                                   " is gone (removed by another client of the server?)");
      }
      return {};
    case Pending::Push:
      return {};
  }
  return {};
}

Status StagingWrites::settle_doubts() {
  while (!m_doubt_keys.empty()) {
    auto [key, at] = std::move(m_doubt_keys.front());
    m_doubt_keys.erase(m_doubt_keys.begin());
    TRY_ASSIGN(Reply twice, m_c.command({"LPOS", m_index, key, "RANK", "2"}));
    if (!twice.view().is_nil()) {
      m_doubt_fields.clear();
      m_doubt_keys.clear();
      return _duplicate_key(key, at);
    }
  }
  for (auto it = m_doubt_fields.begin(); it != m_doubt_fields.end();) {
    if (it->first == m_open_hash) {
      ++it;  // its record goes on: settled with a later settle(0)
      continue;
    }
    TRY_ASSIGN(Reply len, m_c.command({"HLEN", m_staging.absolute(it->first)}));
    auto n = static_cast<std::uint64_t>(len.view().integer());
    if (n != it->second.total) {
      Status dup =
          n < it->second.total ? _duplicate_field(it->first, it->second.at) : _duplicate_key(it->first, it->second.at);
      m_doubt_fields.clear();
      return dup;
    }
    it = m_doubt_fields.erase(it);
  }
  return {};
}

void StagingWrites::abandon() {
  m_c.drain();
  m_pending.clear();
  m_pending_bytes = 0;
  m_doubt_keys.clear();
  m_doubt_fields.clear();
}

Status StagingWrites::fault(Status st) {
  m_pending.clear();
  m_pending_bytes = 0;
  if (st.error().fault == Fault::Lost) {
    // Nothing more is sent, nor sent again: the server ran a prefix of the
    // pipeline, where every key written is listed in the index before it
    // (a resume's rewind_staging removes them). Doubts are moot then.
    m_c.abandon();
    m_doubt_keys.clear();
    m_doubt_fields.clear();
    return st;
  }
  m_c.drain();
  if (Status earlier = settle_doubts(); !earlier.ok() && earlier.code() == EINVAL) {
    return earlier;
  }
  return st;
}

}  // namespace redisfs

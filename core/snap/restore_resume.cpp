// The checkpoint of a resumable restore (restore_resume.hpp).
#include "snap/restore_resume.hpp"

#include <vector>

#include "snap/install.hpp"
#include "store/keys.hpp"
#include "snap/snapshot.hpp"

namespace redisfs {

namespace {

constexpr long long k_page = 1000;

// DEL KEYS[1] if its 'staging' field is ARGV[1].
constexpr std::string_view k_drop_script =
    "if redis.call('HGET', KEYS[1], 'staging') == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

}  // namespace

std::string resume_key(const std::string& target) { return target + "~resume"; }

Status write_resume_point(Connection& c, const std::string& target, const ResumePoint& p) {
  const std::string key = resume_key(target);
  const std::string ttl = std::to_string(k_temp_ttl_ms);
  c.append({"HSET", key, "staging", p.staging, "records", std::to_string(p.records), "digest", p.digest, "source",
            p.source});
  c.append({"PEXPIRE", key, ttl});
  TRY_ASSIGN(std::vector<Reply> replies, c.read_all());
  return expire_made_key(c, replies[1], key, ttl);
}

Result<std::optional<ResumePoint>> load_resume_point(Connection& c, const std::string& target) {
  TRY_ASSIGN(Reply r, c.command({"HMGET", resume_key(target), "staging", "records", "digest", "source"}));
  ReplyView v = r.view();
  if (!v.is_array() || v.size() != 4 || v[0].is_nil() || v[1].is_nil() || v[2].is_nil()) {
    return std::optional<ResumePoint>();
  }
  ResumePoint p;
  p.staging = std::string(v[0].str());
  auto records = v[1].as_int();
  p.digest = std::string(v[2].str());
  p.source = v[3].is_nil() ? std::string() : std::string(v[3].str());
  if (!records || *records < 0 || temp_kind(p.staging) != TempKind::Restore || !validate_prefix(p.staging).ok()) {
    return make_error(EIO, resume_key(target) + " is not a checkpoint this redisfs wrote; remove it by hand");
  }
  p.records = static_cast<std::uint64_t>(*records);
  // The staged keys expire together with their index: no index, nothing
  // left to resume.
  TRY_ASSIGN(Reply len, c.command({"LLEN", staging_index_key(Keys(p.staging))}));
  if (len.view().integer() < static_cast<long long>(p.records) || (p.records > 0 && len.view().integer() == 0)) {
    return std::optional<ResumePoint>();
  }
  return std::optional<ResumePoint>(std::move(p));
}

Status drop_resume_point(Connection& c, const std::string& target, const std::string& staging) {
  TRY(c.command({"EVAL", k_drop_script, "1", resume_key(target), staging}));
  return {};
}

Result<std::uint64_t> rewind_staging(Connection& c, const std::string& target, const ResumePoint& p) {
  const Keys staging(p.staging);
  const std::string index = staging_index_key(staging);
  const std::string ttl = std::to_string(k_temp_ttl_ms);
  // What was staged after the checkpoint goes.
  for (std::uint64_t at = p.records;; at += k_page) {
    TRY_ASSIGN(Reply page, c.command({"LRANGE", index, std::to_string(at), std::to_string(at + k_page - 1)}));
    ReplyView list = page.view();
    std::vector<std::string> argv{"UNLINK"};
    for (std::size_t i = 0; i < list.size(); ++i) {
      argv.push_back(staging.absolute(list[i].str()));
    }
    if (argv.size() > 1) {
      TRY(c.command(argv));
    }
    if (static_cast<long long>(list.size()) < k_page) {
      break;
    }
  }
  if (p.records == 0) {
    // Nothing kept: the index starts again (its first entry sets its TTL).
    TRY(c.command({"UNLINK", index}));
  } else {
    TRY(c.command({"LTRIM", index, "0", std::to_string(p.records - 1)}));
  }
  // What stays lives another TTL from now.
  for (std::uint64_t at = 0; at < p.records; at += k_page) {
    TRY_ASSIGN(Reply page, c.command({"LRANGE", index, std::to_string(at), std::to_string(at + k_page - 1)}));
    ReplyView list = page.view();
    for (std::size_t i = 0; i < list.size(); ++i) {
      c.append({"PEXPIRE", staging.absolute(list[i].str()), ttl});
    }
    TRY(c.read_all());
  }
  c.append({"PEXPIRE", index, ttl});
  c.append({"PEXPIRE", resume_key(target), ttl});
  TRY(c.read_all());
  return p.records;
}

}  // namespace redisfs

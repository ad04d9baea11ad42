// redisfs-snap verify FILE... [--json]: check dumps without a server, by the
// rules restore applies (core/snap/dump_verify.hpp). One line per problem on
// stdout, "FILE: <problem>" (restore's message, or fsck's line of a problem
// of the filesystem inside), or one JSON document; a summary per file on
// stderr. Several files in order are a chain (a full dump, then its
// incrementals): each incremental's base is checked against the files
// before it (verify_chain); an incremental alone says on stderr that its
// base is not checked. Exit 0 when every dump is sound, 1 when one is not, 2 for a bad
// command line or a file that cannot be read.
#include <cstdio>
#include <iostream>
#include <memory>

#include "context.hpp"
#include "snap/dump_verify.hpp"
#include "snap/snapshot.hpp"
#include "util/text.hpp"

namespace redisfs::snap {

namespace {
struct VerifyArgs {
  std::vector<std::string> files;
  bool json = false;
};

std::string _summary(const VerifyReport& r) {
  std::string dump_of = r.compression == Compression::None
                            ? std::string("dump of ")
                            : std::string(compression_name(r.compression)) + " dump of ";
  if (!r.refusal.empty()) {
    return "verify " + r.path + ": not a dump restore accepts";
  }
  if (r.incremental) {
    dump_of = "incremental " + dump_of;
  }
  std::string what = (r.incremental ? "an " : "a ") + dump_of + r.source_prefix +
                     (r.incremental ? " since snapshot " + r.base_snapshot_id : std::string()) + " (" +
                     counted(r.trailer.records, "record", "records") + ", " + human_bytes(r.trailer.bytes) +
                     (r.incremental ? std::string() : ", " + counted(r.inodes, "inode", "inodes")) + ")";
  if (r.problems.empty()) {
    return "verify " + r.path + ": " + what + ", sound";
  }
  std::size_t n = r.problems.size();
  return "verify " + r.path + ": " + what + ", with " + counted(n, "problem", "problems") + " restore refuses" +
         (r.incremental ? "" : " (" + fsck_damaged_hint(r.problems) + ")");
}

void _run(ToolContext& ctx, const VerifyArgs& args) {
  std::vector<VerifyReport> reports;
  std::vector<std::string> unreadable;
  for (const std::string& file : args.files) {
    auto report = verify_dump(file);
    if (!report.ok()) {
      unreadable.push_back(report.error().message);
      continue;
    }
    reports.push_back(std::move(report).value());
  }
  if (Status st = verify_chain(reports); !st.ok()) {
    unreadable.push_back(st.error().message);
  }
  for (const VerifyReport& r : reports) {
    if (!args.json) {
      for (const std::string& line : verify_problem_lines(r)) {
        std::cout << line << '\n';
      }
      std::cout.flush();
    }
    summary(ctx, _summary(r));
    if (r.incremental && r.refusal.empty() && !r.base_checked && r.chain.empty()) {
      summary(ctx, "verify " + r.path + ": its base, snapshot " + r.base_snapshot_id +
                       ", is not checked: give the dumps it comes after first (verify FULL INC... " + r.path + ")");
    }
  }
  if (args.json) {
    std::cout << verify_as_json(reports, unreadable);
    std::cout.flush();
  }
  if (!std::cout) {
    throw CommandFailed{"writing to stdout failed", 2};
  }
  if (!unreadable.empty()) {
    // One line each, the last as the command's failure.
    for (std::size_t i = 0; i + 1 < unreadable.size(); ++i) {
      std::fprintf(stderr, "redisfs-snap: error: %s\n", unreadable[i].c_str());
    }
    throw CommandFailed{unreadable.back(), 2};
  }
  std::size_t bad = 0;
  for (const VerifyReport& r : reports) {
    bad += r.sound() ? 0 : 1;
  }
  if (bad > 0) {
    throw CommandFailed{bad == 1 && reports.size() == 1
                            ? std::string("the dump is not sound: restore would refuse it")
                            : std::to_string(bad) + " of " + std::to_string(reports.size()) +
                                  " dumps are not sound: restore would refuse them",
                        1};
  }
}
}  // namespace

void add_verify_command(CLI::App& app, ToolContext& ctx) {
  auto args = std::make_shared<VerifyArgs>();
  CLI::App* sub = app.add_subcommand("verify", "Check dumps without a server, by the rules restore applies");
  sub->add_option("FILE", args->files, "dumps to check (plain, zstd or gzip; files, read more than once)")
      ->type_name("FILE")
      ->required()
      ->check([](const std::string& f) { return f == "-" ? std::string("verify reads a FILE, not stdin") : ""; });
  sub->add_flag("--json", args->json, "print the reports as one JSON document");
  sub->footer(
      "Checks what restore checks, with no server: the document (JSON structure, header, types, the\n"
      "trailer's counts and SHA-256; zstd or gzip told by their first bytes), every record (keys of the\n"
      "schema, their types, no duplicate key or field, no empty hash, one superblock that decodes, no\n"
      "block longer than the block size), and then the filesystem inside as restore would stage it\n"
      "(marked restored, its orphans dropped) by fsck's own rules. Output: one line per problem on\n"
      "stdout, 'FILE: <problem>', where a problem is restore's message for a bad document or record,\n"
      "or fsck's line '<kind>: <key>: <detail>' for the filesystem; a summary per file on stderr.\n"
      "An incremental dump is checked by the rules an incremental restore applies; FILEs given in\n"
      "order (a full dump, then its incrementals) are a chain: each incremental's base snapshot id and\n"
      "state digest must be those of what the files before it leave; an incremental with nothing\n"
      "before it says on stderr that its base is not checked.\n"
      "Memory stays bounded by the number of inodes (and keys), never by the data. Exit status: 0\n"
      "every dump is sound, 1 one is not, 2 bad command line or a FILE that cannot be read.");
  sub->callback([args, &ctx] { _run(ctx, *args); });
}

}  // namespace redisfs::snap

// fsck's analysis: what is wrong with a filesystem, judged from facts about
// its keys, whoever gathered them. Internal to fsck (fsck.hpp is the API).
//
// Two gatherers feed it: the scan of a prefix on a server (fsck_scan.cpp:
// SCAN, HGETALL, HSCAN, STRLEN) and the reading of a dump (dump_verify.cpp),
// so `fsck` and `redisfs-snap verify` apply one set of rules. The facts
// arrive in two passes, as fsck's two SCANs deliver them:
//
//   pass 1: the superblock and every inode hash (plus the records of the
//           running system a server holds: COW, FREEZE, OPEN:*), then
//           end_of_inodes(), which sorts the nodes and judges the
//           superblock;
//   pass 2: every DIR, XATTR and BLK key: sub_key() says whether its
//           content is to be read (a stray key's is not), then its entries,
//           attributes or length; then the ORPHANS records;
//
// and finish() runs the analysis proper: homes of directories, lost inodes,
// cycles, counters, and which problems repair can fix. Memory is one Node
// per inode (under 100 bytes) plus the problems; nothing per block or per
// entry. The repair (fsck_repair.cpp) runs the Actions of the problems on a
// server.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_set>
#include <vector>

#include "snap/fsck.hpp"
#include "store/inode.hpp"
#include "store/keys.hpp"
#include "store/superblock.hpp"

namespace redisfs {
class Reservation;  // snap/install.hpp
}

namespace redisfs::fsck_detail {

enum class NodeType : std::uint8_t { Unknown, File, Dir, Symlink, Special };

struct Node {
  Ino ino = 0;
  std::int64_t nlink = 0;
  std::uint64_t size = 0;
  Ino parent = 0;
  std::int64_t bytes_field = 0;
  std::uint64_t links = 0;    // entries naming it (not directories)
  std::uint64_t stored = 0;   // its blocks' bytes, as they will be after repair
  Ino home = 0;               // directories: the directory holding the kept entry
  std::uint64_t subdirs = 0;  // directories whose kept entry is in this one
  NodeType type = NodeType::Unknown;
  std::uint8_t visit = 0;     // cycle search: 0 new, 1 on the current path, 2 done
  // (one bit each: the table holds a Node per inode)
  bool bad : 1 = false;  // undecodable: counted, never judged or changed
  bool in_orphans : 1 = false;
  bool orphan_dead : 1 = false;  // its ORPHANS record names a mount that is gone
  bool walked : 1 = false;       // its DIR hash was read (SCAN may return a key twice)
  bool has_entries : 1 = false;  // its DIR hash holds at least one entry
  bool lost : 1 = false;
  bool detached : 1 = false;
  // A file whose size cannot be read: `size` is where its blocks' data
  // ends, which the repair sets (FsckAnalysis::m_size_seen has the field
  // as read).
  bool size_from_blocks : 1 = false;
  // A directory whose parent cannot be read: `parent` is 0, which no entry
  // matches, so the one naming it sets it (seen as "?", seen_number).
  bool parent_bad : 1 = false;
  // A link count the decoder cannot read (`nlink` 0, seen as "?"); a bytes
  // field that is no number (seen as "?"), or none (seen as "0"): flags,
  // not values, as every int64 is a value a field may hold.
  bool nlink_bad : 1 = false;
  bool bytes_bad : 1 = false;
  bool bytes_missing : 1 = false;
  // A bad inode's: a block of it was seen (what its type is, if its type
  // field cannot be read: FsckAnalysis::finish_types).
  bool has_blocks : 1 = false;
  // A directory one of whose entries names an inode of unknown type (bad):
  // how many subdirectories it has is not known, so neither is its link
  // count.
  bool names_unknown : 1 = false;
};
// fsck holds one per inode and must stay under 100 bytes an inode in all
// (measured 81 at 1M inodes with a Node of 80).
static_assert(sizeof(Node) <= 80, "a Node grew: fsck's memory an inode grows with it");

// (DelStray: a key of inode `ino`, which did not exist; DelLease: a lease
// no holder set, and with a mount's session key its registration, `field`
// of the mounts' register: fsck_del.lua)
enum class Op : std::uint8_t { None, HDel, HSet, Del, DelStray, DelLease, Trim, Reattach };
enum Stage : int { k_stage_counter = 0, k_stage_remove = 1, k_stage_count = 2, k_stage_attach = 3 };

// What the check read in the field an HSet or HDel changes: the repair
// changes it only if it still holds that (fsck_field.lua), so a mount's
// change since the check (under --force) is never overwritten. Value: the
// bytes in Action::seen; Number: a count or inode number, read as the
// check reads it (seen_number: absent is 0), its value in Action::seen.
enum class Seen : std::uint8_t { Absent, Value, Number };

// What the repair of one problem does.
struct Action {
  Op op = Op::None;
  int stage = k_stage_remove;
  std::string key;
  std::string field;
  std::string value;
  Ino ino = 0;
  std::string deletes;  // FsckProblem::deletes: the data this action deletes
  Seen seen_as = Seen::Absent;
  std::string seen;
};

// The repairs a check found, each as its Action's every part (repair_key).
using RepairSet = std::unordered_set<std::string>;

// A count or inode number field as the check reads it (absent: 0), in
// decimal; "?" when it is no number. Action::seen of a Seen::Number.
std::string seen_number(const std::optional<std::string_view>& raw);
// A number the check holds (an inode number, a link count), as
// seen_number reads it.
std::string seen_number(std::uint64_t v);
// A directory's parent field as the check read it (seen_number).
std::string parent_seen(const Node& n);
// An inode's link count as the check read it ("?": none it could read).
std::string nlink_seen(const Node& n);
// Whether `raw`, read again in field `field` of an inode, is what the check
// saw as `seen` (a Seen::Number): seen_number(raw) is `seen`, or the check
// saw "?" (a value it could not read) and the daemon's decoder cannot read
// `raw` either ("-1" of a parent, which seen_number reads as -1).
bool number_still(std::string_view field, std::string_view raw, std::string_view seen);

// An entry naming a directory from somewhere other than its parent field.
struct Suspect {
  Ino container = 0;
  std::string name;
  Ino target = 0;
  std::string value;  // the entry as read
};

inline constexpr std::string_view k_lost_found = "lost+found";

// Names, values and keys quoted in a problem or an error are cut to this
// many bytes (then "..."), so a 1 MB key makes a short line.
inline constexpr std::size_t k_shown_max = 100;
// And a whole detail or error message to this many.
inline constexpr std::size_t k_detail_max = 600;

std::string cut(std::string_view s, std::size_t max);
// Bytes that are not printable UTF-8 as \xNN, '\' as "\\".
std::string printable(std::string_view s);

class FsckAnalysis {
 public:
  explicit FsckAnalysis(const std::string& prefix) : m_keys(prefix) {}

  const Keys& keys() const { return m_keys; }
  // Is the superblock a snapshot's (a snapshot_id, or read_only "1")?
  bool is_snapshot() const;

  // ------------------------------------------------ pass 1
  void unknown_key(std::string_view key);
  // `holds_data`: the key may hold file data (a block, entries, attributes,
  // an inode), so deleting it is a data-deleting repair; else it is records
  // of the running system. Inodes and the superblock are never deleted.
  void wrong_type(std::string_view key, std::string_view want, std::string_view got, bool deletable,
                  bool holds_data);
  void superblock_wrong_type(std::string_view key, std::string_view got);
  void inode_wrong_type(Ino ino, std::string_view key, std::string_view got);
  void bad_cow(std::string_view key);
  void bad_changed(std::string_view key, std::string why);
  // A lease no holder set (snapshot.hpp, k_lease_max_ms): FREEZE,
  // WRITEBACK, RESERVED or MOUNT:<id> (in this order); `pttl_ms` is the
  // key's PTTL, -1 for none. The repair deletes it.
  enum class Lease { Freeze, Claim, Reservation, Mount };
  void lease_endless(Lease which, std::string_view key, std::int64_t pttl_ms);
  // One field of an OPEN:<n> hash. `mount_alive` is asked only of a count
  // open_count_valid() accepts.
  static bool open_count_valid(std::string_view count);
  void open_session(std::string_view key, std::string_view session, std::string_view count, bool mount_alive);
  void orphans_hash() { m_orphans_hash = true; }
  bool has_orphans_hash() const { return m_orphans_hash; }
  void superblock(SbFields fields);
  // Before pass 1, a hint: how many inodes come (the superblock's count,
  // a dump's records). Room for that many nodes is reserved at once
  // (util/reserve_hint.hpp: capped, and only a hint), so the table is not
  // grown by doubling.
  void expect_inodes(std::uint64_t n);
  void inode(Ino ino, std::string_view key, const FieldList& fields);
  void end_of_inodes();

  // ------------------------------------------------ pass 2
  // A DIR, XATTR or BLK key: its node when its content is to be judged,
  // null when it is stray (reported here) or a DIR read already.
  Node* sub_key(std::string_view key, const ParsedKey& pk);
  void entries_seen(Node& dir, std::size_t count) { dir.has_entries = dir.has_entries || count > 0; }
  void entry(Ino container, std::string_view name, std::string_view value);
  void xattr(const Node& n, std::string_view key, std::string_view name, std::string_view value);
  void block(Node& n, std::string_view key, std::uint64_t index, std::uint64_t len);
  // One ORPHANS record; `mount_alive`: whether the mount it names lives.
  void orphan(std::string_view field, std::string_view session, bool mount_alive);

  // ------------------------------------------------ the analysis
  // Judges what needs every fact, settles repairability and counts.
  void finish();

  Node* find(Ino ino);
  FsckReport& report() { return m_report; }
  const std::vector<Action>& actions() const { return m_actions; }  // parallel to report().problems
  // The repairs of the repairable problems of `report`, the one this
  // analysis made (take_report).
  RepairSet repairs(const FsckReport& report) const;
  // Of the repairable problems, those whose repair `first` (another check's
  // repairs()) does not hold are not repaired, and their line says why.
  void confirm(const RepairSet& first);
  Ino lost_found_entry() const { return m_lf_entry; }
  std::uint64_t block_size() const { return m_bs; }  // 0: not known
  FsckReport take_report() { return std::move(m_report); }
  // How many problems the repair made of setting an inode's type (that
  // inode was judged in nothing else: the check must run again to judge
  // it). Asked before take_report.
  std::size_t types_set() const;

 private:
  void add(std::string_view kind, std::string key, std::string detail, Action action = {});
  void check_superblock();
  std::uint64_t judge_block(Ino ino, std::string_view key, std::uint64_t index, std::uint64_t len, std::uint64_t end,
                            bool at_max);
  void size_block(Node& n, std::string_view key, std::uint64_t index, std::uint64_t len);
  void finish_sizes();
  void finish_types();
  void analyse();
  void check_root();
  void check_orphans();
  std::string orphan_record(Ino ino) const;
  void find_cycles();
  void check_counters();
  void check_superblock_counters(Ino max_ino);
  void settle_repairability();

  Keys m_keys;
  FsckReport m_report;
  std::vector<Action> m_actions;

  std::vector<Node> m_nodes;  // sorted by ino after end_of_inodes()
  std::vector<Suspect> m_suspects;
  // ORPHANS records of inodes that exist: inode, the record as read
  std::vector<std::pair<Ino, std::string>> m_orphan_records;

  bool m_have_sb = false;
  bool m_sb_wrong_type = false;
  bool m_sb_ok = false;  // a redisfs superblock we understand: repair allowed
  SbFields m_sb_fields;
  std::string m_sb_next, m_sb_inodes, m_sb_bytes;
  bool m_sb_has_next = false, m_sb_has_inodes = false, m_sb_has_bytes = false;
  std::uint64_t m_bs = 0;  // 0: unknown, block geometry is not judged
  bool m_orphans_hash = false;
  bool m_security_xattr = false;  // some file has a valid security.* attribute
  bool m_root_ok = false;
  std::uint64_t m_stored_total = 0;
  // Files whose size the repair sets from their blocks (Node::
  // size_from_blocks): the field as read, none when missing.
  std::vector<std::pair<Ino, std::optional<std::string>>> m_size_seen;
  // Their empty blocks (inode, index, key): past the end or not, once it
  // is known.
  std::vector<std::tuple<Ino, std::uint64_t, std::string>> m_empty_blocks;
  Ino m_lf_entry = 0;  // what "/lost+found" names
  // Inodes whose type cannot be read (bad): the field as read (none:
  // missing), and what their own fields tell of it (Told bits,
  // fsck_analysis.cpp; their other keys add theirs in finish_types).
  struct TypeUnread {
    Ino ino = 0;
    std::optional<std::string> seen;
    std::uint8_t told = 0;
  };
  std::vector<TypeUnread> m_type_unread;
};

// The problem a repair's reservation replaced (fsck: Reservation::
// acquire_over_damaged said "type <t>" or "pttl <ms>"), worded as the
// check would have found it, repaired.
FsckProblem fsck_replaced_reservation(std::string_view key, std::string_view replaced);

// fsck of `prefix` on a server (fsck_scan.cpp): gathers, analyses and,
// with `repair`, repairs, while `held` (fsck: the prefix's reservation) is
// still held (EAGAIN, nothing repaired, once it is lost).
// (`confirm`, with `repair`: check twice and repair only what both checks
// found, FsckAnalysis::confirm)
Result<FsckReport> fsck_scan(Connection& c, const std::string& prefix, bool repair, Progress* progress, bool confirm,
                             const Reservation* held);

// The running mounts of the filesystem (count_live_mounts).
Result<std::uint64_t> running_mounts(Connection& c, const Keys& keys);

// Repairs the problems of `analysis` that it found repairable, on the
// server, in stages (fsck_repair.cpp). `keep` (may be empty) runs before
// each step: once it fails, the steps left are not made, and their lines
// say why.
void fsck_repair(Connection& c, FsckAnalysis& analysis, const std::function<Status()>& keep = {});

}  // namespace redisfs::fsck_detail

// fuse_floor: the fastest a FUSE filesystem can be on this machine.
//
// A filesystem that keeps its names in a hash map and answers every request
// at once, mounted the way redisfs mounts (libfuse low level, the same
// multi-threaded loop, default_permissions, 1 s entry and attribute
// timeouts, no flush handler). What a workload costs on it is what the
// kernel, the /dev/fuse round trips and the context switches cost, with no
// storage behind them: the floor under any FUSE filesystem, redisfs
// included. bench/run shows it as the "fuse floor" column of the metadata
// workloads, so a reader can tell how much of a gap to tmpfs is FUSE's.
//
// Only what those workloads need: lookup, getattr, create, mknod, mkdir,
// unlink, rmdir, open/release, opendir/readdir(plus). File contents are not
// kept (reads return nothing).
//
//   fuse_floor MOUNTPOINT        (stays in the foreground until unmounted)
#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <mutex>
#include <string>
#include <sys/stat.h>
#include <unordered_map>
#include <vector>

namespace {

struct Node {
  struct stat st {};
  std::map<std::string, fuse_ino_t> entries;  // directories only
};

std::mutex g_mutex;
std::unordered_map<fuse_ino_t, Node> g_nodes;
fuse_ino_t g_next = 2;
constexpr double k_timeout = 1.0;

void fill_entry(fuse_entry_param& e, const Node& n) {
  std::memset(&e, 0, sizeof e);
  e.ino = n.st.st_ino;
  e.attr = n.st;
  e.attr_timeout = k_timeout;
  e.entry_timeout = k_timeout;
}

void touch_dir(Node& dir) {
  timespec now {};
  clock_gettime(CLOCK_REALTIME, &now);
  dir.st.st_mtim = now;
  dir.st.st_ctim = now;
}

Node& new_node(const fuse_ctx* ctx, mode_t mode) {
  fuse_ino_t ino = g_next++;
  Node& n = g_nodes[ino];
  n.st.st_ino = ino;
  n.st.st_mode = mode;
  n.st.st_nlink = S_ISDIR(mode) ? 2 : 1;
  n.st.st_uid = ctx->uid;
  n.st.st_gid = ctx->gid;
  n.st.st_blksize = 4096;
  touch_dir(n);
  n.st.st_atim = n.st.st_mtim;
  return n;
}

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  std::lock_guard lock(g_mutex);
  auto& dir = g_nodes[parent];
  fuse_entry_param e {};
  auto it = dir.entries.find(name);
  if (it == dir.entries.end()) {
    e.entry_timeout = k_timeout;  // negative entry, as redisfs answers
    fuse_reply_entry(req, &e);
    return;
  }
  fill_entry(e, g_nodes[it->second]);
  fuse_reply_entry(req, &e);
}

void op_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  std::lock_guard lock(g_mutex);
  auto it = g_nodes.find(ino);
  if (it == g_nodes.end()) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  fuse_reply_attr(req, &it->second.st, k_timeout);
}

void make(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) {
  std::lock_guard lock(g_mutex);
  auto& dir = g_nodes[parent];
  if (dir.entries.count(name) != 0) {
    fuse_reply_err(req, EEXIST);
    return;
  }
  Node& n = new_node(fuse_req_ctx(req), mode);
  g_nodes[parent].entries[name] = n.st.st_ino;
  if (S_ISDIR(mode)) {
    g_nodes[parent].st.st_nlink++;
  }
  touch_dir(g_nodes[parent]);
  fuse_entry_param e {};
  fill_entry(e, n);
  if (fi != nullptr) {
    fuse_reply_create(req, &e, fi);
  } else {
    fuse_reply_entry(req, &e);
  }
}

void op_create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) {
  make(req, parent, name, S_IFREG | (mode & 07777), fi);
}

void op_mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t) {
  make(req, parent, name, mode, nullptr);
}

void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  make(req, parent, name, S_IFDIR | (mode & 07777), nullptr);
}

void remove(fuse_req_t req, fuse_ino_t parent, const char* name, bool dir) {
  std::lock_guard lock(g_mutex);
  auto& p = g_nodes[parent];
  auto it = p.entries.find(name);
  if (it == p.entries.end()) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  Node& n = g_nodes[it->second];
  if (dir && !n.entries.empty()) {
    fuse_reply_err(req, ENOTEMPTY);
    return;
  }
  n.st.st_nlink = 0;
  if (dir) {
    p.st.st_nlink--;
  }
  p.entries.erase(it);
  touch_dir(p);
  fuse_reply_err(req, 0);
}

void op_unlink(fuse_req_t req, fuse_ino_t parent, const char* name) { remove(req, parent, name, false); }
void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) { remove(req, parent, name, true); }

void op_open(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) { fuse_reply_open(req, fi); }
void op_release(fuse_req_t req, fuse_ino_t, fuse_file_info*) { fuse_reply_err(req, 0); }
void op_read(fuse_req_t req, fuse_ino_t, size_t, off_t, fuse_file_info*) { fuse_reply_buf(req, nullptr, 0); }
void op_write(fuse_req_t req, fuse_ino_t, const char*, size_t size, off_t, fuse_file_info*) {
  fuse_reply_write(req, size);
}

void readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus) {
  std::lock_guard lock(g_mutex);
  const Node& dir = g_nodes[ino];
  std::vector<char> buf(size);
  size_t used = 0;
  off_t i = 0;
  for (const auto& [name, child] : dir.entries) {
    ++i;
    if (i <= off) {
      continue;
    }
    fuse_entry_param e {};
    fill_entry(e, g_nodes[child]);
    size_t len = plus ? fuse_add_direntry_plus(req, buf.data() + used, size - used, name.c_str(), &e, i)
                      : fuse_add_direntry(req, buf.data() + used, size - used, name.c_str(), &e.attr, i);
    if (len > size - used) {
      break;
    }
    used += len;
  }
  fuse_reply_buf(req, buf.data(), used);
}

void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  readdir(req, ino, size, off, false);
}
void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  readdir(req, ino, size, off, true);
}

void op_init(void*, fuse_conn_info* conn) {
  conn->want |= conn->capable & (FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO | FUSE_CAP_PARALLEL_DIROPS);
  conn->want &= ~(FUSE_CAP_WRITEBACK_CACHE | FUSE_CAP_ATOMIC_O_TRUNC);
  conn->time_gran = 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuse_floor MOUNTPOINT\n");
    return 2;
  }
  Node& root = g_nodes[FUSE_ROOT_ID];
  root.st.st_ino = FUSE_ROOT_ID;
  root.st.st_mode = S_IFDIR | 0755;
  root.st.st_nlink = 2;
  touch_dir(root);

  fuse_lowlevel_ops ops {};
  ops.init = op_init;
  ops.lookup = op_lookup;
  ops.getattr = op_getattr;
  ops.create = op_create;
  ops.mknod = op_mknod;
  ops.mkdir = op_mkdir;
  ops.unlink = op_unlink;
  ops.rmdir = op_rmdir;
  ops.open = op_open;
  ops.release = op_release;
  ops.read = op_read;
  ops.write = op_write;
  ops.readdir = op_readdir;
  ops.readdirplus = op_readdirplus;

  const char* fargv[] = {argv[0], "-o", "default_permissions,fsname=fuse_floor,subtype=fuse_floor", nullptr};
  fuse_args args = FUSE_ARGS_INIT(3, const_cast<char**>(fargv));
  fuse_session* se = fuse_session_new(&args, &ops, sizeof ops, nullptr);
  if (se == nullptr || fuse_set_signal_handlers(se) != 0 || fuse_session_mount(se, argv[1]) != 0) {
    std::fprintf(stderr, "fuse_floor: cannot mount on %s\n", argv[1]);
    return 1;
  }
  fuse_loop_config* loop = fuse_loop_cfg_create();
  fuse_loop_cfg_set_clone_fd(loop, 0);
  fuse_loop_cfg_set_idle_threads(loop, 10);
  int rc = fuse_session_loop_mt(se, loop);
  fuse_loop_cfg_destroy(loop);
  fuse_remove_signal_handlers(se);
  fuse_session_unmount(se);
  fuse_session_destroy(se);
  return rc == 0 ? 0 : 1;
}

// A regular file's open handle (fi->fh), for an open that holds something:
// the bytes the open read ahead (core/store/prefetch.hpp), which its first
// READ takes. fi->fh is 0 for every other open of a file. The kernel sends
// an open's READs on several threads at once, so the taking is atomic;
// RELEASE frees the handle.
#pragma once

#include <fuse_lowlevel.h>

#include <atomic>
#include <memory>

#include "store/prefetch.hpp"

namespace redisfs {

class FileHandle {
 public:
  explicit FileHandle(std::unique_ptr<Prefetch> first) : m_first(first.release()) {}
  ~FileHandle() { delete m_first.load(); }
  FileHandle(const FileHandle&) = delete;
  FileHandle& operator=(const FileHandle&) = delete;

  static FileHandle* of(const fuse_file_info* fi) { return reinterpret_cast<FileHandle*>(fi->fh); }
  // What the open read ahead, once: empty for every later call.
  std::unique_ptr<Prefetch> take() { return std::unique_ptr<Prefetch>(m_first.exchange(nullptr)); }

 private:
  std::atomic<Prefetch*> m_first;
};

}  // namespace redisfs

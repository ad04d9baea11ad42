// A regular file's open handle (fi->fh), for an open that holds something:
// the bytes the open read ahead (core/store/prefetch.hpp), which its READs
// take while they can and drop once they cannot. fi->fh is 0 for every
// other open of a file. The kernel sends an open's READs on several
// threads at once: each takes its own reference; RELEASE frees the handle.
#pragma once

#include <fuse_lowlevel.h>

#include <memory>
#include <mutex>

#include "store/prefetch.hpp"

namespace redisfs {

class FileHandle {
 public:
  explicit FileHandle(std::shared_ptr<const Prefetch> first) : m_first(std::move(first)) {}
  FileHandle(const FileHandle&) = delete;
  FileHandle& operator=(const FileHandle&) = delete;

  static FileHandle* of(const fuse_file_info* fi) { return reinterpret_cast<FileHandle*>(fi->fh); }
  // What the open read ahead, while it is kept.
  std::shared_ptr<const Prefetch> first() const {
    std::lock_guard lock(m_mutex);
    return m_first;
  }
  // Drops `first` (a READ found no more use in it), unless it went already.
  void drop(const std::shared_ptr<const Prefetch>& first) {
    std::lock_guard lock(m_mutex);
    if (m_first == first) {
      m_first.reset();
    }
  }

 private:
  mutable std::mutex m_mutex;
  std::shared_ptr<const Prefetch> m_first;
};

}  // namespace redisfs

// BufferPool: emptied strings kept with their capacity, for reuse.
//
// The daemon gathers a created file's writes in a string until its flush
// (store_gather.cpp): tar writes a file in 4-10 KiB pieces, so each file
// took a malloc of its first piece, reallocations as later pieces were
// appended, and a free at the flush. perf of the daemon during a tar x
// showed that path as the largest part of a WRITE's own CPU: a malloc of
// 1 KiB or more makes glibc consolidate its fastbins first
// (malloc_consolidate). A string given back here after the flush keeps its
// memory for the next file: no allocation, and no reallocation while a file
// fits in what an earlier one grew.
//
// Bounded: at most `max_buffers` strings, none with a capacity above
// `max_capacity` (a larger one is freed when given back), so the pool holds
// at most max_buffers * max_capacity bytes besides what is in use. Not
// thread safe: the owner locks.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace redisfs {

class BufferPool {
 public:
  BufferPool(std::size_t max_buffers, std::size_t max_capacity)
      : m_max_buffers(max_buffers), m_max_capacity(max_capacity) {}

  // An empty string: one given back earlier, with its capacity, when the
  // pool holds any.
  std::string take() {
    if (m_free.empty()) {
      return {};
    }
    std::string buffer = std::move(m_free.back());
    m_free.pop_back();
    return buffer;
  }

  // Keeps `buffer`'s memory (its contents are dropped) unless the pool is
  // full or the buffer holds no memory of its own or more than
  // max_capacity: then it is freed as usual.
  void give(std::string&& buffer) {
    const std::size_t capacity = buffer.capacity();
    if (m_free.size() >= m_max_buffers || capacity > m_max_capacity || capacity <= k_inline) {
      return;
    }
    buffer.clear();
    m_free.push_back(std::move(buffer));
  }

  std::size_t size() const { return m_free.size(); }
  // The bytes the kept strings hold.
  std::size_t bytes() const {
    std::size_t total = 0;
    for (const std::string& s : m_free) {
      total += s.capacity();
    }
    return total;
  }

 private:
  // What a std::string holds without memory of its own.
  static constexpr std::size_t k_inline = std::string().capacity();

  std::size_t m_max_buffers;
  std::size_t m_max_capacity;
  std::vector<std::string> m_free;
};

}  // namespace redisfs

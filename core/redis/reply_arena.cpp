// Replies built in one arena each: see reply_arena.hpp.
#include "redis/reply_arena.hpp"

#include <hiredis/hiredis.h>
#include <hiredis/read.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>

namespace redisfs {

namespace {

// A block's header; its memory follows it.
struct alignas(16) Block {
  Block* next;
};

// The header of a reply's arena: in front of its top-level redisReply.
struct alignas(16) Arena {
  Block* blocks = nullptr;  // chained behind the first one, freed with it
  char* cur = nullptr;      // free room in the block being filled
  char* end = nullptr;
};

// The first block: header, top-level reply and room for a small reply in
// under 1 KiB (a malloc below glibc's large-bin sizes: no consolidation).
constexpr std::size_t k_first = 1008;
// Later blocks: a script's reply with the inode's hash fits in two.
constexpr std::size_t k_block = 4096 - sizeof(Block);

constexpr std::size_t _round(std::size_t n) { return (n + 15) & ~std::size_t{15}; }

Arena* _arena_of(redisReply* root) { return reinterpret_cast<Arena*>(reinterpret_cast<char*>(root) - sizeof(Arena)); }

// `n` bytes from `a`; null when out of memory.
void* _take(Arena* a, std::size_t n) {
  n = _round(n);
  if (static_cast<std::size_t>(a->end - a->cur) >= n) {
    void* p = a->cur;
    a->cur += n;
    return p;
  }
  const bool own = n >= k_block / 2;
  auto* b = static_cast<Block*>(std::malloc(sizeof(Block) + (own ? n : k_block)));
  if (b == nullptr) {
    return nullptr;
  }
  b->next = a->blocks;
  a->blocks = b;
  char* room = reinterpret_cast<char*>(b + 1);
  if (!own) {
    a->cur = room + n;
    a->end = room + k_block;
  }
  return room;
}

// A new redisReply of `type` for `task`, and the arena it is in: the
// top-level one opens an arena, another one is taken from its top-level
// reply's arena and put in its parent's elements.
redisReply* _object(const redisReadTask* task, int type, Arena*& arena) {
  redisReply* r = nullptr;
  if (task->parent == nullptr) {
    void* memory = std::malloc(k_first);
    if (memory == nullptr) {
      return nullptr;
    }
    arena = new (memory) Arena;
    r = reinterpret_cast<redisReply*>(static_cast<char*>(memory) + sizeof(Arena));
    arena->cur = reinterpret_cast<char*>(r) + _round(sizeof(redisReply));
    arena->end = static_cast<char*>(memory) + k_first;
  } else {
    const redisReadTask* top = task;
    while (top->parent != nullptr) {
      top = top->parent;
    }
    arena = _arena_of(static_cast<redisReply*>(top->obj));
    r = static_cast<redisReply*>(_take(arena, sizeof(redisReply)));
    if (r == nullptr) {
      return nullptr;
    }
    static_cast<redisReply*>(task->parent->obj)->element[task->idx] = r;
  }
  std::memset(r, 0, sizeof(redisReply));
  r->type = type;
  return r;
}

// `n` bytes for the object `r` of `task`; null when out of memory (a
// top-level reply is freed then: the reader never saw it).
void* _take_for(const redisReadTask* task, redisReply* r, Arena* arena, std::size_t n) {
  void* p = _take(arena, n);
  if (p == nullptr && task->parent == nullptr) {
    free_arena_reply(r);
  }
  return p;
}

void* _string(const redisReadTask* task, char* str, std::size_t len) {
  Arena* arena = nullptr;
  redisReply* r = _object(task, task->type, arena);
  if (r == nullptr) {
    return nullptr;
  }
  auto* copy = static_cast<char*>(_take_for(task, r, arena, len + 1));
  if (copy == nullptr) {
    return nullptr;
  }
  std::memcpy(copy, str, len);
  copy[len] = '\0';
  r->str = copy;
  r->len = len;
  return r;
}

void* _array(const redisReadTask* task, int elements) {
  Arena* arena = nullptr;
  redisReply* r = _object(task, REDIS_REPLY_ARRAY, arena);
  if (r == nullptr) {
    return nullptr;
  }
  if (elements > 0) {
    const std::size_t bytes = static_cast<std::size_t>(elements) * sizeof(redisReply*);
    r->element = static_cast<redisReply**>(_take_for(task, r, arena, bytes));
    if (r->element == nullptr) {
      return nullptr;
    }
    std::memset(r->element, 0, bytes);
  }
  r->elements = static_cast<std::size_t>(elements);
  return r;
}

void* _integer(const redisReadTask* task, long long value) {
  Arena* arena = nullptr;
  redisReply* r = _object(task, REDIS_REPLY_INTEGER, arena);
  if (r != nullptr) {
    r->integer = value;
  }
  return r;
}

void* _nil(const redisReadTask* task) {
  Arena* arena = nullptr;
  return _object(task, REDIS_REPLY_NIL, arena);
}

void _free(void* reply) { free_arena_reply(static_cast<redisReply*>(reply)); }

redisReplyObjectFunctions g_functions = {_string, _array, _integer, _nil, _free};

}  // namespace

redisReader* new_arena_reader() { return redisReaderCreateWithFunctions(&g_functions); }

void free_arena_reply(redisReply* reply) {
  if (reply == nullptr) {
    return;
  }
  Arena* a = _arena_of(reply);
  for (Block* b = a->blocks; b != nullptr;) {
    Block* next = b->next;
    std::free(b);
    b = next;
  }
  a->~Arena();
  std::free(a);
}

}  // namespace redisfs

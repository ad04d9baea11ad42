// Replies built in one arena each: a hiredis reader whose reply objects
// (redisReply, their strings and element arrays) are carved out of a few
// blocks that belong to the top-level reply, and freed with it at once.
//
// Why: hiredis's own functions make two allocations per string (a zeroed
// redisReply and its bytes) and free them one by one. A script's reply
// carries the inode's hash (HGETALL: about 18 strings), so that was about
// 40 mallocs and 40 frees a reply; callgrind of the daemon during a tar x
// counted parsing and freeing replies at about a third of all its
// instructions, most of it in malloc and free.
//
// Layout: the first block starts with the arena's header, then the
// top-level redisReply; later objects are bumped into it, then into blocks
// of k_block bytes chained behind it; a string of k_block / 2 bytes or more
// gets a block of its own (a 64 KiB GETRANGE reply is not copied into
// small blocks, and no space is wasted behind it). The objects are plain
// redisReply structs: ReplyView reads them as it reads hiredis's.
//
// The reader calls freeObject only on a top-level reply (on an error and
// at redisReaderFree), which is what free_arena_reply takes.
#pragma once

struct redisReader;
struct redisReply;

namespace redisfs {

// A hiredis reader (redisReaderFree frees it) that builds its replies in
// arenas; every reply it returns is freed with free_arena_reply. Null when
// out of memory.
redisReader* new_arena_reader();
// Frees a reply of new_arena_reader's and everything in it (null: nothing).
void free_arena_reply(redisReply* reply);

}  // namespace redisfs

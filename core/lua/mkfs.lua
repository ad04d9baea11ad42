-- Creates an empty filesystem unless one exists.
-- KEYS: SB, INODE:1, RESERVED
-- ARGV: block_size, uid, gid, mode (octal string), format version
-- Returns 1 if created, 0 if a superblock was already there, -1 if a
-- restore, copy or delete has reserved the prefix (it is filling it).
if redis.call('EXISTS', KEYS[3]) == 1 then
  return -1
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
local now = now_ns()
-- (the root first: a stray INODE:1 of another type fails here, before a
-- superblock names a root that is not there)
redis.call('HSET', KEYS[2], 'type', 'dir', 'mode', ARGV[4], 'uid', ARGV[2], 'gid', ARGV[3],
  'size', '0', 'nlink', '2', 'rdev', '0', 'bytes', '0', 'parent', '1',
  'atime', now, 'mtime', now, 'ctime', now)
redis.call('HSET', KEYS[1], 'format', 'redisfs', 'version', ARGV[5], 'block_size', ARGV[1],
  'root', '1', 'next_inode', '2', 'inodes', '1', 'bytes', '0', 'created', now)
return 1

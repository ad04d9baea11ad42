#!lua flags=no-writes
-- Reads an inode's fields and byte ranges of its blocks in one step, as
-- Store::read's MULTI/EXEC does; used when the server is full, which
-- refuses every command queued in a MULTI but runs no-writes scripts.
-- KEYS: 1 INODE, 2.. blocks
-- ARGV: first and last byte of each block, in pairs
-- Returns {type, size, atime, mtime, ctime}, then each block's bytes.
local out = {redis.call('HMGET', KEYS[1], 'type', 'size', 'atime', 'mtime', 'ctime')}
for i = 2, #KEYS do
  out[i] = redis.call('GETRANGE', KEYS[i], ARGV[2 * i - 3], ARGV[2 * i - 2])
end
return out

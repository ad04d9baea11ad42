-- Reads byte ranges of consecutive blocks, with the inode's size and times,
-- in one atomic step (a concurrent write is seen whole or not at all).
-- KEYS: 1 INODE, 2.. blocks
-- ARGV: per block: first byte, last byte (inclusive, within the block)
-- Returns {size, atime, mtime, ctime, bytes of block 1, ...}; a missing
-- block gives '' (a hole), a short one its stored part.
local f = redis.call('HMGET', KEYS[1], 'type', 'size', 'atime', 'mtime', 'ctime')
if not f[1] then
  fail('ESTALE', 'the file was removed')
end
local out = {f[2], f[3], f[4], f[5]}
for i = 2, #KEYS do
  local a = (i - 2) * 2 + 1
  out[#out + 1] = redis.call('GETRANGE', KEYS[i], ARGV[a], ARGV[a + 1])
end
return out

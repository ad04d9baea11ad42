-- Reserves a range of inode numbers for one mount.
-- KEYS: SB, FREEZE     ARGV: count
-- Returns the last number of the range.
check_frozen(KEYS[2])
if redis.call('EXISTS', KEYS[1]) == 0 then
  fail('ESTALE', 'the filesystem was deleted')
end
-- Inode numbers stay below 2^53 (superblock.hpp: k_max_inode), which Lua
-- counts exactly: a range that would cross it is refused.
local next = tonumber(redis.call('HGET', KEYS[1], 'next_inode'))
if next and next + tonumber(ARGV[1]) > 9007199254740992 then
  fail('ENOSPC', 'no inode numbers left below 2^53')
end
return redis.call('HINCRBY', KEYS[1], 'next_inode', ARGV[1]) - 1

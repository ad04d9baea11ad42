--! no-outcome: a toolkit script (fsck's repair), not a mount's change (outcome.inc)
-- Cuts a block that holds more than its file's size to ARGV[2] bytes (never
-- 0 here), with the change record's mark, as one step of fsck's repair
-- (snap/fsck_repair.cpp), without sending the block's bytes back and forth.
-- KEYS: 1 the block, 2 the change record (CHANGED)
-- ARGV: 1 the record's mark, 2 how many bytes the block keeps
-- A KEYS[1] that is not a string refuses the step before any write (EIO,
-- naming it). Returns 1.
local n = tonumber(ARGV[2])
if #KEYS ~= 2 or #ARGV ~= 2 or not n or n < 1 or n ~= math.floor(n) then
  return redis.error_reply('EINVAL malformed fsck_trim arguments')
end
local t = redis.call('TYPE', KEYS[1]).ok
if t ~= 'string' and t ~= 'none' then
  return redis.error_reply('EIO ' .. KEYS[1] .. ' is a ' .. t .. ', not a block: nothing repaired')
end
redis.call('SET', KEYS[2], ARGV[1])
if redis.call('STRLEN', KEYS[1]) > n then
  redis.call('SET', KEYS[1], redis.call('GETRANGE', KEYS[1], 0, n - 1))
end
return 1

--! no-outcome: a toolkit script (fsck's repair), not a mount's change (outcome.inc)
-- One field of one of fsck's repairs (snap/fsck_repair.cpp, Repairer::apply),
-- an HSET or HDEL, with the change record's mark and, when the hash is a
-- directory's entries, the directory's change counted in its inode's 'gen'
-- (as dir_changed in prelude.lua), as one step: a mount trusts its list of
-- a directory's names only while the count follows the changes, so an entry
-- must never go without its count (fsck stopped between the two).
-- KEYS: 1 the hash, 2 the change record (CHANGED), 3 the directory's inode
--       (only when KEYS[1] is a directory's entries)
-- ARGV: 1 the record's mark, 2 HSET or HDEL, 3 the field, 4 its value (HSET)
-- A KEYS[1] that is neither a hash nor absent refuses the step before any
-- write (EIO, naming it). The count is left alone, never an error, when
-- KEYS[3] is not a hash (no inode is made of a stray entries key) or its
-- 'gen' not a count (the report lists the inode as damaged on its own).
-- Returns the HSET's or HDEL's reply.
local op = ARGV[2]
if #KEYS < 2 or #KEYS > 3 or not ((op == 'HSET' and #ARGV == 4) or (op == 'HDEL' and #ARGV == 3)) then
  return redis.error_reply('EINVAL malformed fsck_field arguments')
end
local t = redis.call('TYPE', KEYS[1]).ok
if t ~= 'hash' and t ~= 'none' then
  return redis.error_reply('EIO ' .. KEYS[1] .. ' is a ' .. t .. ', not a hash: nothing repaired')
end
local count = false
if KEYS[3] and redis.call('TYPE', KEYS[3]).ok == 'hash' then
  local g = redis.call('HGET', KEYS[3], 'gen')
  count = not g or (string.match(g, '^%d+$') ~= nil and #g <= 18)
end
redis.call('SET', KEYS[2], ARGV[1])
local r = redis.call(op, KEYS[1], unpack(ARGV, 3))
if count then
  redis.call('HINCRBY', KEYS[3], 'gen', 1)
end
return r

--! no-outcome: a toolkit script (fsck's repair), not a mount's change (outcome.inc)
--! resend: a field already as the repair leaves it is done, writing nothing: a run after a lost reply finds it so
-- One field of one of fsck's repairs (snap/fsck_repair.cpp, Repairer::apply),
-- an HSET or HDEL, with the change record's mark and, when the hash is a
-- directory's entries, the directory's change counted in its inode's 'gen'
-- (as dir_changed in prelude.lua), as one step: a mount trusts its list of
-- a directory's names only while the count follows the changes, so an entry
-- must never go without its count (fsck stopped between the two).
-- The field is changed only if it still holds what the check read there
-- (a mount, under --force, may have changed it since: its change stays,
-- and the problem is left for the next check).
-- KEYS: 1 the hash, 2 the change record (CHANGED), 3 the directory's inode
--       (only when KEYS[1] is a directory's entries)
-- ARGV: 1 the record's mark, 2 HSET or HDEL, 3 the field, 4 what the check
--       read in it: 'absent' or 'value', 5 that value ('' when absent),
--       6 the value to set (HSET)
-- A KEYS[1] that is neither a hash nor absent refuses the step before any
-- write (EIO, naming it). The count is left alone, never an error, when
-- KEYS[3] is not a hash (no inode is made of a stray entries key) or its
-- 'gen' not a count (the report lists the inode as damaged on its own).
-- Returns 1 when the field is as the repair leaves it (changed now, or
-- found so: nothing written), 0 when it holds neither what the check read
-- nor that, or the hash an HSET would set it in is gone (nothing written:
-- every hash the repair sets a field in was there when it was checked).
local op, seen = ARGV[2], ARGV[4]
if #KEYS < 2 or #KEYS > 3 or not ((op == 'HSET' and #ARGV == 6) or (op == 'HDEL' and #ARGV == 5)) or
    (seen ~= 'absent' and seen ~= 'value') or (seen == 'absent' and ARGV[5] ~= '') then
  return redis.error_reply('EINVAL malformed fsck_field arguments')
end
local t = redis.call('TYPE', KEYS[1]).ok
if t ~= 'hash' and t ~= 'none' then
  return redis.error_reply('EIO ' .. KEYS[1] .. ' is a ' .. t .. ', not a hash: nothing repaired')
end
if t == 'none' and op == 'HSET' then
  return 0  -- gone since the check (a mount removed the inode): no hash is made of one field
end
local now = redis.call('HGET', KEYS[1], ARGV[3])
if (op == 'HSET' and now == ARGV[6]) or (op == 'HDEL' and not now) then
  return 1
end
if (seen == 'absent' and now) or (seen == 'value' and now ~= ARGV[5]) then
  return 0
end
local count = false
if KEYS[3] and redis.call('TYPE', KEYS[3]).ok == 'hash' then
  local g = redis.call('HGET', KEYS[3], 'gen')
  count = not g or gen_valid(g)
end
redis.call('SET', KEYS[2], ARGV[1])
if op == 'HSET' then
  redis.call('HSET', KEYS[1], ARGV[3], ARGV[6])
else
  redis.call('HDEL', KEYS[1], ARGV[3])
end
if count then
  redis.call('HSET', KEYS[3], 'gen', next_gen(redis.call('HGET', KEYS[3], 'gen') or '0'))
end
return 1

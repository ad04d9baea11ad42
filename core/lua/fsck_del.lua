--! no-outcome: a toolkit script (fsck's repair), not a mount's change (outcome.inc)
--! resend: a key already gone is done, writing nothing: a run after a lost reply finds it so
-- The removal of a key by fsck's repair (snap/fsck_repair.cpp,
-- Repairer::apply) that a mount's change since the check (under --force)
-- would make wrong, with the change record's mark, as one step, made only
-- if what the check found still holds:
--   'stray': a key of an inode that did not exist (a block, entries or
--     attributes): the inode still does not exist (a file a mount created
--     after the check read the inodes owns the block it wrote since);
--   'lease': a lease no holder set (it never lapses, or lives longer
--     than any holder sets): it still does (a holder refreshed it since),
--     and with a mount's session key, its registration goes with it.
-- KEYS: 1 the key, 2 the change record (CHANGED), 3 the inode ('stray'),
--       or the mounts' register (MOUNTS: 'lease' of a mount's session key)
-- ARGV: 1 the record's mark, 2 'stray' or 'lease', 3 ('lease') the longest
--       time to live a holder sets (ms), 4 the registration's field (with
--       KEYS[3])
-- Returns 1 when the key is gone (removed now, or found so: nothing
-- written), 0 when what the check found no longer holds (nothing
-- written).
local what = ARGV[2]
local max = what == 'lease' and tonumber(ARGV[3])
if not ((what == 'stray' and #KEYS == 3 and #ARGV == 2) or
        (what == 'lease' and max and ((#KEYS == 2 and #ARGV == 3) or (#KEYS == 3 and #ARGV == 4)))) then
  return redis.error_reply('EINVAL malformed fsck_del arguments')
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 1
end
if what == 'stray' then
  if redis.call('EXISTS', KEYS[3]) == 1 then
    return 0
  end
else
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl >= 0 and ttl <= max then
    return 0
  end
end
redis.call('SET', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[1])
if what == 'lease' and KEYS[3] then
  -- (a register that is no hash is fsck's finding of its own, removed by
  -- its own repair: the lease still goes, marked, not half of this step)
  redis.pcall('HDEL', KEYS[3], ARGV[4])
end
return 1

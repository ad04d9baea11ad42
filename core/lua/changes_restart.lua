--! no-outcome: a toolkit script, not a filesystem change (outcome.inc)
--! resend: under the freeze no change lands between two runs: the second leaves the record the first left
-- A frozen snapshot's instant for change tracking (snapshot.cpp: a copy
-- into another cluster slot, where the record cannot be moved, so the
-- snapshot has none): the live source is raised to format version ARGV[2]
-- (prelude.lua, upgrade_format) and starts a fresh record counting from
-- the new snapshot ARGV[1], or the string 'untracked' while a mount of a
-- daemon that records nothing is registered (untracked_mounts), as at a
-- copy-on-write instant (cow_begin.lua).
-- KEYS: 1 SB, 2 CHANGED, 3 MOUNTS
-- ARGV: 1 the new snapshot's id, 2 the format version this toolkit writes
upgrade_format(KEYS[1], ARGV[2])
redis.call('DEL', KEYS[2])
if untracked_mounts(KEYS[3]) then
  redis.call('SET', KEYS[2], 'untracked')
else
  redis.call('SADD', KEYS[2], 'since:' .. ARGV[1])
end
return 1

#!lua flags=allow-oom
-- One open of a file by this mount ends (as release.lua), for a file this
-- mount knows as its orphan: its unlink or rename took the file's last name
-- while the file was open (sqlite's journal, closed and removed at once,
-- whose RELEASE reaches the daemon after the UNLINK). When no mount holds it
-- open any more, the orphan is freed in this same step, as unlink.lua frees
-- an unheld file (free_unheld: its blocks must all be in KEYS), so that the
-- kernel's FORGET that follows has nothing left to do. When other mounts
-- still hold it and the orphan is recorded under this session, it is handed
-- to one of them (as purge.lua does): that mount's last close frees it, or,
-- should it die, the sweep of dead mounts' orphans does.
-- The release itself is never held back (OPEN keys are not part of the
-- filesystem): under a freeze (FREEZE exists) the orphan is left as it is
-- and the caller purges it, waiting the freeze out. Freeing or handing over
-- changes the filesystem, so then the snapshot rules hold: copy-on-write
-- first (a COW refusal comes before any write), the identity and the
-- outcome record (outcome.inc). Runs on a full server (allow-oom): it frees.
-- KEYS: 1 OPEN, 2 INODE, 3 ORPHANS, 4 SB, 5 FREEZE, 6 XATTR, 7.. BLK:0..
--       (as unlink.lua's: the blocks the size the client last saw needs)
-- ARGV: 1 session, 2 ino, 3 how many bytes the blocks in KEYS cover
-- Returns 'FREED' when freed here, 'HELD' when handed to a mount that
-- holds it open, 1 when it is an orphan nobody holds that this step could
-- not free (a freeze, blocks past those in KEYS, a damaged key: the caller
-- purges it, purge.lua and fsck deal with damage), else 0 (as release.lua).
local holders = redis.pcall('HKEYS', KEYS[1])
if holders.err then
  fail('EIO', KEYS[1] .. ' is not a hash')  -- left for fsck, as it is
end
local mine = redis.call('HGET', KEYS[1], ARGV[1])
local others = {}
for _, h in ipairs(holders) do
  if h ~= ARGV[1] then
    others[#others + 1] = h
  end
end
local ours_left = mine and (tonumber(mine) or 0) > 1
-- Is it an orphan (nlink 0, in ORPHANS)? A damaged INODE or ORPHANS is not
-- one this step touches.
local f = redis.pcall('HMGET', KEYS[2], 'type', 'nlink')
local entry = redis.pcall('HGET', KEYS[3], ARGV[2])
local orphan = not f.err and f[1] and tonumber(f[2] or '') == 0 and type(entry) == 'string'
local change = nil  -- 'free' or 'hand'
if orphan and not ours_left and f[1] ~= 'dir' then
  if #others == 0 then
    change = 'free'
  elseif entry == ARGV[1] then
    change = 'hand'
  end
end
if change and freeze_alive(KEYS[5]) then
  change = nil  -- frozen: the caller's purge waits the freeze out
end
if change then
  local staging = cow_pending()
  if staging then
    fail('COW', staging)
  end
end
-- Every check is done: the release (release.lua's).
local left = redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
if left <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
end
if change == 'hand' then
  redis.call('HSET', KEYS[3], ARGV[2], others[1])
  return 'HELD'
end
if change == 'free' and free_unheld(KEYS[4], KEYS[2], KEYS[1], KEYS[6], 7, #KEYS, ARGV[3]) then
  redis.call('HDEL', KEYS[3], ARGV[2])
  return 'FREED'
end
if orphan and #others == 0 and not ours_left then
  return 1
end
return 0

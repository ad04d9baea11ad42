#!lua flags=allow-oom
-- Removes from a file's open counts the sessions of mounts that are gone
-- (killed with the file open, a release that never reached the server, a
-- reply lost during an open). Not held back by a freeze (OPEN keys are not
-- part of the filesystem) nor by a full server (it only frees).
-- KEYS: 1 OPEN, 2 INODE, 3 ORPHANS, 4.. MOUNT keys of the sessions the
--       client found dead
-- ARGV: 1 ino, 2.. those sessions, in the same order
-- Returns {removed, free}: free is 1 when the file is now an orphan that no
-- mount holds open (the caller purges it).
--
-- The inode and ORPHANS are read before the first write: a damaged one
-- (not a hash) leaves the file to fsck (free 0) but never stops the dead
-- counts' removal halfway. An OPEN key that is not a hash fails the first
-- HDEL, before anything was written.
local nlink = redis.pcall('HGET', KEYS[2], 'nlink')
local orphan = redis.pcall('HEXISTS', KEYS[3], ARGV[1])
local removed = 0
for i = 2, #ARGV do
  if redis.call('EXISTS', KEYS[2 + i]) == 0 and redis.call('HDEL', KEYS[1], ARGV[i]) == 1 then
    removed = removed + 1
  end
end
local free = 0
if type(nlink) == 'string' and tonumber(nlink) == 0 and orphan == 1 and redis.call('HLEN', KEYS[1]) == 0 then
  free = 1
end
return {removed, free}

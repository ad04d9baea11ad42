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
local removed = 0
for i = 2, #ARGV do
  if redis.call('EXISTS', KEYS[2 + i]) == 0 and redis.call('HDEL', KEYS[1], ARGV[i]) == 1 then
    removed = removed + 1
  end
end
local free = 0
if redis.call('HLEN', KEYS[1]) == 0 then
  local nlink = redis.call('HGET', KEYS[2], 'nlink')
  if nlink and tonumber(nlink) == 0 and redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1 then
    free = 1
  end
end
return {removed, free}

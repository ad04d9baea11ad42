#!lua flags=allow-oom
-- One open of a file by this mount ends. Not held back by a snapshot's
-- freeze: OPEN keys are not part of the filesystem. Runs on a full server
-- too (allow-oom): it only shrinks the OPEN hash, and a release refused
-- there would leave the open counted forever.
-- KEYS: OPEN, INODE, ORPHANS
-- ARGV: session, ino
-- Returns 1 when the file is an orphan (nlink 0, in ORPHANS) that no mount
-- holds open any more, whichever mount unlinked it: the last close frees
-- it (the caller purges it), else 0. (The mount that unlinked it may be
-- gone, or its kernel may keep the inode, and so never purge it.)
local left = redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
if left <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
end
if redis.call('HLEN', KEYS[1]) > 0 then
  return 0
end
local nlink = redis.call('HGET', KEYS[2], 'nlink')
if nlink and tonumber(nlink) == 0 and redis.call('HEXISTS', KEYS[3], ARGV[2]) == 1 then
  return 1
end
return 0

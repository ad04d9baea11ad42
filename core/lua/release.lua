#!lua flags=allow-oom
-- One open of a file by this mount ends. Not held back by a snapshot's
-- freeze: OPEN keys are not part of the filesystem. Runs on a full server
-- too (allow-oom): it only shrinks the OPEN hash, and a release refused
-- there would leave the open counted forever.
-- KEYS: OPEN, INODE, ORPHANS
-- ARGV: session, ino
-- Returns 1 when the file is an orphan that this mount owns and no mount
-- holds open any more (the caller purges it), else 0.
local left = redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
if left <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
end
if redis.call('HLEN', KEYS[1]) > 0 then
  return 0
end
local nlink = redis.call('HGET', KEYS[2], 'nlink')
if nlink and tonumber(nlink) == 0 and redis.call('HGET', KEYS[3], ARGV[2]) == ARGV[1] then
  return 1
end
return 0

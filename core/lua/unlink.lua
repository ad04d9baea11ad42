#!lua flags=allow-oom
-- Removes a directory entry that is not a directory. Runs on a full server
-- (allow-oom): removing is how space is freed; it adds only an ORPHANS
-- entry of a few bytes.
-- KEYS: 1 SB, 2 FREEZE, 3 DIR:parent, 4 INODE:parent, 5 INODE:child
--       (guess), 6 ORPHANS, 7 XATTR:child, 8 OPEN:child, 9.. BLK:child:0..
--       (the first blocks)
-- ARGV: name, guessed child ino, session id, how many bytes the blocks in
--       KEYS cover
-- Returns {'RETRY', actual ino} when the guess is wrong, else {'OK', nlink
-- left, the parent's fields (HGETALL), 'FREED' if the inode is gone}. At
-- nlink 0 a file that no mount holds open and whose blocks are all in
-- KEYS is freed at once (free_unheld). Otherwise the inode is recorded in
-- ORPHANS under this session: its data stays until the mount that
-- unlinked it has no use for it (purge.lua).
check_frozen(KEYS[2])
local ino = redis.call('HGET', KEYS[3], ARGV[1])
if not ino then
  fail('ENOENT')
end
if ino ~= ARGV[2] then
  return {'RETRY', ino}
end
if inode_type(KEYS[5]) == 'dir' then
  fail('EISDIR')
end
local now = now_ns()
redis.call('HDEL', KEYS[3], ARGV[1])
dir_changed(KEYS[4], now)
local left = redis.call('HINCRBY', KEYS[5], 'nlink', -1)
redis.call('HSET', KEYS[5], 'ctime', now)
if left <= 0 then
  if free_unheld(KEYS[1], KEYS[5], KEYS[8], KEYS[7], 9, #KEYS, ARGV[4]) then
    return {'OK', left, redis.call('HGETALL', KEYS[4]), 'FREED'}
  end
  redis.call('HSET', KEYS[6], ino, ARGV[3])
end
return {'OK', left, redis.call('HGETALL', KEYS[4])}

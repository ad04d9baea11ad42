-- Removes an empty directory.
-- KEYS: SB, FREEZE, DIR:parent, INODE:parent, INODE:child (guess),
--       DIR:child, XATTR:child
-- ARGV: name, guessed child ino
-- Returns {'RETRY', actual ino} when the guess is wrong, else {'OK'}.
check_frozen(KEYS[2])
local ino = redis.call('HGET', KEYS[3], ARGV[1])
if not ino then
  fail('ENOENT')
end
if ino ~= ARGV[2] then
  return {'RETRY', ino}
end
if inode_type(KEYS[5]) ~= 'dir' then
  fail('ENOTDIR')
end
if redis.call('HLEN', KEYS[6]) > 0 then
  fail('ENOTEMPTY')
end
local now = now_ns()
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('DEL', KEYS[5], KEYS[6], KEYS[7])
dir_changed(KEYS[4], now)
redis.call('HINCRBY', KEYS[4], 'nlink', -1)
redis.call('HINCRBY', KEYS[1], 'inodes', -1)
return {'OK'}

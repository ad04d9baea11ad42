-- Adds a hard link.
-- KEYS: SB, FREEZE, DIR:newparent, INODE:newparent, INODE:ino
-- ARGV: name, ino
-- Returns the inode's fields.
check_frozen(KEYS[2])
local t = inode_type(KEYS[5])
if t == 'dir' then
  fail('EPERM', 'hard links to directories are not allowed')
end
local nlink = hget_num(KEYS[5], 'nlink')
if nlink == 0 then
  fail('ENOENT', 'the file was removed')
end
if nlink >= 4294967295 then
  fail('EMLINK')
end
check_new_entry(KEYS[3], KEYS[4], ARGV[1])
local now = now_ns()
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
redis.call('HINCRBY', KEYS[5], 'nlink', 1)
redis.call('HSET', KEYS[5], 'ctime', now)
dir_changed(KEYS[4], now)
return redis.call('HGETALL', KEYS[5])

-- Deletes an orphan (nlink 0) inode once no one uses it. A regular file's
-- blocks go first, by truncate steps to size 0.
-- KEYS: SB, FREEZE, INODE, XATTR, ORPHANS, DIR
-- ARGV: ino
-- Returns {'RETRY', size} while blocks remain, else {'OK'}.
check_frozen(KEYS[2])
local f = redis.call('HMGET', KEYS[3], 'type', 'nlink', 'size')
if not f[1] then
  redis.call('HDEL', KEYS[5], ARGV[1])
  return {'OK'}
end
if tonumber(f[2]) > 0 then
  redis.call('HDEL', KEYS[5], ARGV[1])
  return {'OK'}
end
if f[1] == 'file' and f[3] ~= '0' then
  return {'RETRY', f[3]}
end
redis.call('DEL', KEYS[3], KEYS[4], KEYS[6])
redis.call('HDEL', KEYS[5], ARGV[1])
redis.call('HINCRBY', KEYS[1], 'inodes', -1)
return {'OK'}

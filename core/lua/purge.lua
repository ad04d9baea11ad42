#!lua flags=allow-oom
-- Deletes an orphan (nlink 0) inode once no one uses it. A regular file's
-- blocks go first, by truncate steps to size 0. While another live mount
-- holds the file open, the orphan is handed to that mount instead: it
-- frees it at its last close (or, should it die, the next mount does).
-- Runs on a full server (allow-oom): it frees memory, or moves an ORPHANS
-- entry from one session to another.
-- KEYS: 1 SB, 2 FREEZE, 3 INODE, 4 XATTR, 5 ORPHANS, 6 DIR, 7 OPEN,
--       8.. MOUNT keys of the sessions holding the file open, as the client
--       read them (HKEYS OPEN)
-- ARGV: 1 ino, 2 our session, 3.. those sessions, in the same order
-- Returns {'RETRY'} when the holders changed, {'RETRY', size} while blocks
-- remain, {'HELD', session} when handed over, else {'OK'}.
check_frozen(KEYS[2])
local holders = redis.pcall('HKEYS', KEYS[7])
if holders.err then
  fail('EIO', KEYS[7] .. ' is not a hash')  -- left for fsck, as it is
end
if #holders ~= #ARGV - 2 then
  return {'RETRY'}
end
for i, h in ipairs(holders) do
  if h ~= ARGV[2 + i] then
    return {'RETRY'}
  end
end
local f = redis.pcall('HMGET', KEYS[3], 'type', 'nlink', 'size')
if f.err then
  fail('EIO', KEYS[3] .. ' is not a hash')  -- left for fsck, as it is
end
if not f[1] then
  redis.call('HDEL', KEYS[5], ARGV[1])
  return {'OK'}
end
local nlink = tonumber(f[2] or '')
if not nlink then
  fail('EIO', KEYS[3] .. ': malformed field nlink')
end
if nlink > 0 then
  redis.call('HDEL', KEYS[5], ARGV[1])
  return {'OK'}
end
for i, h in ipairs(holders) do
  if h ~= ARGV[2] and redis.call('EXISTS', KEYS[7 + i]) == 1 then
    redis.call('HSET', KEYS[5], ARGV[1], h)
    return {'HELD', h}
  end
end
if f[1] == 'file' and f[3] ~= '0' then
  return {'RETRY', f[3]}
end
-- (ORPHANS first: one that is no hash fails here, before anything is gone)
redis.call('HDEL', KEYS[5], ARGV[1])
redis.call('DEL', KEYS[3], KEYS[4], KEYS[6], KEYS[7])
count_add(KEYS[1], 'inodes', -1)
return {'OK'}

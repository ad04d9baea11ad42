#!lua flags=allow-oom
-- Changes mode, owner and times (size has its own scripts: truncate,
-- extend). Runs on a full server (allow-oom): it only overwrites fields
-- every inode has, so it cannot grow the filesystem.
-- KEYS: SB, FREEZE, INODE
-- ARGV: mode (octal, '' = keep), uid, gid, atime, mtime
--       (times: '' = keep, 'now', or nanoseconds)
-- Returns the inode's fields.
check_frozen(KEYS[2])
local t = inode_type(KEYS[3])
local now = now_ns()
local f = {'ctime', now}
local names = {'mode', 'uid', 'gid', 'atime', 'mtime'}
for i = 1, 5 do
  local v = ARGV[i]
  if v ~= '' then
    if v == 'now' then
      v = now
    end
    table.insert(f, names[i])
    table.insert(f, v)
  end
end
redis.call('HSET', KEYS[3], unpack(f))
return redis.call('HGETALL', KEYS[3])

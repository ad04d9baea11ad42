#!lua flags=allow-oom
-- Changes mode, owner and times (size has its own scripts: truncate,
-- extend). Runs on a full server (allow-oom): it only overwrites fields
-- every inode has, so it cannot grow the filesystem.
-- KEYS: SB, FREEZE, INODE
-- ARGV: mode (octal, '' = keep), uid, gid, atime, mtime
--       (times: '' = keep, 'now', or nanoseconds), then 'kill' to drop
--       setuid, and setgid of a group-executable file, after the mode
--       (FATTR_KILL_SUIDGID; '' = keep), then '1' when the reply is to
--       carry the inode's fields
-- Returns the inode's fields if asked, else 1 (a flush of gathered
-- changes does not ask: the fields cost the server more than the change).
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
if ARGV[6] == 'kill' then
  local k = killed_mode(ARGV[1] ~= '' and ARGV[1] or redis.call('HGET', KEYS[3], 'mode'))
  if not k then
    fail('EIO', 'the inode has no valid mode')
  end
  table.insert(f, 'mode')
  table.insert(f, k)
end
redis.call('HSET', KEYS[3], unpack(f))
if ARGV[7] == '1' then
  return redis.call('HGETALL', KEYS[3])
end
return 1

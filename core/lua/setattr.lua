#!lua flags=allow-oom
-- Changes mode, owner and times (size has its own scripts: truncate,
-- extend). Runs on a full server (allow-oom): it only overwrites fields
-- every inode has, so it cannot grow the filesystem. The change itself is
-- prelude.lua's attr_fields, which write.lua also applies after its data
-- (a gathered file's flush: one script for the data and the change).
-- KEYS: SB, FREEZE, INODE
-- ARGV: mode (octal, '' = keep), uid, gid, atime, mtime
--       (times: '' = keep, 'now', or nanoseconds), then 'kill' to drop
--       setuid, and setgid of a group-executable file, after the mode
--       (FATTR_KILL_SUIDGID; '' = keep), then '1' when the reply is to
--       carry the inode's fields, then, optional, the change's instant
--       (nanoseconds: its ctime; absent or '': the server's clock): a
--       writeback mount's, which showed a directory's change before sending
--       it (store_dirs.cpp), or its kernel's, which keeps a regular file's
--       ctime and sends it (FUSE_SET_ATTR_CTIME)
-- Returns the inode's fields if asked, else 1 (a flush of gathered
-- changes asks only in the last script of a writeback mount's close or
-- fsync: elsewhere the fields cost the server more than the change).
-- Asked, it reads them first and refuses (EIO, writing nothing) a change
-- that would leave fields the client cannot decode (check_readable).
local now = ARGV[8] or ''
if now == '' then
  now = now_ns()
elseif not is_instant(now) then
  fail('EINVAL', 'malformed instant')
end
check_frozen(KEYS[2])
if ARGV[7] == '1' then
  local flat = redis.call('HGETALL', KEYS[3])
  if #flat == 0 then
    fail('ENOENT')
  end
  local f = attr_fields(ARGV, 1, now, function()
    for i = 1, #flat, 2 do
      if flat[i] == 'mode' then
        return flat[i + 1]
      end
    end
  end)
  if not f then
    fail('EIO', 'the inode has no valid mode')
  end
  check_readable(with_fields(flat, f), KEYS[3])
  redis.call('HSET', KEYS[3], unpack(f))
  return flat
end
-- the type (is it there?) and the mode a kill starts from, in one read
local before = redis.call('HMGET', KEYS[3], 'type', 'mode')
if not before[1] then
  fail('ENOENT')
end
local f = attr_fields(ARGV, 1, now, function()
  return before[2]
end)
if not f then
  fail('EIO', 'the inode has no valid mode')
end
redis.call('HSET', KEYS[3], unpack(f))
return 1

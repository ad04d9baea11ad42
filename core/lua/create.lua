-- Creates a node (file, directory, symlink, fifo, device, socket) and its
-- entry in the parent.
-- KEYS: SB, FREEZE, DIR:parent, INODE:parent, INODE:new[, OPEN:new]
-- ARGV: name, type, mode (octal), uid, gid, rdev, target, new ino, parent
--       ino[, session: the file is created open by that mount]
-- Returns {now, gid, mode (octal), the parent's fields (HGETALL)}: the new
-- inode's other fields are the client's own arguments (a short reply keeps
-- the outcome record, outcome.inc, cheap: create is the commonest change).
check_frozen(KEYS[2])
check_new_entry(KEYS[3], KEYS[4], ARGV[1])
if redis.call('EXISTS', KEYS[5]) == 1 then
  fail('EIO', 'inode number already in use')
end
local kind = ARGV[2]
local mode = tonumber(ARGV[3], 8)
local gid = ARGV[5]
local pmode = tonumber(redis.call('HGET', KEYS[4], 'mode'), 8)
if pmode % (2 * S_ISGID) >= S_ISGID then
  -- setgid directory: new nodes take its group, new directories its setgid bit
  gid = redis.call('HGET', KEYS[4], 'gid')
  if kind == 'dir' and mode % (2 * S_ISGID) < S_ISGID then
    mode = mode + S_ISGID
  end
end
local now = now_ns()
local nlink = '1'
local size = '0'
if kind == 'dir' then
  nlink = '2'
elseif kind == 'symlink' then
  size = fmt(string.len(ARGV[7]))
end
local mode_text = string.format('%04o', mode)
redis.call('HSET', KEYS[5], 'type', kind, 'mode', mode_text, 'uid', ARGV[4], 'gid', gid,
  'size', size, 'nlink', nlink, 'rdev', ARGV[6], 'bytes', '0',
  'atime', now, 'mtime', now, 'ctime', now)
if kind == 'dir' then
  redis.call('HSET', KEYS[5], 'parent', ARGV[9])
elseif kind == 'symlink' then
  redis.call('HSET', KEYS[5], 'target', ARGV[7])
end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[8])
dir_changed(KEYS[4], now)
if kind == 'dir' then
  redis.call('HINCRBY', KEYS[4], 'nlink', 1)
end
redis.call('HINCRBY', KEYS[1], 'inodes', 1)
if KEYS[6] then
  redis.call('HINCRBY', KEYS[6], ARGV[10], 1)
end
return {now, gid, mode_text, redis.call('HGETALL', KEYS[4])}

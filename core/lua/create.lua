-- Creates a node (file, directory, symlink, fifo, device, socket) and its
-- entry in the parent.
-- KEYS: SB, FREEZE, DIR:parent, INODE:parent, INODE:new[, OPEN:new]
-- ARGV: name, type, mode (octal), uid, gid, rdev, target, new ino, parent
--       ino[, session: the file is created open by that mount], last the
--       client's basis of the parent ("<gen>:<ctime>:<atime>" it holds,
--       or '')
-- Returns {now, gid, mode (octal), the parent's change (dir_reply: {now,
-- gen, nlink}, and its fields when the basis is not the server's)}: the
-- new inode's other fields are the client's own arguments (a short reply
-- keeps the outcome record, outcome.inc, cheap: create is the commonest
-- change); when the basis is the server's, one string: '<now> <gid>
-- <mode> <now> <gen> <nlink>' (short_reply: a gid with a space in it,
-- from a damaged parent, makes it one the client refuses, as it would
-- refuse such a gid). The parent's fields are read once, first (dir_read:
-- only those the checks need), and one HSET stamps the change
-- (dir_write). The outcome record (outcome.inc) holds the reply, the
-- array's without the parent's change: {}.
-- Fails before any write: ENOENT/ENOTDIR (parent gone, removed, no
-- directory), EIO when the parent's mode, gid (when setgid), gen or (for a
-- directory) nlink is damaged, or the inode number is in use (its INODE
-- key, or the OPEN key of a file created open, exists); then EEXIST
-- when its first write, HSETNX of the entry, finds the name taken.
check_frozen(KEYS[2])
local kind = ARGV[2]
local nlink_delta = kind == 'dir' and 1 or nil
local parent, pmode_text, pgid = dir_read(KEYS[4], nlink_delta, table.remove(ARGV), 'mode', 'gid')
-- (and its OPEN key: a stray one would fail the HINCRBY after the writes)
if redis.call('EXISTS', KEYS[5], KEYS[6] or KEYS[5]) ~= 0 then
  fail('EIO', 'inode number already in use')
end
local mode = tonumber(ARGV[3], 8)
local gid = ARGV[5]
local pmode = tonumber(pmode_text or '', 8)
if not pmode then
  fail('EIO', 'directory: malformed field mode')
end
if pmode % (2 * S_ISGID) >= S_ISGID then
  -- setgid directory: new nodes take its group, new directories its setgid bit
  gid = pgid
  if not gid then
    fail('EIO', 'directory: no field gid')
  end
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
-- The first write, or none: the entry goes in unless the name is taken
-- (one pass over the directory's hash where HEXISTS then HSET took two).
if redis.call('HSETNX', KEYS[3], ARGV[1], ARGV[8]) == 0 then
  fail('EEXIST')
end
if kind == 'dir' then
  redis.call('HSET', KEYS[5], 'type', kind, 'mode', mode_text, 'uid', ARGV[4], 'gid', gid,
    'size', size, 'nlink', nlink, 'rdev', ARGV[6], 'bytes', '0',
    'atime', now, 'mtime', now, 'ctime', now, 'parent', ARGV[9])
elseif kind == 'symlink' then
  redis.call('HSET', KEYS[5], 'type', kind, 'mode', mode_text, 'uid', ARGV[4], 'gid', gid,
    'size', size, 'nlink', nlink, 'rdev', ARGV[6], 'bytes', '0',
    'atime', now, 'mtime', now, 'ctime', now, 'target', ARGV[7])
else
  redis.call('HSET', KEYS[5], 'type', kind, 'mode', mode_text, 'uid', ARGV[4], 'gid', gid,
    'size', size, 'nlink', nlink, 'rdev', ARGV[6], 'bytes', '0',
    'atime', now, 'mtime', now, 'ctime', now)
end
dir_write(KEYS[4], parent, now, nlink_delta)
count_add(KEYS[1], 'inodes', 1)
if KEYS[6] then
  redis.call('HINCRBY', KEYS[6], ARGV[10], 1)
end
if parent.current then
  return short_reply(now .. ' ' .. gid .. ' ' .. mode_text .. ' ', parent, now, '')
end
return {now, gid, mode_text, dir_reply(KEYS[4], parent, now)}, {now, gid, mode_text, {}}

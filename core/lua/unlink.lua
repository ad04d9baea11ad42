#!lua flags=allow-oom
-- Removes a directory entry that is not a directory. Runs on a full server
-- (allow-oom): removing is how space is freed; it adds only an ORPHANS
-- entry of a few bytes.
-- KEYS: 1 SB, 2 FREEZE, 3 DIR:parent, 4 INODE:parent, 5 INODE:child
--       (guess), 6 ORPHANS, 7 XATTR:child, 8 OPEN:child, 9.. BLK:child:0..
--       (the blocks the size the client last saw needs, none for an empty
--       file; up to 16 when it saw none: Store::push_free_keys)
-- ARGV: name, guessed child ino, session id, how many bytes the blocks in
--       KEYS cover, then, optional, the change's instant (nanoseconds:
--       the parent's new mtime and ctime) when a writeback mount showed
--       it before sending the unlink (store_dirs.cpp), used only when the
--       basis is the server's (else the server's clock); last the
--       client's basis of the parent ("<gen>:<ctime>:<atime>" it holds,
--       or '')
-- Returns {'RETRY', actual ino} when the guess is wrong, else {'OK', nlink
-- left, the parent's change (dir_reply: {now, gen, nlink}, and its fields
-- when the basis is not the server's), 'FREED' if the inode is gone}, as
-- one string when the basis is the server's (short_reply: 'OK <left>
-- <now> <gen> <nlink>[ FREED]'). At
-- nlink 0 a file that no mount holds open and whose blocks are all in KEYS
-- (its size, read here, is within the bytes they cover), or a symlink, is
-- freed at once (unheld, free_inode). Otherwise (a fifo, socket or device
-- too: a process may hold it open)
-- the inode is recorded in ORPHANS under this session: its data stays until
-- the mount that unlinked it has no use for it (purge.lua).
-- Fails before any write: ENOTDIR/ENOENT when the parent is no directory or
-- gone, EIO when the child's nlink or the parent's gen is not an integer,
-- or ORPHANS is no hash when the file stays, an orphan; EINVAL for a
-- malformed instant.
-- (The parent's fields are read first, only those the checks need: one
-- HSET stamps the change.) The outcome record (outcome.inc) holds the
-- reply, the array's without the parent's change: {}.
local basis = table.remove(ARGV)
check_frozen(KEYS[2])
local ino = redis.call('HGET', KEYS[3], ARGV[1])
if not ino then
  fail('ENOENT')
end
if ino ~= ARGV[2] then
  return {'RETRY', ino}
end
local child = redis.call('HMGET', KEYS[5], 'type', 'nlink', 'size')
if not child[1] then
  fail('ENOENT')
end
if child[1] == 'dir' then
  fail('EISDIR')
end
local nlink = child[2] or '0'  -- (a missing nlink counts as 0, as HINCRBY would)
if not string.match(nlink, '^-?%d+$') or #nlink > 15 then
  fail('EIO', 'inode ' .. ino .. ': malformed field nlink')
end
local left = tonumber(nlink) - 1
local parent = dir_read(KEYS[4], nil, basis)
-- Decided before the first write: whether the inode goes now.
local last, stored
if left <= 0 then
  last, stored = unheld(child[1], child[3], KEYS[8], 9, #KEYS, ARGV[4])
end
local now = change_instant(ARGV[5], parent)
if left <= 0 and not last then
  -- The first write: on a damaged ORPHANS (not a hash) it fails alone.
  redis.call('HSET', KEYS[6], ino, ARGV[3])
end
redis.call('HDEL', KEYS[3], ARGV[1])
dir_write(KEYS[4], parent, now)
if last then
  free_inode(KEYS[1], KEYS[5], KEYS[7], 9, last, stored)
  if parent.current then
    return short_reply('OK ' .. fmt(left) .. ' ', parent, now, ' FREED')
  end
  return {'OK', left, dir_reply(KEYS[4], parent, now), 'FREED'}, {'OK', left, {}, 'FREED'}
end
redis.call('HSET', KEYS[5], 'nlink', fmt(left), 'ctime', now)
if parent.current then
  return short_reply('OK ' .. fmt(left) .. ' ', parent, now, '')
end
return {'OK', left, dir_reply(KEYS[4], parent, now)}, {'OK', left, {}}

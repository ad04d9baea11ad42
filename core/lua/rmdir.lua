#!lua flags=allow-oom
-- Removes an empty directory (also on a full server: allow-oom, as unlink). Like an unlinked file, the directory inode
-- lives on as an orphan (nlink 0, empty) while this mount's kernel still
-- knows it - a process may have it as its working directory - and purge
-- frees it.
-- KEYS: SB, FREEZE, DIR:parent, INODE:parent, INODE:child (guess),
--       DIR:child, ORPHANS
-- ARGV: name, guessed child ino, session id, then, optional, the change's
--       instant (nanoseconds: the parent's new mtime and ctime) when a
--       writeback mount showed it before sending the rmdir (store_dirs.cpp),
--       used only when the basis is the server's (else the server's clock);
--       last the client's basis of the parent ("<gen>:<ctime>:<atime>" it
--       holds, or '')
-- Returns {'RETRY', actual ino} when the guess is wrong, else {'OK', the
-- parent's change (dir_reply: {now, gen, nlink}, and its fields when the
-- basis is not the server's)}, or 'OK <now> <gen> <nlink>' when it is
-- (short_reply); the outcome record (outcome.inc) holds the reply, the
-- array without the change, as unlink's.
-- Fails before any write: EIO when the parent's gen or nlink is not an
-- integer (dir_read, as unlink.lua and create.lua), or ORPHANS is no hash;
-- EINVAL for a malformed instant.
local basis = table.remove(ARGV)
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
local parent = dir_read(KEYS[4], -1, basis)
local now = change_instant(ARGV[4], parent)
-- The first write: on a damaged ORPHANS (not a hash) it fails alone.
redis.call('HSET', KEYS[7], ino, ARGV[3])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('DEL', KEYS[6])
redis.call('HSET', KEYS[5], 'nlink', '0', 'ctime', now)
dir_write(KEYS[4], parent, now, -1)
if parent.current then
  return short_reply('OK ', parent, now, '')
end
return {'OK', dir_reply(KEYS[4], parent, now)}, {'OK', {}}

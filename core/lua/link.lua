-- Adds a hard link.
-- KEYS: SB, FREEZE, DIR:newparent, INODE:newparent, INODE:ino
-- ARGV: name, ino
-- Returns the inode's fields.
-- Fails before any write: EIO when the inode's nlink, or the new parent's
-- gen, is not an integer, or the inode's fields after the link would not
-- decode (check_readable: the reply carries them); EEXIST when its first
-- write, HSETNX of the entry, finds the name taken.
check_frozen(KEYS[2])
local flat = redis.call('HGETALL', KEYS[5])
local fields = {}
for i = 1, #flat, 2 do
  fields[flat[i]] = flat[i + 1]
end
if not fields.type then
  fail('ENOENT')
end
if fields.type == 'dir' then
  fail('EPERM', 'hard links to directories are not allowed')
end
local nlink = fields.nlink or '0'
if not string.match(nlink, '^%d+$') or #nlink > 15 then
  fail('EIO', 'inode ' .. ARGV[2] .. ': malformed field nlink')
end
nlink = tonumber(nlink)
if nlink == 0 then
  fail('ENOENT', 'the file was removed')
end
if nlink >= 4294967295 then
  fail('EMLINK')
end
-- Every check before the first write (dir_read: the parent's type, nlink
-- and gen), which is the entry's HSETNX: EEXIST writes nothing.
local parent = dir_read(KEYS[4], nil, '')
local now = now_ns()
local change = {'nlink', fmt(nlink + 1), 'ctime', now}
check_readable(with_fields(flat, change), KEYS[5])
if redis.call('HSETNX', KEYS[3], ARGV[1], ARGV[2]) == 0 then
  fail('EEXIST')
end
redis.call('HSET', KEYS[5], unpack(change))
dir_write(KEYS[4], parent, now)
return flat

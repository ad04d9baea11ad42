-- Grows a file's size (a sparse extension: no block is written). Unlike
-- truncate.lua it is refused on a full server (ENOSPC), as every growth is.
-- KEYS: 1 SB, 2 FREEZE, 3 INODE
-- ARGV: 1 size to set, 2 expected current size, 3 '1' to set mtime/ctime
-- Returns {'RETRY', size} when the size is not the expected one, else {'OK'}.
check_frozen(KEYS[2])
if inode_type(KEYS[3]) ~= 'file' then
  fail('EINVAL', 'not a regular file')
end
local size = redis.call('HGET', KEYS[3], 'size')
if size ~= ARGV[2] then
  return {'RETRY', size}
end
if tonumber(ARGV[1]) < tonumber(size) then
  fail('EINVAL', 'extend only grows (truncate shrinks)')
end
set_size(KEYS[3], ARGV[1], ARGV[3])
return {'OK'}

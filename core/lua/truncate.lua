#!lua flags=allow-oom
-- Shrinks a file (or sets its times at its current size): deletes the
-- blocks past the new end and cuts the last one short, so no block ever
-- holds bytes past the size (a later extension must read zeros there). A
-- huge shrink is done in steps from the end, each one consistent: the size
-- only goes down. Growth is extend.lua's: this script runs on a full
-- server (allow-oom), where truncating is how space is freed, and must
-- never grow anything.
-- KEYS: 1 SB, 2 FREEZE, 3 INODE, 4 CHANGED (a boundary block cut short is
--       added: prelude.lua, track_blocks; a deleted block needs no record,
--       an incremental dump finds what its base has and it lacks), 5
--       boundary block (or any key), 6.. blocks to delete
-- ARGV: 1 size to set, 2 expected current size, 3 bytes to keep in the
--       boundary block (-1: leave it), 4 '1' if this is the last step (times)
-- Returns {'RETRY', size} when the size is not the expected one, else {'OK'}.
check_frozen(KEYS[2])
local t = inode_type(KEYS[3])
if t ~= 'file' then
  fail('EINVAL', 'not a regular file')
end
local size = redis.call('HGET', KEYS[3], 'size')
if size ~= ARGV[2] then
  return {'RETRY', size}
end
if tonumber(ARGV[1]) > tonumber(size) then
  fail('EINVAL', 'truncate only shrinks (extend grows)')
end
-- The boundary block is read before the first write: one that is not a
-- string (damage) cannot be cut short, and refuses the truncate whole.
local keep = tonumber(ARGV[3])
local boundary = 0
if keep >= 0 then
  boundary = redis.pcall('STRLEN', KEYS[5])
  if type(boundary) ~= 'number' then
    fail('EIO', KEYS[5] .. ' is not a string')
  end
end
local delta = 0
for i = 6, #KEYS do
  -- a block past the end goes whatever it is (a damaged one, not a
  -- string, held no bytes of the file: nothing to count)
  local l = redis.pcall('STRLEN', KEYS[i])
  if type(l) ~= 'number' then
    redis.call('DEL', KEYS[i])
  elseif l > 0 then
    redis.call('DEL', KEYS[i])
    delta = delta - l
  end
end
if keep >= 0 then
  local l = boundary
  if l > keep then
    if keep == 0 then
      redis.call('DEL', KEYS[5])
    else
      redis.call('SET', KEYS[5], redis.call('GETRANGE', KEYS[5], 0, keep - 1))
      track_blocks(KEYS[4], {KEYS[5]})
    end
    delta = delta - (l - keep)
  end
end
set_size(KEYS[3], ARGV[1], ARGV[4])
if delta ~= 0 then
  count_add(KEYS[3], 'bytes', delta)
  count_add(KEYS[1], 'bytes', delta)
end
return {'OK'}

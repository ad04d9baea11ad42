--! no-outcome: a toolkit script (fsck's repair), not a mount's change (outcome.inc)
--! resend: the cut is decided from the file's size at each run: a run after a lost reply finds nothing past it
-- Cuts a block of a file to the bytes the file's size leaves room for in
-- it, deleting it when none (a block past the end of the file), with the
-- change record's mark, as one step of fsck's repair (snap/fsck_repair.cpp),
-- without sending the block's bytes back and forth.
-- KEYS: 1 the block, 2 the change record (CHANGED), 3 the file's inode
-- ARGV: 1 the record's mark, 2 the room fsck found (bytes, 0 to the block
--       size), 3 the block's index, 4 the block size
-- The room is read again here from the inode's size: when it is not what
-- fsck found (a mount wrote, grew or cut the file since the check, under
-- --force; or the inode is gone or no file now) nothing is written and the
-- answer is 0: the block is left for the next check. Otherwise the block
-- is cut (or deleted) if it holds more, and the answer is 1: a second run
-- finds it cut and writes nothing, so it is sent again after a lost reply.
-- A KEYS[1] that is not a string refuses the step before any write (EIO,
-- naming it).
-- (Digits only, and exact in a Lua number: a file's size is at most 1 PiB.)
local function integer(v)
  return v and string.match(v, '^%d+$') and #v <= 16 and tonumber(v) <= 2 ^ 53 and tonumber(v)
end
local room, bs, index = integer(ARGV[2]), integer(ARGV[4]), ARGV[3]
if #KEYS ~= 3 or #ARGV ~= 4 or not room or not bs or bs < 1 or room > bs or not string.match(index or '', '^%d+$') then
  return redis.error_reply('EINVAL malformed fsck_trim arguments')
end
local t = redis.call('TYPE', KEYS[1]).ok
if t ~= 'string' and t ~= 'none' then
  return redis.error_reply('EIO ' .. KEYS[1] .. ' is a ' .. t .. ', not a block: nothing repaired')
end
local f = redis.call('HMGET', KEYS[3], 'type', 'size')
local size = integer(f[2])
if f[1] ~= 'file' or not size then
  return 0
end
-- (an index of more than 15 digits lies past the end of any file)
local left = #index <= 15 and math.max(0, math.min(bs, size - tonumber(index) * bs)) or 0
if left ~= room then
  return 0
end
-- (an empty block past the end holds no more than its room, 0, but goes)
if redis.call('STRLEN', KEYS[1]) <= room and (room > 0 or t == 'none') then
  return 1
end
redis.call('SET', KEYS[2], ARGV[1])
if room == 0 then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], redis.call('GETRANGE', KEYS[1], 0, room - 1))
end
return 1

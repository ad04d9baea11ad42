#!lua flags=allow-oom
-- Punches a hole in a file (fallocate(2), FALLOC_FL_PUNCH_HOLE with
-- KEEP_SIZE), one step of at most 1024 blocks: the range reads as zeros
-- after, a block it covers whole is removed, the range's first and last
-- blocks are cut short (when the range reaches past what they hold) or
-- get zeros over it; the size never changes. No block grows, so it runs
-- on a full server (allow-oom), where punching frees memory.
-- KEYS: 1 SB, 2 FREEZE, 3 INODE, 4 CHANGED (a block cut short or zeroed
--       is added: prelude.lua, track_blocks; a removed block needs no
--       record, an incremental dump finds what its base has and it lacks),
--       5.. the step's blocks, ascending (none: only the times change, for
--       a range of holes)
-- ARGV: 1 where the hole starts in the first block named (bytes from its
--       start; 0: all of it), 2 where it ends in the last one (exclusive;
--       '': at the block's end), 3 'kill': setuid goes, and setgid of a
--       group-executable file ('': keep), 4 'k' when the kernel keeps the
--       file's mtime and ctime (a writeback mount's: the change counts up
--       'gen' instead, as write.lua's; '': mtime and ctime are now)
-- Returns {'OK'}, and 'killed' second when the kill dropped a bit.
check_frozen(KEYS[2])
local n = #KEYS - 4
local from = string.match(ARGV[1] or '', '^%d+$') and tonumber(ARGV[1])
local to = ARGV[2] == '' or (string.match(ARGV[2] or '', '^%d+$') and tonumber(ARGV[2]))
if n < 0 or not from or not to or (ARGV[3] ~= '' and ARGV[3] ~= 'kill') or (ARGV[4] ~= '' and ARGV[4] ~= 'k') or
    (to ~= true and (to == 0 or (n == 1 and to <= from))) then
  fail('EINVAL', 'malformed punch arguments')
end
local f = redis.pcall('HMGET', KEYS[3], 'type', 'mode', 'gen')
if f.err then
  fail('EIO', KEYS[3] .. ' is not a hash')
end
if not f[1] then
  fail('ENOENT')
end
if f[1] ~= 'file' then
  fail('EINVAL', 'not a regular file')
end
local new_mode = nil
if ARGV[3] == 'kill' then
  local m, changed = killed_mode(f[2])
  if not m then
    fail('EIO', 'the inode has no valid mode')
  end
  new_mode = changed and m or nil
end
local reply = {'OK', new_mode and 'killed' or nil}
-- Every block is read before the first write: one that is not a string
-- (damage) cannot be cut nor zeroed, and refuses the punch whole, but for
-- one the range covers whole, which goes whatever it is (it held no
-- bytes of the file: nothing to count).
local lengths = {}
for i = 1, n do
  local l = redis.pcall('STRLEN', KEYS[4 + i])
  local whole = (i > 1 or from == 0) and (i < n or to == true)
  if type(l) ~= 'number' and not whole then
    fail('EIO', KEYS[4 + i] .. ' is not a string')
  end
  lengths[i] = l
end
local delta = 0
local changed = {}
for i = 1, n do
  local blk = KEYS[4 + i]
  local l = lengths[i]
  local a = i == 1 and from or 0
  local b = (i < n or to == true) and math.huge or to
  if type(l) ~= 'number' or (a == 0 and l <= b) then
    -- (a damaged block held no bytes of the file: nothing to count)
    redis.call('DEL', blk)
    delta = delta - (type(l) == 'number' and l or 0)
  elseif l <= b then
    -- the block ends inside the range: it is cut where the range starts
    if l > a then
      redis.call('SET', blk, redis.call('GETRANGE', blk, 0, a - 1))
      changed[#changed + 1] = blk
      delta = delta - (l - a)
    end
  else
    redis.call('SETRANGE', blk, a, string.rep('\0', b - a))
    changed[#changed + 1] = blk
  end
end
track_blocks(KEYS[4], changed)
local set = stamp_data({}, ARGV[4] == 'k', f[3], now_ns())
if new_mode then
  set[#set + 1] = 'mode'
  set[#set + 1] = new_mode
end
redis.call('HSET', KEYS[3], unpack(set))
if delta ~= 0 then
  count_add(KEYS[3], 'bytes', delta)
  count_add(KEYS[1], 'bytes', delta)
end
return reply

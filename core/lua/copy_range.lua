-- Copies bytes from one file to another on the server (copy_file_range(2)),
-- one step: a run of pieces, each within one block of the source and one
-- of the destination. A piece that fills its destination block from its
-- start with all its source block holds is a COPY of the block (its bytes
-- never pass through Lua; a source hole removes the destination block: a
-- hole copies as a hole), others are read with GETRANGE and written with
-- SETRANGE. Every piece is read before the first write (a copy within one
-- file reads what was there before it). The destination grows to the
-- copy's end at least.
-- KEYS: 1 SB, 2 FREEZE, 3 source INODE, 4 destination INODE, 5 CHANGED
--       (the destination blocks written are added: prelude.lua,
--       track_blocks; a removed one needs no record), then per piece: its
--       source block and its destination block
-- ARGV: 1 the source's expected size, 2 where the copy ends in the
--       destination (the offset past its last byte), 3 the block size, 4
--       'kill': setuid goes, and setgid of a group-executable destination
--       ('': keep), 5 'k' when the kernel keeps the destination's mtime and
--       ctime (a writeback mount's: the change counts up 'gen' instead, as
--       write.lua's; '': mtime and ctime are now), then per piece: offset
--       in the source block, offset in the destination block, length
-- Returns {'RETRY', size} when the source's size is not the expected one,
-- else {'OK'}, and 'killed' second when the kill dropped a bit.
check_frozen(KEYS[2])
local n = (#KEYS - 5) / 2
local bs = tonumber(ARGV[3])
if n < 1 or n ~= math.floor(n) or #ARGV ~= 5 + 3 * n or not bs or not string.match(ARGV[2], '^%d+$') or
    (ARGV[4] ~= '' and ARGV[4] ~= 'kill') or (ARGV[5] ~= '' and ARGV[5] ~= 'k') then
  fail('EINVAL', 'malformed copy arguments')
end
local pieces = {}
for i = 1, n do
  local a = 5 + (i - 1) * 3
  local so, dof, len = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  if not so or not dof or not len or so < 0 or dof < 0 or len < 1 or so + len > bs or dof + len > bs then
    fail('EINVAL', 'malformed copy arguments')
  end
  pieces[i] = {src = KEYS[4 + 2 * i], dst = KEYS[5 + 2 * i], so = so, dof = dof, len = len}
end
local src = redis.pcall('HMGET', KEYS[3], 'type', 'size')
local dst = redis.pcall('HMGET', KEYS[4], 'type', 'size', 'mode', 'gen')
if src.err or dst.err then
  fail('EIO', 'an inode is not a hash')
end
if not src[1] or not dst[1] then
  fail('ESTALE', 'the file was removed')
end
if src[1] ~= 'file' or dst[1] ~= 'file' then
  fail('EINVAL', 'not a regular file')
end
if src[2] ~= ARGV[1] then
  return {'RETRY', src[2] or ''}
end
local size = dst[2] and string.match(dst[2], '^%d+$') and #dst[2] <= 16 and tonumber(dst[2])
if not size then
  fail('EIO', 'the inode has no valid size')
end
local new_mode, killed = nil, nil
if ARGV[4] == 'kill' then
  local changed
  new_mode, changed = killed_mode(dst[3])
  if not new_mode then
    fail('EIO', 'the inode has no valid mode')
  end
  killed = changed and 'killed' or nil
end
-- Every block is read before the first write: one that is not a string
-- (damage) refuses the whole copy.
local lengths = {}
local function strlen(key)
  if not lengths[key] then
    local l = redis.pcall('STRLEN', key)
    if type(l) ~= 'number' then
      fail('EIO', key .. ' is not a string')
    end
    lengths[key] = l
  end
  return lengths[key]
end
local same = KEYS[3] == KEYS[4]
for _, p in ipairs(pieces) do
  local sl, dl = strlen(p.src), strlen(p.dst)
  -- (within one file a COPY could read a block another piece wrote first)
  p.whole = not same and p.so == 0 and p.dof == 0 and sl <= p.len and dl <= p.len
  if not p.whole and sl > p.so then
    p.data = redis.call('GETRANGE', p.src, p.so, p.so + p.len - 1)
  else
    p.data = ''
  end
end
local delta = 0
local written = {}
for _, p in ipairs(pieces) do
  local before = lengths[p.dst]
  local after = before
  if p.whole then
    if lengths[p.src] == 0 then
      redis.call('DEL', p.dst)
    else
      redis.call('COPY', p.src, p.dst, 'REPLACE')
      written[#written + 1] = p.dst
    end
    after = lengths[p.src]
  else
    -- the source's bytes, then zeros for what it lacks of the piece, only
    -- over destination bytes (past them the block reads zeros already)
    local data = p.data
    local over = math.min(p.len, before - p.dof)
    if #data < over then
      data = data .. string.rep('\0', over - #data)
    end
    if #data > 0 then
      after = redis.call('SETRANGE', p.dst, p.dof, data)
      written[#written + 1] = p.dst
    end
  end
  lengths[p.dst] = after
  delta = delta + after - before
end
track_blocks(KEYS[5], written)
local stop = tonumber(ARGV[2])
if stop > size then
  size = stop
end
local set = stamp_data({'size', fmt(size)}, ARGV[5] == 'k', dst[4], now_ns())
if killed then
  set[#set + 1] = 'mode'
  set[#set + 1] = new_mode
end
redis.call('HSET', KEYS[4], unpack(set))
if delta ~= 0 then
  count_add(KEYS[4], 'bytes', delta)
  count_add(KEYS[1], 'bytes', delta)
end
return {'OK', killed}

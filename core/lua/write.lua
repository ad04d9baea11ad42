-- Writes bytes into blocks: one write's consecutive blocks, or several
-- writes in turn (a gathered file's, anywhere in the file; a block may
-- come more than once, each piece over what the ones before it left).
-- KEYS: 1 SB, 2 FREEZE, 3 INODE, 4 CHANGED (the blocks written are added:
--       prelude.lua, track_blocks), then per piece: its block, and the TMP
--       key holding its bytes (or any key when the bytes are in ARGV)
-- ARGV: 1 where the data ends (the offset past its last byte: the size
--       grows to it at least), 2 expected size for O_APPEND ('' otherwise:
--       the write is where the pieces say), 3 '1' when the reply is to
--       carry the inode's fields, then per piece: offset in block, length,
--       and the bytes themselves or '' when they wait in the TMP key; then,
--       optional, 'kill': setuid goes, and setgid of a group-executable
--       file, with the data (FUSE_WRITE_KILL_SUIDGID; '' = keep); then,
--       optional (after 'kill' or ''), an attribute change applied after
--       the data, as setattr.lua would apply it next: its six arguments
--       (mode, uid, gid, atime, mtime, kill; prelude.lua, attr_fields).
--       A gathered file's flush sends its data and the attribute change
--       that followed (tar's chown, chmod and utimes) in one script.
-- Large pieces come as TMP keys (plain SETs in the same pipeline, with a
-- TTL): a piece that covers everything its block holds is RENAMEd into
-- place, so its bytes never pass through Lua. Every TMP key is gone when
-- the script ends, whatever the outcome, but for FROZEN and COW, after
-- which the client sends the script again.
-- Returns {'RETRY', size} when appending and the size moved, else {the
-- new size, the inode's fields after the write if asked, else false} (what
-- the writing mount's next getattr may answer with: AttrCache; a flush of
-- gathered writes does not ask: the fields cost the server more than the
-- rest of a small write), and 'killed' third when the kill dropped a bit
-- (the data's kill; not the attribute change's).
-- Every check, the attribute change's too, comes before the first write;
-- the data's and the change's times are one instant.
local n = (#KEYS - 4) / 2
local function drop_temps()
  for i = 1, n do
    if ARGV[4 + (i - 1) * 3 + 2] == '' then
      redis.call('DEL', KEYS[4 + 2 * i])
    end
  end
end
local function refuse(code, msg)
  drop_temps()
  fail(code, msg)
end
if n < 1 or n ~= math.floor(n) or (#ARGV ~= 3 + 3 * n and #ARGV ~= 4 + 3 * n and #ARGV ~= 10 + 3 * n) or
    not tonumber(ARGV[1]) then
  refuse('EINVAL', 'malformed write arguments')
end
for i = 1, n do
  if not tonumber(ARGV[4 + (i - 1) * 3]) or not tonumber(ARGV[5 + (i - 1) * 3]) then
    refuse('EINVAL', 'malformed write arguments')
  end
end
for i = 1, n do
  if ARGV[4 + (i - 1) * 3 + 2] == '' and redis.call('EXISTS', KEYS[4 + 2 * i]) == 0 then
    -- its SET was refused: the server is out of memory
    refuse('ENOSPC', 'the server refused the data (out of memory)')
  end
end
-- Frozen, or a snapshot's staging keys not named: the client sends this
-- script again (redis.cpp), so its TMP keys stay for it (they expire).
check_frozen(KEYS[2])
-- (pcall: a runtime error would skip refuse, leaving the TMP keys)
local f = redis.pcall('HMGET', KEYS[3], 'type', 'size', 'mode', 'bytes')
if f.err then
  refuse('EIO', KEYS[3] .. ' is not a hash')
end
if not f[1] then
  refuse('ESTALE', 'the file was removed')
end
if f[1] ~= 'file' then
  refuse('EINVAL', 'not a regular file')
end
-- The kill is decided here, before the first write: a damaged mode
-- refuses the whole write.
local new_mode, killed = nil, nil
if ARGV[4 + 3 * n] == 'kill' then
  local changed
  new_mode, changed = killed_mode(f[3])
  if not new_mode then
    refuse('EIO', 'the inode has no valid mode')
  end
  killed = changed and 'killed' or nil
end
local now = now_ns()
local attrs = nil
if #ARGV == 10 + 3 * n then
  attrs = attr_fields(5 + 3 * n, now, function()
    return new_mode or f[3]
  end)
  if not attrs then
    refuse('EIO', 'the inode has no valid mode')
  end
end
-- (up to 2^50, 16 digits: a file may be as large as 1 PiB, inode.hpp)
local size = f[2] and string.match(f[2], '^%d+$') and #f[2] <= 16 and tonumber(f[2]) <= 2 ^ 50 and tonumber(f[2])
if not size then
  refuse('EIO', 'the inode has no valid size')
end
if ARGV[2] ~= '' and tonumber(ARGV[2]) ~= size then
  drop_temps()
  return {'RETRY', fmt(size)}
end
-- Every block is read before the first write: one that is not a string
-- (damage) refuses the whole write, where its SETRANGE would have failed
-- after the blocks before it were written.
local lengths = {}
for i = 1, n do
  local blk = KEYS[3 + 2 * i]
  if not lengths[blk] then
    local l = redis.pcall('STRLEN', blk)
    if type(l) ~= 'number' then
      refuse('EIO', blk .. ' is not a string')
    end
    lengths[blk] = l
  end
end
local delta = 0
local written = {}
for i = 1, n do
  local a = 4 + (i - 1) * 3
  local blk = KEYS[3 + 2 * i]
  local tmp = KEYS[4 + 2 * i]
  written[i] = blk
  local off = tonumber(ARGV[a])
  local len = tonumber(ARGV[a + 1])
  local before = lengths[blk]
  local after
  if ARGV[a + 2] ~= '' then
    after = redis.call('SETRANGE', blk, off, ARGV[a + 2])
  elseif off == 0 and len >= before then
    redis.call('RENAME', tmp, blk)
    redis.call('PERSIST', blk)
    after = len
  else
    after = redis.call('SETRANGE', blk, off, redis.call('GET', tmp))
    redis.call('DEL', tmp)
  end
  lengths[blk] = after
  delta = delta + after - before
end
local stop = tonumber(ARGV[1])
if stop > size then
  size = stop
end
-- One HSET: the data's fields, then the attribute change's (a field
-- named twice takes the later value, as two HSETs in turn would).
local set = {'size', fmt(size), 'mtime', now, 'ctime', now}
if killed then
  set[7] = 'mode'
  set[8] = new_mode
end
if attrs then
  for i = 1, #attrs do
    set[#set + 1] = attrs[i]
  end
end
-- The inode's byte count rides in the same HSET when it is an integer
-- HINCRBY would take and a double holds exactly (missing counts as 0);
-- any other goes to HINCRBY as before (count_add), which counts it or,
-- damaged, leaves it for fsck.
local bytes_ok = false
if delta ~= 0 then
  local b = f[4] or '0'
  if #b <= 15 and (b == '0' or string.match(b, '^-?[1-9]%d*$')) then
    set[#set + 1] = 'bytes'
    set[#set + 1] = fmt(tonumber(b) + delta)
    bytes_ok = true
  end
end
redis.call('HSET', KEYS[3], unpack(set))
if delta ~= 0 then
  if not bytes_ok then
    count_add(KEYS[3], 'bytes', delta)
  end
  count_add(KEYS[1], 'bytes', delta)
end
track_blocks(KEYS[4], written)
if ARGV[3] == '1' then
  return {fmt(size), redis.call('HGETALL', KEYS[3]), killed}
end
return {fmt(size), false, killed}

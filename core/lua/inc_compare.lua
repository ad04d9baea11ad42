--! no-outcome: a toolkit script, not a filesystem change (outcome.inc)
--! resend: it reads two snapshots, which do not change, and writes only a scratch key it removes: a second run answers alike
-- An incremental dump's comparison (dump_incremental.cpp), on the server so
-- that unchanged blocks never cross the network: a batch of keys of the
-- new snapshot, each against the same key of the base.
-- KEYS: n keys of the new snapshot, then the same n keys of the base, then
--       a scratch key in their slot (under a temporary prefix; removed
--       before the script ends), then the set of the blocks that can
--       differ (tracked_blocks in dump_incremental.hpp; any key when none)
-- ARGV: 1 the inode whose data the previous batch found unchanged (''),
--       2 '1' when that set is given, then one per key: 'i<ino>' its
--       INODE, 'b<ino>:<index>' one of its blocks, 'h' any other hash
--       (DIR, XATTR, ORPHANS)
-- A file's blocks follow its INODE in the walk: when the INODE is the same
-- in both but for atime (every script that changes data changes ctime,
-- or, on a writeback mount, where the kernel keeps the times, 'gen'),
-- its blocks are not compared, only measured; nor are those the set does
-- not name, when it is given (SISMEMBER). Two blocks of one length are
-- compared by BITOP XOR into the scratch key and BITPOS of a 1 bit: native
-- loops, so a block is never copied into Lua unless it is sent.
-- Returns per key {found, changed[, value]}: found -1 absent, -2 not of its
-- type, else a block's length (0 a hash); changed 1 when the key is new or
-- differs (a block then brings its value); then the inode to carry into
-- the next batch ('').
local n = (#KEYS - 2) / 2
local scratch = KEYS[#KEYS - 1]
local tracked = ARGV[2] == '1' and KEYS[#KEYS] or nil
local carry = ARGV[1]
local out = {}
local function type_of(key)
  return redis.call('TYPE', key).ok
end
local function fields(key)
  local t = {}
  local count = 0
  if type_of(key) == 'hash' then
    local flat = redis.call('HGETALL', key)
    for j = 1, #flat, 2 do
      t[flat[j]] = flat[j + 1]
      count = count + 1
    end
  end
  return t, count
end
-- A block's length, -1 when it is absent, -2 when it is not a string.
local function strlen(key)
  local len = redis.pcall('STRLEN', key)
  if type(len) ~= 'number' then
    return -2
  end
  if len == 0 and redis.call('EXISTS', key) == 0 then
    return -1
  end
  return len
end
local used = false
for i = 1, n do
  local tag = ARGV[i + 2]
  local kind = string.sub(tag, 1, 1)
  local ino = string.sub(tag, 2)
  local new, old = KEYS[i], KEYS[n + i]
  if kind == 'b' then
    local block = ino
    ino = string.match(block, '^(%d+):')
    local len = strlen(new)
    if len < 0 or carry == ino or (tracked and redis.call('SISMEMBER', tracked, block) == 0) then
      out[i] = {len, 0}
    elseif len > 0 and strlen(old) == len and redis.call('BITOP', 'XOR', scratch, new, old) and
        redis.call('BITPOS', scratch, 1) == -1 then
      used = true
      out[i] = {len, 0}
    else
      used = true
      out[i] = {len, 1, redis.call('GET', new)}
    end
  else
    local t = type_of(new)
    if t == 'none' then
      out[i] = {-1, 0}
    elseif t ~= 'hash' then
      out[i] = {-2, 0}
    else
      local a, na = fields(new)
      local b, nb = fields(old)
      local same = na == nb
      local data_same = nb > 0
      for f, v in pairs(a) do
        if b[f] ~= v then
          same = false
          if f ~= 'atime' then
            data_same = false
          end
        end
      end
      if kind == 'i' then
        data_same = data_same and na == nb
        carry = data_same and ino or ''
      end
      out[i] = {0, same and 0 or 1}
    end
  end
end
if used then
  redis.call('DEL', scratch)
end
out[n + 1] = carry
return out

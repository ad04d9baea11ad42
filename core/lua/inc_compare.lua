#!lua flags=no-writes
-- An incremental dump's comparison (dump_incremental.cpp), on the server so
-- that unchanged blocks never cross the network: a batch of keys of the
-- new snapshot, each against the same key of the base.
-- KEYS: n keys of the new snapshot, then the same n keys of the base
-- ARGV: 1 the inode whose data the previous batch found unchanged (''),
--       then one per key: 'i<ino>' its INODE, 'b<ino>' one of its blocks,
--       'h' any other hash (DIR, XATTR, ORPHANS)
-- A file's blocks follow its INODE in the walk: when the INODE is the same
-- in both but for atime (every script that changes data changes ctime),
-- its blocks are not compared, only measured.
-- Returns per key {found, changed[, value]}: found -1 absent, -2 not of its
-- type, else a block's length (0 a hash); changed 1 when the key is new or
-- differs (a block then brings its value); then the inode to carry into
-- the next batch ('').
local n = #KEYS / 2
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
for i = 1, n do
  local tag = ARGV[i + 1]
  local kind = string.sub(tag, 1, 1)
  local ino = string.sub(tag, 2)
  local new, old = KEYS[i], KEYS[n + i]
  local t = type_of(new)
  if t == 'none' then
    out[i] = {-1, 0}
  elseif kind == 'b' then
    if t ~= 'string' then
      out[i] = {-2, 0}
    elseif carry == ino then
      out[i] = {redis.call('STRLEN', new), 0}
    else
      local v = redis.call('GET', new)
      local w = type_of(old) == 'string' and redis.call('GET', old) or false
      if v == w then
        out[i] = {#v, 0}
      else
        out[i] = {#v, 1, v}
      end
    end
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
out[n + 1] = carry
return out

#!lua flags=no-writes
-- An incremental dump's deletions (dump_incremental.cpp): which keys of the
-- base the new snapshot lacks.
-- KEYS: n keys of the base, then the same n keys of the new snapshot
-- ARGV: one per key, 'b' a block, 'h' a hash
-- Returns per key {found, gone}: found -1 absent, -2 not of its type, else
-- a block's length (0 a hash); gone 1 when the new snapshot lacks it.
local n = #KEYS / 2
local out = {}
for i = 1, n do
  local t = redis.call('TYPE', KEYS[i]).ok
  local want = ARGV[i] == 'b' and 'string' or 'hash'
  if t == 'none' then
    out[i] = {-1, 0}
  elseif t ~= want then
    out[i] = {-2, 0}
  else
    local found = want == 'string' and redis.call('STRLEN', KEYS[i]) or 0
    out[i] = {found, redis.call('EXISTS', KEYS[n + i]) == 1 and 0 or 1}
  end
end
return out

--! no-outcome: a toolkit script, not a filesystem change (outcome.inc)
-- Copies a batch of keys to another prefix (snapshot.cpp: copy and dump,
-- with the source's freeze held), each copy getting the staging TTL in the
-- same step, so a temporary copy never exists without one. One script per
-- batch instead of a pipeline of COPY/PEXPIRE pairs: the server parses one
-- command, not two thousand. The keys are those a filesystem's structure
-- names (key_walk.hpp), most XATTR keys among them absent, or those SCAN
-- found; a block's length goes back for the walk's cross-check.
-- KEYS: n sources, then their n destinations
-- ARGV: 1 time to live in ms ('' for none), 2 one character per key: 'b'
--       for a block
-- Returns one integer per key: -1 not copied (no such source, or the
-- destination exists: SCAN returned the source twice), -2 a block that is
-- not a string (copied all the same), else the block's length (0 for any
-- other key).
local n = #KEYS / 2
local out = {}
for i = 1, n do
  if redis.call('COPY', KEYS[i], KEYS[n + i]) == 0 then
    out[i] = -1
  else
    if ARGV[1] ~= '' then
      redis.call('PEXPIRE', KEYS[n + i], ARGV[1])
    end
    out[i] = 0
    if string.sub(ARGV[2], i, i) == 'b' then
      local len = redis.pcall('STRLEN', KEYS[n + i])
      if type(len) == 'number' then
        out[i] = len
      else
        out[i] = -2
      end
    end
  end
end
return out

--! no-outcome: a toolkit script, not a filesystem change (outcome.inc)
--! resend: a key moved already has no source left: a second run moves nothing twice, and answers 2 for it
-- Moves a batch of keys of one prefix to another, never overwriting one
-- (install.cpp: a staged filesystem into place, or a replaced one aside).
-- One script per batch instead of a MULTI of RENAMENX/PERSIST pairs: the
-- server parses one command, not two thousand.
-- With ARGV[2] '1' a destination that exists is replaced (an incremental
-- restore's changed keys, install.cpp apply_staged_delta).
-- KEYS: n sources, then their n destinations
-- ARGV: 1 '1' to drop the staging TTL on arrival, 2 '1' to replace
-- Returns one integer per key: 1 moved, 0 the destination exists (nothing
-- done), -1 the source is gone, 2 the source is gone and the destination
-- exists (moved already: by an earlier batch, when SCAN returned the key
-- twice, or by this batch's first run, when its reply was lost and it was
-- sent again).
local n = #KEYS / 2
local out = {}
for i = 1, n do
  if redis.call('EXISTS', KEYS[i]) == 0 then
    out[i] = redis.call('EXISTS', KEYS[n + i]) == 1 and 2 or -1
  elseif ARGV[2] == '1' then
    redis.call('RENAME', KEYS[i], KEYS[n + i])
    if ARGV[1] == '1' then
      redis.call('PERSIST', KEYS[n + i])
    end
    out[i] = 1
  elseif redis.call('RENAMENX', KEYS[i], KEYS[n + i]) == 1 then
    if ARGV[1] == '1' then
      redis.call('PERSIST', KEYS[n + i])
    end
    out[i] = 1
  else
    out[i] = 0
  end
end
return out

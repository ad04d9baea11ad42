--! no-outcome: a toolkit script, not a filesystem change (outcome.inc)
-- Copies a batch of keys to another prefix (snapshot.cpp: copy and dump,
-- with the source's freeze held), each copy getting the staging TTL in the
-- same step, so a temporary copy never exists without one. One script per
-- batch instead of a pipeline of COPY/PEXPIRE pairs: the server parses one
-- command, not two thousand.
-- KEYS: n sources, then their n destinations
-- ARGV: 1 time to live in ms ('' for none)
-- Returns one integer per key: 1 copied, 0 not (the destination exists:
-- SCAN returned the source twice, or the source is gone).
local n = #KEYS / 2
local out = {}
for i = 1, n do
  out[i] = redis.call('COPY', KEYS[i], KEYS[n + i])
  if out[i] == 1 and ARGV[1] ~= '' then
    redis.call('PEXPIRE', KEYS[n + i], ARGV[1])
  end
end
return out

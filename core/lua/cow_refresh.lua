--! no-outcome: a toolkit script, not a filesystem change (outcome.inc)
--! resend: a second run extends the lease again and answers alike
-- Keeps a copy-on-write snapshot alive (it lives `alive` ms more) and
-- records its progress, but only while it is still ours and alive: a
-- snapshot whose deadline passed was ignored by the change scripts since,
-- so it is no longer one instant.
-- KEYS: COW     ARGV: token, alive (ms), keys done, keys expected
--               [, kept: why a dump keeps the snapshot another tool waits
--               for (it cannot hand it over): the waiting tool says so]
-- Returns 1, or 2 when another tool waits for the snapshot to end (its
-- 'wanted': cow_begin.lua, freeze_acquire.lua), or 0 when it was lost.
local now = cow_held(KEYS[1], ARGV[1])
if not now then
  return 0
end
redis.call('HSET', KEYS[1], 'deadline', fmt(now + tonumber(ARGV[2])), 'done', ARGV[3], 'total', ARGV[4])
if ARGV[5] then
  redis.call('HSET', KEYS[1], 'kept', ARGV[5])
end
return redis.call('HGET', KEYS[1], 'wanted') and 2 or 1

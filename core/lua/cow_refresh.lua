--! no-outcome: a toolkit script, not a filesystem change (outcome.inc)
-- Keeps a copy-on-write snapshot alive (it lives `alive` ms more) and
-- records its progress, but only while it is still ours and alive: a
-- snapshot whose deadline passed was ignored by the change scripts since,
-- so it is no longer one instant.
-- KEYS: COW     ARGV: token, alive (ms), keys done, keys expected
-- Returns 1, or 0 when the snapshot was lost.
local c = redis.pcall('HMGET', KEYS[1], 'token', 'deadline')
if c.err then
  c = {}  -- not a hash: not ours
end
local now = now_ms()
if c[1] ~= ARGV[1] or (tonumber(c[2] or '') or 0) <= now then
  return 0
end
redis.call('HSET', KEYS[1], 'deadline', fmt(now + tonumber(ARGV[2])), 'done', ARGV[3], 'total', ARGV[4])
return 1

--! no-outcome: a toolkit script, not a filesystem change (outcome.inc)
-- Ends a copy-on-write snapshot: the change scripts stop copying. (The
-- copier removes <staging>:TOUCHED next, or uses it to remove the copies.)
-- KEYS: COW     ARGV: token
-- Returns 1 if it was ours and alive until now (so the staging prefix holds
-- the instant's keys), else 0 (nothing is removed).
local c = redis.pcall('HMGET', KEYS[1], 'token', 'deadline')
if c.err then
  c = {}  -- not a hash: not ours
end
local now = now_ms()
if c[1] ~= ARGV[1] or (tonumber(c[2] or '') or 0) <= now then
  return 0
end
redis.call('DEL', KEYS[1])
return 1

--! no-outcome: a toolkit script, not a filesystem change (outcome.inc)
-- Ends a copy-on-write snapshot: the change scripts stop copying. (The
-- copier removes <staging>:TOUCHED next, or uses it to remove the copies.)
-- KEYS: COW     ARGV: token
-- Returns 1 if it was ours and alive until now (so the staging prefix holds
-- the instant's keys), else 0 (nothing is removed).
if not cow_held(KEYS[1], ARGV[1]) then
  return 0
end
redis.call('DEL', KEYS[1])
return 1

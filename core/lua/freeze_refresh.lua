--! no-outcome: a toolkit script, not a filesystem change (outcome.inc)
--! resend: a second run extends the freeze again and answers alike
-- Extends a snapshot's freeze, but only while it is still ours.
-- KEYS: FREEZE     ARGV: token, ttl (ms)
-- Returns 1 if the freeze was ours and now lives ttl ms more, 0 if it
-- expired (or another snapshot holds it): the copy is then not
-- point-in-time and must be thrown away.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0

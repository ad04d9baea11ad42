--! no-outcome: a toolkit script, not a filesystem change (outcome.inc)
-- Ends a snapshot's freeze, but only if it is still ours.
-- KEYS: FREEZE     ARGV: token
-- Returns 1 if the freeze was ours until now (so nothing changed while it
-- was held), 0 if it had expired or belongs to another snapshot.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0

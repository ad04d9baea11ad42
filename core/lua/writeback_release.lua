#!lua flags=allow-oom
--! no-outcome: removes only its own hold, harmless to run twice (outcome.inc)
--! resend: a second run finds the hold gone or another mount's and removes nothing (its answer, 0, is not read)
-- Ends a writeback mount's hold on the filesystem (keys.hpp, WRITEBACK) at
-- its unmount: removes WRITEBACK if it still names this session (after a
-- lapse another mount may hold it now). Runs on a full server (allow-oom):
-- it only removes.
-- KEYS: 1 WRITEBACK
-- ARGV: 1 session id
-- Returns 1 when it removed the hold, else 0 (the caller, Store::end_session,
-- does not read it: a second run after a lost reply answers 0).
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0

#!lua flags=allow-oom
--! no-outcome: the mounts' register, harmless to run twice (outcome.inc)
--! resend: a second run finds the same sessions gone, drops nothing more and answers alike
-- Drops from the mounts' register (MOUNTS) the fields of mounts whose
-- session key is gone (crashed mounts), checked and dropped in one step:
-- a mount whose heartbeat comes back meanwhile keeps its field. Runs on a
-- full server (allow-oom): it only removes.
-- KEYS: 1 MOUNTS, 2.. MOUNT:<id> of each candidate
-- ARGV: the candidates' ids, in the same order
-- Returns how many candidates' sessions are gone (their fields dropped,
-- now or by a run before: a second run after a lost reply answers alike).
local gone = 0
for i = 1, #ARGV do
  if redis.call('EXISTS', KEYS[1 + i]) == 0 then
    redis.call('HDEL', KEYS[1], ARGV[i])
    gone = gone + 1
  end
end
return gone

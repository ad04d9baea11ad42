--! no-outcome: a toolkit script, not a filesystem change (outcome.inc)
--! resend: a second run finds the freeze its first run set (the same token) and answers 1 again
-- Freezes the filesystem (snapshot.hpp, Freeze), unless it is frozen
-- already or a copy-on-write snapshot of it is alive (its copies would
-- miss the changes made under the freeze). A freeze no freezer set (one
-- that never lapses: prelude.lua, freeze_alive) is replaced, and so is a
-- key of another type (damage: no freezer sets one).
-- KEYS: FREEZE, COW     ARGV: token, ttl (ms)
-- Returns 1 when frozen (by this run, or by an earlier run with the same
-- token, whose reply was lost), else 0 (wait and try again; a live
-- snapshot is marked 'wanted', so that a dump's hands it over).
local held = redis.pcall('GET', KEYS[1])
if held == ARGV[1] then
  return 1
end
if type(held) ~= 'table' and freeze_alive(KEYS[1]) then
  return 0
end
local c = redis.pcall('HGET', KEYS[2], 'deadline')  -- (not a hash: no snapshot is alive)
if type(c) == 'string' and cow_deadline_alive(c, now_ms()) then
  redis.pcall('HSET', KEYS[2], 'wanted', '1')  -- (a dump hands its snapshot over: CowKeeper)
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1

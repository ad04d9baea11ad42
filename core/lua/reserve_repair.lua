--! no-outcome: a toolkit script, not a filesystem change (outcome.inc)
--! resend: a second run finds its own token and answers taken
-- Takes <prefix>:RESERVED for fsck --repair (fsck.hpp) as a tool's SET NX
-- PX takes it, and also over one that no holder set, which would refuse
-- the very repair that removes it (fsck reports it, as repaired): one
-- that is no string, never lapses, or lives longer than any holder sets.
-- KEYS: RESERVED
-- ARGV: token, time to live (ms), the longest a holder sets (ms)
-- Returns {1, ''} when taken, {1, what was there: 'type <t>' or 'pttl
-- <ms>'} when taken over, {0, ''} while a holder has it.
local t = redis.call('TYPE', KEYS[1]).ok
local replaced = ''
if t == 'string' then
  local ttl = redis.call('PTTL', KEYS[1])
  if redis.call('GET', KEYS[1]) == ARGV[1] then
    replaced = ''  -- (ours: this script's reply was lost and it runs again)
  elseif ttl >= 0 and ttl <= tonumber(ARGV[3]) then
    return {0, ''}
  else
    replaced = 'pttl ' .. ttl
  end
elseif t ~= 'none' then
  replaced = 'type ' .. t
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {1, replaced}

#!lua flags=allow-oom
-- Puts back the open counts of this mount that a change of server lost (a
-- master that died before its replica had an open it had acknowledged, a
-- server restarted from an older AOF): for each file the mount holds open
-- and that is still there, its count becomes at least what the mount
-- holds. Never lowers one: an open or a release in flight may be counted
-- there already (one more than the mount holds is only held until the
-- mount ends: its unmount drops its counts after a change of server). Not
-- held back by a freeze nor by a full server (open.lua's reasons). A
-- damaged OPEN key (not a hash, or a count that is not a number) is left
-- as it is, for fsck: the other files are counted all the same.
-- KEYS: INODE and OPEN of each file, in pairs
-- ARGV: session, then the count of each file, in the order of KEYS
-- Returns how many counts it raised.
local raised = 0
for i = 1, #KEYS, 2 do
  local held = tonumber(ARGV[(i + 1) / 2 + 1])
  if redis.call('EXISTS', KEYS[i]) == 1 then
    local counted = redis.pcall('HGET', KEYS[i + 1], ARGV[1])
    if counted == false then
      counted = 0
    end
    counted = tonumber(counted)
    if counted and counted < held then
      redis.call('HSET', KEYS[i + 1], ARGV[1], held)
      raised = raised + 1
    end
  end
end
return raised

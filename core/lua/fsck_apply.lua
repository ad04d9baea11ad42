--! no-outcome: a toolkit script (fsck's repair), not a mount's change (outcome.inc)
-- One of fsck's repairs that changes several keys (snap/fsck_repair.cpp:
-- making /lost+found, reattaching a lost inode into it) as one step that
-- writes all of it or nothing. A MULTI runs the commands after one that
-- fails (a damaged field or key): half a repair stayed behind. Here every
-- command is checked against the state before the first write.
-- KEYS: the key of each command, in order
-- ARGV: per command: its name (HSET, HDEL or HINCRBY; or HEQUAL field
--       value, HABSENT field: what the check found, which must still hold
--       and is not written), how many arguments follow its key, then those
--       arguments
-- A condition that no longer holds (a mount changed it since the check,
-- under --force) refuses the whole step (EAGAIN, naming it).
-- A key that is neither a hash nor absent, or a count to add to (HINCRBY)
-- whose value is not a count, refuses the whole step (EIO, naming it),
-- but for a directory's change count ('gen'): one that is not a count is
-- left as it is (the report lists the inode as damaged on its own, and
-- fsck_field.lua leaves it alike), and one counted
-- (by 1) is counted as the mounts' scripts count it (prelude.lua,
-- next_gen: the last one wraps to 1).
-- Returns how many commands ran (not counting the conditions).
local cmds = {}
local a = 1
for i = 1, #KEYS do
  local name, n = ARGV[a], tonumber(ARGV[a + 1])
  local shaped = n and n >= 1 and n == math.floor(n) and a + 1 + n <= #ARGV and
      ((name == 'HSET' and n % 2 == 0) or name == 'HDEL' or (name == 'HEQUAL' and n == 2) or
       (name == 'HABSENT' and n == 1) or
       (name == 'HINCRBY' and n == 2 and string.match(ARGV[a + 3], '^-?%d+$') and #ARGV[a + 3] <= 18))
  if not shaped then
    return redis.error_reply('EINVAL malformed fsck_apply arguments')
  end
  cmds[i] = {name, KEYS[i], {unpack(ARGV, a + 2, a + 1 + n)}}
  a = a + 2 + n
end
if a ~= #ARGV + 1 then
  return redis.error_reply('EINVAL malformed fsck_apply arguments')
end
local skip = {}
for i, c in ipairs(cmds) do
  local t = redis.call('TYPE', c[2]).ok
  if t ~= 'hash' and t ~= 'none' then
    return redis.error_reply('EIO ' .. c[2] .. ' is a ' .. t .. ', not a hash: nothing repaired')
  end
  if (c[1] == 'HEQUAL' and redis.call('HGET', c[2], c[3][1]) ~= c[3][2]) or
      (c[1] == 'HABSENT' and redis.call('HEXISTS', c[2], c[3][1]) == 1) then
    return redis.error_reply('EAGAIN ' .. c[2] .. ' ' .. c[3][1] .. ' changed since the check: nothing repaired')
  end
  if c[1] == 'HINCRBY' and c[3][1] == 'gen' then
    if c[3][2] ~= '1' then
      return redis.error_reply('EINVAL malformed fsck_apply arguments')
    end
    local v = redis.call('HGET', c[2], 'gen')
    skip[i] = v and not gen_valid(v)
  elseif c[1] == 'HINCRBY' then
    local v = redis.call('HGET', c[2], c[3][1])
    if v and not (string.match(v, '^-?%d+$') and #v <= 18) then
      return redis.error_reply('EIO ' .. c[2] .. ' ' .. c[3][1] .. ' is not a count: nothing repaired')
    end
  end
end
local ran = 0
for i, c in ipairs(cmds) do
  if skip[i] or c[1] == 'HEQUAL' or c[1] == 'HABSENT' then
    -- (a condition, or a change count left as it is)
  elseif c[1] == 'HINCRBY' and c[3][1] == 'gen' then
    redis.call('HSET', c[2], 'gen', next_gen(redis.call('HGET', c[2], 'gen') or '0'))
    ran = ran + 1
  else
    redis.call(c[1], c[2], unpack(c[3]))
    ran = ran + 1
  end
end
return ran

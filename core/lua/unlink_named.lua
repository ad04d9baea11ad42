--! no-outcome: a toolkit script, not a filesystem change (outcome.inc)
-- Deletes a batch of keys a filesystem's structure names (key_walk.hpp;
-- snapshot.cpp: delete, with the freeze held), most XATTR and OPEN keys
-- among them absent; a block's length goes back for the walk's
-- cross-check.
-- KEYS: the keys
-- ARGV: 1 one character per key: 'b' for a block
-- Returns one integer per key: -1 absent, -2 a block that is not a string
-- (deleted all the same), else the block's length (0 for any other key).
local out = {}
for i = 1, #KEYS do
  local len = 0
  if string.sub(ARGV[1], i, i) == 'b' then
    len = redis.pcall('STRLEN', KEYS[i])
    if type(len) ~= 'number' then
      len = -2
    end
  end
  if redis.call('UNLINK', KEYS[i]) == 0 then
    out[i] = -1
  else
    out[i] = len
  end
end
return out

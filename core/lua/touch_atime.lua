-- Records an access, relatime as Linux mounts by default: when the last
-- one is not newer than the last change (mtime or ctime), or is more than
-- ARGV[1] ns old. The script decides, so a read can send it in its own
-- round trip without knowing the inode's times (Store::read_pieces; a
-- read of a file whose access this mount found recorded leaves it out,
-- and sends it afterwards only if its own reply shows one due).
-- Skipped, not refused, while the filesystem is frozen; copied first to a
-- snapshot being taken copy-on-write (prelude.lua).
-- KEYS: FREEZE, INODE
-- ARGV: the relatime window, ns
-- Returns 0 when the inode is gone, else {1 when it recorded an access
-- else 0, the inode's fields} (the kernel asks for them after a read:
-- AttrCache).
local t = redis.call('HMGET', KEYS[2], 'atime', 'mtime', 'ctime')
if not t[1] or not t[2] or not t[3] then
  return 0  -- gone (or damaged: fsck's to report)
end
if freeze_alive(KEYS[1]) then
  return {0, redis.call('HGETALL', KEYS[2])}
end
-- a <= b for times as decimal strings (exact: a Lua number is not)
local function not_after(a, b)
  local na, nb = a:sub(1, 1) == '-', b:sub(1, 1) == '-'
  if na ~= nb then
    return na
  end
  local x, y = a, b
  if na then
    x, y = b:sub(2), a:sub(2)
  end
  if #x ~= #y then
    return #x < #y
  end
  return x <= y
end
local now = now_ns()
if not (not_after(t[1], t[2]) or not_after(t[1], t[3]) or tonumber(now) - tonumber(t[1]) > tonumber(ARGV[1])) then
  return {0, redis.call('HGETALL', KEYS[2])}
end
local staging = cow_pending()
if staging then
  fail('COW', staging)
end
redis.call('HSET', KEYS[2], 'atime', now)
return {1, redis.call('HGETALL', KEYS[2])}

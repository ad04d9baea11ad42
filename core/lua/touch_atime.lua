-- Records an access (relatime: the client decides when one is due).
-- Skipped, not refused, while the filesystem is frozen; copied first to a
-- snapshot being taken copy-on-write (prelude.lua).
-- KEYS: FREEZE, INODE
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 0 then
  return 0
end
local staging = cow_pending()
if staging then
  fail('COW', staging)
end
redis.call('HSET', KEYS[2], 'atime', now_ns())
return 1

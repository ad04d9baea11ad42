-- Records an access (relatime: the client decides when one is due).
-- Skipped, not refused, while a snapshot is taken.
-- KEYS: FREEZE, INODE
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 0 then
  return 0
end
redis.call('HSET', KEYS[2], 'atime', now_ns())
return 1

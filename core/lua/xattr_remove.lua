#!lua flags=allow-oom
-- Removes an extended attribute (also on a full server: allow-oom, it frees).
-- KEYS: SB, FREEZE, INODE, XATTR
-- ARGV: name
check_frozen(KEYS[2])
inode_type(KEYS[3])
if redis.call('HDEL', KEYS[4], ARGV[1]) == 0 then
  fail('ENODATA')
end
redis.call('HSET', KEYS[3], 'ctime', now_ns())
return 1

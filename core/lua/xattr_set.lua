-- KEYS: SB, FREEZE, INODE, XATTR
-- ARGV: name, value, flags (0, 1 XATTR_CREATE, 2 XATTR_REPLACE)
check_frozen(KEYS[2])
inode_type(KEYS[3])
local exists = redis.call('HEXISTS', KEYS[4], ARGV[1]) == 1
if ARGV[3] == '1' and exists then
  fail('EEXIST')
end
if ARGV[3] == '2' and not exists then
  fail('ENODATA')
end
redis.call('HSET', KEYS[4], ARGV[1], ARGV[2])
if string.sub(ARGV[1], 1, 9) == 'security.' then
  -- mounts answer the kernel's security.* questions (capability before
  -- every write, selinux for every ls -l entry) from this flag
  redis.call('HSET', KEYS[1], 'security_xattrs', '1')
end
redis.call('HSET', KEYS[3], 'ctime', now_ns())
return 1

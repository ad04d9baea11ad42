#!lua flags=allow-oom
-- One open of a file by this mount begins, if the file is still there: a
-- file that another mount removed and freed after this host looked it up
-- cannot be opened (the daemon answers ESTALE and the VFS looks again).
-- Not held back by a snapshot's freeze: OPEN keys are not part of the
-- filesystem. Nor by a full server (allow-oom): the count is a few bytes,
-- and refusing it would make every file of a full server unreadable and
-- untruncatable.
-- With ARGV[2] '1' the reply is {count, the inode's fields or false}: a
-- writeback mount's open for writing gathers the file's writes
-- (store_gather.cpp) from what the server has at this instant; any other
-- mount's open compares their size with what its kernel holds
-- (close-to-open: fs/kernel_sizes.hpp).
-- KEYS: INODE, OPEN
-- ARGV: session[, '1']
if redis.call('EXISTS', KEYS[1]) == 0 then
  fail('ESTALE', 'the file was removed')
end
local count = redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
if ARGV[2] == '1' then
  -- (pcall: a damaged inode, not a hash, is still opened, as without the
  -- fields; its writes then answer for it)
  local fields = redis.pcall('HGETALL', KEYS[1])
  return {count, not fields.err and fields}
end
return count

#!lua flags=allow-oom
-- One open of a file by this mount begins, if the file is still there: a
-- file that another mount removed and freed after this host looked it up
-- cannot be opened (the daemon answers ESTALE and the VFS looks again).
-- Not held back by a snapshot's freeze: OPEN keys are not part of the
-- filesystem. Nor by a full server (allow-oom): the count is a few bytes,
-- and refusing it would make every file of a full server unreadable and
-- untruncatable.
-- KEYS: INODE, OPEN
-- ARGV: session
if redis.call('EXISTS', KEYS[1]) == 0 then
  fail('ESTALE', 'the file was removed')
end
return redis.call('HINCRBY', KEYS[2], ARGV[1], 1)

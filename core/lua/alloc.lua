-- Reserves a range of inode numbers for one mount.
-- KEYS: SB, FREEZE     ARGV: count
-- Returns the last number of the range.
check_frozen(KEYS[2])
if redis.call('EXISTS', KEYS[1]) == 0 then
  fail('ESTALE', 'the filesystem was deleted')
end
return redis.call('HINCRBY', KEYS[1], 'next_inode', ARGV[1]) - 1

-- Writes bytes at an offset, into consecutive blocks.
-- KEYS: 1 SB, 2 FREEZE, 3 INODE, 4.. the blocks written, in order
-- ARGV: 1 offset, 2 expected size for O_APPEND ('' otherwise: the offset
--       is where to write), then per block: offset in block, bytes
-- Returns {'RETRY', size} when appending and the size moved, else the
-- new size.
check_frozen(KEYS[2])
local t = redis.call('HGET', KEYS[3], 'type')
if not t then
  fail('ESTALE', 'the file was removed')
end
if t ~= 'file' then
  fail('EINVAL', 'not a regular file')
end
local size = tonumber(redis.call('HGET', KEYS[3], 'size'))
if ARGV[2] ~= '' and tonumber(ARGV[2]) ~= size then
  return {'RETRY', fmt(size)}
end
local delta = 0
local total = 0
for i = 4, #KEYS do
  local a = 3 + (i - 4) * 2
  local before = redis.call('STRLEN', KEYS[i])
  local after = redis.call('SETRANGE', KEYS[i], tonumber(ARGV[a]), ARGV[a + 1])
  delta = delta + after - before
  total = total + string.len(ARGV[a + 1])
end
local stop = tonumber(ARGV[1]) + total
if stop > size then
  size = stop
end
local now = now_ns()
redis.call('HSET', KEYS[3], 'size', fmt(size), 'mtime', now, 'ctime', now)
if delta ~= 0 then
  redis.call('HINCRBY', KEYS[3], 'bytes', delta)
  redis.call('HINCRBY', KEYS[1], 'bytes', delta)
end
return fmt(size)

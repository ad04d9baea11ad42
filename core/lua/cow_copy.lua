--! no-outcome: a toolkit script, not a filesystem change (outcome.inc)
--! resend: a run after a lost reply finds the copies made, answers alike
--! and lists nothing twice (ARGV[5])
-- The copier's side of a copy-on-write snapshot: makes sure each named key
-- is in the staging prefix as it was at the instant, and says what is
-- there. A key is copied unless a copy exists already or a change script
-- met it first (TOUCHED: it copied the key, or the key did not exist at
-- the instant).
-- KEYS: 1 COW, 2 staging TOUCHED, 3 the staging index (install.hpp), then n
--       sources, then their n names in the staging prefix
-- ARGV: 1 token, 2 TTL of the copies (ms), 3 one letter per key: 'b' for a
--       block, '-' otherwise, 4 '1' to append the relative names of the keys
--       the snapshot has to the index (in the same step: whatever the
--       copier does next, what it copied is listed, for the install or for
--       the cleanup after a crash), 5 the batch's id: the COW hash keeps the
--       last listed ('listed'), so a batch sent again after its reply was
--       lost (a server restart) lists nothing twice, 6 the mode:
--       'copy' (or absent) as above;
--       'probe' for a reader that takes the blocks later ('take'): a block
--       is not copied, only looked at where the instant's value is (the
--       copy a change script made, else the source itself, which no script
--       changed since the instant), and listed if it existed;
--       'take' makes sure of each key as 'copy' does and records it in
--       TOUCHED, so that once the reader has read the copy and removed it
--       no change script copies the key again: a dump streams its blocks
--       through the staging prefix a batch at a time (dump_io.cpp)
-- Returns, per key: -1 when the snapshot has no such key, -2 for a block
-- that is not a string, else the block's length (0 for other keys).
-- Fails with LOST when the snapshot is no longer ours and alive.
if not cow_held(KEYS[1], ARGV[1]) then
  fail('LOST', 'the snapshot lapsed')
end
-- (before the first copy: a script that fails midway keeps what it wrote,
-- and TOUCHED's SISMEMBER and SADD, the index's RPUSH, come after copies)
for k, want in pairs({[2] = 'set', [3] = 'list'}) do
  local t = redis.call('TYPE', KEYS[k])['ok']
  if t ~= 'none' and t ~= want then
    fail('WRONGTYPE', KEYS[k] .. ' is not a ' .. want)
  end
end
local n = (#KEYS - 3) / 2
local mode = ARGV[6] or 'copy'
local out = {}
local listed = {}
for i = 1, n do
  local src = KEYS[3 + i]
  local dst = KEYS[3 + n + i]
  local rel = string.match(src, '^[^:]*:(.*)$')
  local block = string.sub(ARGV[3], i, i) == 'b'
  local at = dst  -- where the instant's value is, if anywhere
  local there = redis.call('EXISTS', dst) == 1
  if not there and redis.call('SISMEMBER', KEYS[2], rel) == 0 then
    if mode == 'probe' and block then
      at = src
      there = redis.call('EXISTS', src) == 1
    else
      there = redis.call('COPY', src, dst) == 1
      if there then
        redis.call('PEXPIRE', dst, ARGV[2])
      end
    end
  end
  if mode == 'take' and redis.call('SADD', KEYS[2], rel) == 1 then
    redis.call('PEXPIRE', KEYS[2], ARGV[2])
  end
  if there then
    listed[#listed + 1] = rel
  end
  if not there then
    out[i] = -1
  elseif block then
    local len = redis.pcall('STRLEN', at)
    out[i] = type(len) == 'number' and len or -2
  else
    out[i] = 0
  end
end
if ARGV[4] == '1' and #listed > 0 and redis.call('HGET', KEYS[1], 'listed') ~= ARGV[5] then
  redis.call('RPUSH', KEYS[3], unpack(listed))
  redis.call('PEXPIRE', KEYS[3], ARGV[2])
  redis.call('HSET', KEYS[1], 'listed', ARGV[5])
end
return out

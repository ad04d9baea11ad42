#!lua flags=allow-oom
-- Renames an entry, replacing the target (RENAME_NOREPLACE: refuse an
-- existing target; RENAME_EXCHANGE: swap the two entries). Runs on a full
-- server (allow-oom): a rename moves a name (and may free a replaced
-- file), it does not grow the filesystem.
-- KEYS: 1 SB, 2 FREEZE, 3 DIR:sp, 4 INODE:sp, 5 DIR:dp, 6 INODE:dp,
--       7 INODE:src (guess), 8 INODE:dst (guess; INODE:0 for none),
--       9 DIR:dst, 10 XATTR:dst (freed with a replaced file), 11 ORPHANS,
--       12.. INODE keys of chain A (dp and its ancestors up to the root),
--            then of chain B (sp and its ancestors), when given;
--       then OPEN:dst and dst's blocks as unlink.lua's (none for no dst;
--       see free_unheld)
-- ARGV: 1 name, 2 newname, 3 flags (0, 1 noreplace, 2 exchange),
--       4 src guess, 5 dst guess ('0' none), 6 session, 7 #A, 8 #B,
--       9 sp ino, 10 dp ino, 11.. the inode numbers of chain A then B,
--       then the bytes dst's blocks in KEYS span
-- Returns {'RETRY', src, dst[, 'chain']} when a guess or a chain is stale,
-- else {'OK', orphaned ino or '0'[, 'FREED']}. A replaced file that nobody
-- holds open, or symlink, is freed at once, as by unlink, and is no
-- orphan: 'FREED' says so (a fifo, socket or device is an orphan: see
-- unheld).
check_frozen(KEYS[2])
local flags = tonumber(ARGV[3])
local src = redis.call('HGET', KEYS[3], ARGV[1])
if not src then
  fail('ENOENT')
end
local dst = redis.call('HGET', KEYS[5], ARGV[2])
if src ~= ARGV[4] or (dst or '0') ~= ARGV[5] then
  return {'RETRY', src, dst or '0'}
end
if inode_type(KEYS[6]) ~= 'dir' then
  fail('ENOTDIR')
end
if hget_num(KEYS[6], 'nlink') == 0 then
  fail('ENOENT', 'the target directory was removed')
end
if flags == 1 and dst then
  fail('EEXIST')
end
if flags == 2 and not dst then
  fail('ENOENT')
end
if src == dst then
  return {'OK', '0'}
end
local stype = inode_type(KEYS[7])
local dtype = nil
if dst then
  dtype = inode_type(KEYS[8])
end
local across = ARGV[9] ~= ARGV[10]
local na = tonumber(ARGV[7])
local nb = tonumber(ARGV[8])

-- A chain is the list of a directory's ancestors, itself first, root last,
-- each the 'parent' of the one before: valid only if it still is.
local function chain_ok(first, n)
  if n == 0 then
    return false
  end
  for i = 0, n - 1 do
    local parent = redis.call('HGET', KEYS[12 + first + i], 'parent')
    if not parent then
      return false
    end
    if i < n - 1 then
      if parent ~= ARGV[11 + first + i + 1] then
        return false
      end
    elseif ARGV[11 + first + i] ~= '1' then
      return false
    end
  end
  return true
end
local function chain_has(first, n, ino)
  for i = 0, n - 1 do
    if ARGV[11 + first + i] == ino then
      return true
    end
  end
  return false
end

if across and stype == 'dir' then
  if not chain_ok(0, na) then
    return {'RETRY', src, dst or '0', 'chain'}
  end
  if chain_has(0, na, src) then
    fail('EINVAL', 'cannot move a directory into itself')
  end
end
if flags == 2 and across and dtype == 'dir' then
  if not chain_ok(na, nb) then
    return {'RETRY', src, dst or '0', 'chain'}
  end
  if chain_has(na, nb, dst) then
    fail('EINVAL', 'cannot move a directory into itself')
  end
end
if flags ~= 2 and dst then
  if stype == 'dir' then
    if dtype ~= 'dir' then
      fail('ENOTDIR')
    end
    if redis.call('HLEN', KEYS[9]) > 0 then
      fail('ENOTEMPTY')
    end
  elseif dtype == 'dir' then
    fail('EISDIR')
  end
end

-- The counts the change adds to (dir_changed's gen, the nlinks a moved
-- or replaced directory or a replaced file changes) are checked before
-- the first write.
local dirs_move = stype == 'dir' or dtype == 'dir'
check_gen(KEYS[4])
if dirs_move or across then
  check_gen(KEYS[6])
end
if dirs_move then
  check_counts(KEYS[4], 'nlink')
  check_counts(KEYS[6], 'nlink')
end
if flags ~= 2 and dst and dtype ~= 'dir' then
  check_counts(KEYS[8], 'nlink')
end
if flags ~= 2 and dst then
  check_hash(KEYS[11])  -- a replaced node may become an orphan
end
local now = now_ns()
local orphan = '0'
local freed
if flags == 2 then
  redis.call('HSET', KEYS[3], ARGV[1], dst)
  redis.call('HSET', KEYS[5], ARGV[2], src)
  if across then
    if stype == 'dir' then
      redis.call('HSET', KEYS[7], 'parent', ARGV[10])
      redis.call('HINCRBY', KEYS[4], 'nlink', -1)
      redis.call('HINCRBY', KEYS[6], 'nlink', 1)
    end
    if dtype == 'dir' then
      redis.call('HSET', KEYS[8], 'parent', ARGV[9])
      redis.call('HINCRBY', KEYS[4], 'nlink', 1)
      redis.call('HINCRBY', KEYS[6], 'nlink', -1)
    end
  end
  redis.call('HSET', KEYS[8], 'ctime', now)
else
  redis.call('HSET', KEYS[5], ARGV[2], src)
  redis.call('HDEL', KEYS[3], ARGV[1])
  if dst then
    if dtype == 'dir' then
      -- the replaced (empty) directory becomes an orphan, as with rmdir
      redis.call('DEL', KEYS[9])
      redis.call('HSET', KEYS[8], 'nlink', '0', 'ctime', now)
      redis.call('HSET', KEYS[11], dst, ARGV[6])
      orphan = dst
      redis.call('HINCRBY', KEYS[6], 'nlink', -1)
    else
      local left = redis.call('HINCRBY', KEYS[8], 'nlink', -1)
      redis.call('HSET', KEYS[8], 'ctime', now)
      local extra = 12 + tonumber(ARGV[7]) + tonumber(ARGV[8])
      if left <= 0 then
        if free_unheld(KEYS[1], KEYS[8], KEYS[extra], KEYS[10], extra + 1, #KEYS, ARGV[#ARGV]) then
          freed = 'FREED'
        else
          redis.call('HSET', KEYS[11], dst, ARGV[6])
          orphan = dst
        end
      end
    end
  end
  if stype == 'dir' and across then
    redis.call('HSET', KEYS[7], 'parent', ARGV[10])
    redis.call('HINCRBY', KEYS[4], 'nlink', -1)
    redis.call('HINCRBY', KEYS[6], 'nlink', 1)
  end
end
redis.call('HSET', KEYS[7], 'ctime', now)
dir_changed(KEYS[4], now)
if across then
  dir_changed(KEYS[6], now)
end
return {'OK', orphan, freed}

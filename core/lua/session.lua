#!lua flags=allow-oom
-- Registers or refreshes a mount's session key, and its field in the
-- mounts' register (MOUNTS, where the tools count mounts without SCANning
-- the server), in one step. Runs on a full server too (allow-oom): a
-- session key that could not be refreshed there would expire while the
-- mount lives, and the other mounts would then take its opens and orphans
-- for a dead mount's and free them.
--
-- Admission, in the same step: while WRITEBACK names another live session
-- (a writeback mount holds the filesystem alone; the key lapses with that
-- mount's session key, as both get the same TTL here), no other mount is
-- registered. A writeback mount is registered only while no other mount
-- is live: the client names every other field of MOUNTS (read just
-- before) with its MOUNT:<id> key; a field it did not name (a mount that
-- registered meanwhile) answers RETRY. A writeback mount then sets
-- WRITEBACK to its session id with the same TTL. A mount already
-- registered (its session key exists) is refreshed without the check.
--
-- A snapshot (SB's read_only) is mounted writable only when the client
-- allows it (ARGV[6] 'rw': --writable-snapshot), else {'SNAPSHOT'}. A
-- read-only mount of a snapshot keeps what it reads for an hour (a
-- snapshot does not change: fs/daemon.cpp, frozen), so the first writable
-- mount of it is refused while any other mount is live ({'READER', id,
-- what}; until then only readers mount it), naming every other field of
-- MOUNTS as a writeback mount does; and it sets CHANGED to "written" in
-- the same step, for good (keys.hpp): a reader that registers later reads
-- that and does not keep what it reads. A reader that keeps what it reads
-- refreshes its session as 'frozen': if the snapshot is "written" it is
-- answered {'WRITTEN', why} (it must not serve what it kept): 'lapsed'
-- when its key lapsed meanwhile and a writable mount came, 'changed' when
-- something changed the snapshot under its live session (fsck --repair
-- --force marks a snapshot it repairs "written"; so does a writable mount
-- by a daemon older than this admission).
--
-- A writable mount (not 'reader' or 'frozen') raises a live filesystem of an older
-- format version to ARGV[5] in the same step (prelude.lua, upgrade_format):
-- a daemon that registers first and reads the superblock after it (every
-- redisfs does) is either in MOUNTS already, where a snapshot's instant
-- sees it (cow_begin.lua), or finds a version it refuses.
-- KEYS: 1 MOUNT, 2 MOUNTS, 3 WRITEBACK, 4 SB, 5 CHANGED, 6.. MOUNT:<id> of
--       the other fields of MOUNTS (writeback mounts, and a writable
--       mount's first registration)
-- ARGV: 1 value ('v<n> ' host, pid, mount point: keys.hpp,
--       mount_registration), 2 time to live in ms, 3 session id,
--       4 'writeback', 'shared', 'reader' (read-only) or 'frozen' (a
--       reader that keeps what it reads), 5 the format version this daemon
--       writes, 6 'rw' to mount a snapshot writable, else '', 7.. the other
--       fields' ids, in the order of their keys
-- Returns 1 (registered), {'HELD', id, what MOUNTS says of it} (a live
-- writeback mount holds the filesystem), {'BUSY', id, what MOUNTS says of
-- it} (a writeback mount while another mount is live), {'SNAPSHOT'},
-- {'READER', id, what}, {'WRITTEN', why} (above) or {'RETRY'}.
local me, writeback = ARGV[3], ARGV[4] == 'writeback'
-- The register and the claim of another type (damaged; fsck reports and
-- removes them) refuse a new mount, naming the key, before anything is
-- written. A mount already registered goes on refreshing its session key,
-- which must not lapse while it lives (the other mounts would take its
-- opens for a dead mount's), and leaves the damaged key alone.
local registered = redis.call('EXISTS', KEYS[1]) == 1
local sound = {}
for i, want in pairs({[2] = 'hash', [3] = 'string'}) do
  local t = redis.call('TYPE', KEYS[i]).ok
  sound[i] = t == 'none' or t == want
  if not sound[i] and not registered then
    fail('EIO', KEYS[i] .. ' is a ' .. t .. ', not a ' .. want .. ': see redisfs-snap fsck')
  end
end
local holder = sound[3] and redis.call('GET', KEYS[3]) or nil
if holder and holder ~= me then
  return {'HELD', holder, sound[2] and redis.call('HGET', KEYS[2], holder) or ''}
end
local reader = ARGV[4] == 'reader' or ARGV[4] == 'frozen'
local snapshot = not reader and not registered and redis.call('TYPE', KEYS[4]).ok == 'hash' and
  redis.call('HGET', KEYS[4], 'read_only') == '1'
if snapshot and ARGV[6] ~= 'rw' then
  return {'SNAPSHOT'}
end
local changed = redis.call('TYPE', KEYS[5]).ok == 'string' and redis.call('GET', KEYS[5]) or nil
if ARGV[4] == 'frozen' and changed == 'written' then
  return {'WRITTEN', registered and 'changed' or 'lapsed'}
end
-- The other live mounts: the client named each field of MOUNTS (a field
-- it did not name registered meanwhile: RETRY).
local function first_live()
  local named = {}
  for i = 7, #ARGV do
    named[ARGV[i]] = true
  end
  for _, id in ipairs(sound[2] and redis.call('HKEYS', KEYS[2]) or {}) do
    if id ~= me and not named[id] then
      return 'RETRY'
    end
  end
  for i = 7, #ARGV do
    if redis.call('EXISTS', KEYS[i - 1]) == 1 then
      return ARGV[i]
    end
  end
  return nil
end
if (writeback and not registered) or (snapshot and changed ~= 'written') then
  local live = first_live()
  if live == 'RETRY' then
    return {'RETRY'}
  elseif live then
    return {writeback and 'BUSY' or 'READER', live, redis.call('HGET', KEYS[2], live) or ''}
  end
end
if not reader then
  upgrade_format(KEYS[4], ARGV[5])
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if sound[2] then
  redis.call('HSET', KEYS[2], me, ARGV[1])
end
if writeback and sound[3] then
  redis.call('SET', KEYS[3], me, 'PX', ARGV[2])
end
if snapshot then
  redis.call('SET', KEYS[5], 'written')
end
return 1

--! no-outcome: a toolkit script, not a filesystem change (outcome.inc)
--! resend: a second run finds its own instant (staging prefix and token) and answers what the first answered
-- The instant of a copy-on-write snapshot (snapshot.hpp): from here on every
-- change script copies the keys it names to the staging prefix before it
-- changes them (prelude.lua's copy-on-write check), and the copier copies the rest.
-- Writers do not wait: this script is the whole pause.
-- KEYS: 1 FREEZE, 2 COW, 3 SB, 4 staging SB, 5 staging TOUCHED, 6 CHANGED,
--       7 staging CHANGED, 8 the staging index (install.hpp), 9 MOUNTS,
--       10 INSTALLING
-- ARGV: 1 staging prefix, 2 token, 3 how long it lives unrefreshed (ms),
--       4 TTL of the staging keys (ms), 5 the prefix a copy is for ('' for
--       a dump: `list` shows the copy as "copying N%"), 6 the new
--       snapshot's id ('' for a dump or a clone), 7 '1' for a writable
--       clone (its superblock gets no snapshot_id), 8 how many ids a
--       lineage keeps, 9 the format version this toolkit writes
-- A snapshot (ARGV[6] set) appends its id to the source's lineage here, in
-- the step that is its instant, and its superblock gets that lineage and
-- the id (superblock.hpp). A source that is a snapshot itself (it has a
-- snapshot_id) keeps its lineage, which ends with its own id: only the new
-- snapshot's superblock gets the longer one.
-- Change tracking (keys.hpp, CHANGED), for a snapshot only: of a live
-- source, the snapshot takes the source's record over (what changed since
-- the snapshot before it) and the source starts a fresh one counting from
-- the new id; of a snapshot, the new one gets an empty record counting from
-- its source (they are the same at this instant). Either way the staged
-- record is listed in the index (the copier never copies it).
-- A snapshot raises a live source to format version ARGV[9] here, and its
-- own superblock gets that version (superblock.hpp; prelude.lua,
-- upgrade_format): after this instant no daemon that records nothing
-- mounts the source. One that is registered now (prelude.lua,
-- untracked_mounts) may have written untracked before the instant and
-- may write after it: the staged record (if any) and the fresh one are
-- the string 'untracked' instead (an incremental dump across either
-- compares all).
-- Returns {'OK', instant (ns), dead staging prefix or '', 1 when a record
-- was staged else 0}: a COW hash left by
-- a copier that died is replaced, and its staging prefix named for the
-- caller to remove. {'BUSY', why} when the filesystem is frozen or another
-- snapshot is alive (wait and try again; the live one is marked 'wanted',
-- so that a dump's hands it over); ENOENT without a superblock;
-- {'INSTALLING'} when a move into it (install.hpp) was interrupted: its
-- journal with no freeze, so no mover, guarding it (the state is half of
-- one, an incremental restore's over the old superblock).
-- The answer is kept in COW (instant, staged, dead): a second run of the
-- same begin (its staging prefix and token: the runner sends it again
-- after a lost reply) answers it again while the snapshot lives, and
-- {'LAPSED'} once it does not (the copies its writers made belong to
-- that instant: no other may begin on them).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local old = redis.pcall('HMGET', KEYS[2], 'staging', 'deadline', 'token', 'instant', 'staged', 'dead')
if old.err then
  old = {}  -- not a hash (damaged): replaced
end
if old[1] == ARGV[1] and old[3] == ARGV[2] then
  if not cow_deadline_alive(old[2], now) then
    return {'LAPSED'}
  end
  return {'OK', old[4] or '', old[6] or '', tonumber(old[5]) or 0}
end
if freeze_alive(KEYS[1]) then
  return {'BUSY', 'frozen'}
end
if redis.call('EXISTS', KEYS[10]) == 1 then
  return {'INSTALLING'}
end
if old[1] and cow_deadline_alive(old[2], now) then
  redis.pcall('HSET', KEYS[2], 'wanted', '1')  -- (a dump hands its snapshot over: CowKeeper)
  return {'BUSY', old[1]}
end
-- (before the first write: a script that fails midway keeps what it wrote,
-- and a superblock that is no hash fails the HMGET and the HSET below)
local sb_type = redis.call('TYPE', KEYS[3])['ok']
if sb_type == 'none' then
  fail('ENOENT', 'no superblock')
elseif sb_type ~= 'hash' then
  fail('WRONGTYPE', 'the superblock is not a hash')
end
local index_type = redis.call('TYPE', KEYS[8])['ok']  -- (its RPUSH comes last)
if index_type ~= 'none' and index_type ~= 'list' then
  fail('WRONGTYPE', 'the staging index ' .. KEYS[8] .. ' is not a list')
end
redis.call('DEL', KEYS[2], KEYS[5])
redis.call('HSET', KEYS[2], 'staging', ARGV[1], 'token', ARGV[2], 'deadline', fmt(now + tonumber(ARGV[3])),
           'ttl', ARGV[4], 'dst', ARGV[5], 'done', '0', 'total', '0')
redis.call('PEXPIRE', KEYS[2], ARGV[4])
local lineage = nil
local source_id = nil
if ARGV[6] ~= '' then
  local source = redis.call('HMGET', KEYS[3], 'lineage', 'snapshot_id')
  source_id = source[2]
  local ids = {}
  for id in string.gmatch(source[1] or '', '%S+') do
    ids[#ids + 1] = id
  end
  ids[#ids + 1] = ARGV[6]
  local keep = tonumber(ARGV[8])
  while #ids > keep do
    table.remove(ids, 1)
  end
  lineage = table.concat(ids, ' ')
  if not source[2] then
    redis.call('HSET', KEYS[3], 'lineage', lineage)
    upgrade_format(KEYS[3], ARGV[9])
  end
end
redis.call('DEL', KEYS[4])
redis.call('COPY', KEYS[3], KEYS[4])
if lineage then
  redis.call('HSET', KEYS[4], 'snapshot_id', ARGV[6], 'lineage', lineage)
  upgrade_format(KEYS[4], ARGV[9], true)
elseif ARGV[7] == '1' then
  redis.call('HDEL', KEYS[4], 'snapshot_id')
end
redis.call('PEXPIRE', KEYS[4], ARGV[4])
local staged = 0
if lineage then
  local untracked = untracked_mounts(KEYS[9])
  redis.call('DEL', KEYS[7])
  if source_id then
    redis.call('SADD', KEYS[7], 'since:' .. source_id)
    staged = 1
  else
    if redis.call('EXISTS', KEYS[6]) == 1 then
      redis.call('RENAME', KEYS[6], KEYS[7])
      staged = 1
    end
    if untracked then
      redis.call('SET', KEYS[6], 'untracked')
    else
      redis.call('SADD', KEYS[6], 'since:' .. ARGV[6])
    end
  end
  if untracked and staged == 1 then
    redis.call('SET', KEYS[7], 'untracked')
  end
  if staged == 1 then
    redis.call('PEXPIRE', KEYS[7], ARGV[4])
    redis.call('RPUSH', KEYS[8], 'CHANGED')
    redis.call('PEXPIRE', KEYS[8], ARGV[4])
  end
end
local instant = t[1] .. string.format('%06d', tonumber(t[2])) .. '000'
redis.call('HSET', KEYS[2], 'instant', instant, 'staged', staged, 'dead', old[1] or '')
return {'OK', instant, old[1] or '', staged}

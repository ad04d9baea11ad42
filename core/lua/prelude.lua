-- Shared by every script: core/embed_lua.cmake puts in front of each the
-- definitions it names (a closure made at every call costs; see there).
-- So the top level holds only `local` definitions, each paragraph (up to a
-- blank line) starting with the ones it makes.
--
-- Rules every change script keeps:
--   * all checks come before the first write: Redis does not roll a script
--     back, so a script that fails must fail before it has changed anything
--     (this also makes an out-of-memory refusal, which Redis only raises at
--     a script's first write, leave the filesystem untouched);
--   * a script that cannot grow the filesystem (open, release, unlink,
--     rmdir, rename, truncate, purge, setattr, xattr_remove, ...) starts
--     with `#!lua flags=allow-oom` (Redis 7; embed_lua.cmake keeps the
--     shebang the first line; read.lua says no-writes), so that
--     a full server still reads, opens, truncates and removes: only growth
--     fails, with ENOSPC;
--   * every key is named in KEYS; a script that must know an inode the
--     client has not named (the target of a directory entry) gets the
--     client's guess and answers {'RETRY', actual} when it is wrong;
--   * no change while <prefix>:FREEZE exists (delete, an install, a copy
--     between cluster slots): the script fails with FROZEN before touching
--     anything, and the client waits and tries again;
--   * a mount's change never lands in a filesystem that replaced the one it
--     opened (rollback --force...): outcome.inc, around every script that
--     writes, refuses with ESTALE first when the superblock's identity is
--     not the one the client sent (Connection::set_identity);
--   * while a snapshot is taken copy-on-write (<prefix>:COW, snapshot.hpp),
--     every filesystem key the script names is first copied to the
--     snapshot's staging prefix, unless that was done already or the key
--     did not exist at the snapshot's instant (cow_pending): the copy is part
--     of the script's own atomic step. A client that did not name the
--     staging keys gets COW <staging> and sends the script again with them;
--   * times are nanoseconds since the epoch, kept as decimal strings (a Lua
--     number is a double and cannot hold them exactly).
local function fail(code, msg)
  if msg then
    error({err = code .. ' ' .. msg})
  end
  error({err = code})
end

local function now_ns()
  local t = redis.call('TIME')
  local us = t[2]  -- '0' to '999999': padded to six digits without a format
  return t[1] .. string.sub('00000', #us) .. us .. '000'
end

-- Whether `v` is a client's instant (nanoseconds since the epoch, as
-- now_ns writes them): what a writeback mount sends as a change's time
-- (setattr.lua, unlink.lua, write.lua). A malformed one is EINVAL.
local function is_instant(v)
  return string.match(v, '^%d+$') ~= nil and #v <= 19
end

-- The instant a directory change stamps (its new mtime and ctime): `v`,
-- a writeback mount's instant that it showed before sending the change,
-- when it sent one and its basis of the directory `d` (dir_read) is the
-- server's; else the server's clock. A malformed one is EINVAL.
local function change_instant(v, d)
  if v and v ~= '' and d.current then
    if not is_instant(v) then
      fail('EINVAL', 'malformed instant')
    end
    return v
  end
  return now_ns()
end

-- Milliseconds since the epoch (the server's clock), as a Lua number.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function fmt(n)
  return string.format('%d', n)
end

-- Adds `delta` to an accounting count (the superblock's inodes and bytes,
-- an inode's bytes), after the change it counts was written: a damaged
-- count (not an integer) stays as it is, for fsck to recompute, rather than
-- fail the script halfway through its writes. Counts that decide what a
-- change does (gen, nlink, size) are checked before the first write
-- instead.
local function count_add(key, field, delta)
  redis.pcall('HINCRBY', key, field, delta)
end

-- Whether a snapshot record's deadline (ms, as its text) is alive at `now`
-- (ms): ahead of it, and no further ahead than a copier ever sets it. A
-- copier puts its deadline k_freeze_ttl_ms (10 s) ahead at each refresh;
-- one further ahead than k_lease_max (snapshot.hpp, k_lease_max_ms,
-- the same rule) is none a copier wrote, and is dead like one whose copier
-- died: it would otherwise hold every change and snapshot for as long.
local k_lease_max = 60000
local function cow_deadline_alive(deadline, now)
  local d = tonumber(deadline or '') or 0
  return d > now and d <= now + k_lease_max
end

-- Whether the freeze `key` (<prefix>:FREEZE) is alive: a freezer sets it
-- k_freeze_ttl_ms ahead and refreshes it, so one with no time to live, or
-- one further ahead than k_lease_max (snapshot.hpp, lease_ttl_plausible:
-- the same rule), is none a freezer wrote. It holds nothing up (fsck
-- reports and removes it), where it would otherwise hold every change and
-- snapshot for as long.
local function freeze_alive(key)
  local t = redis.call('PTTL', key)
  return t >= 0 and t <= k_lease_max
end

-- The snapshot being taken copy-on-write, if one is alive: its staging
-- prefix and the TTL its keys get. (A COW hash whose deadline has passed
-- belongs to a copier that died: ignored.) A live one whose TTL is no
-- positive whole number fails the change (EIO) before it writes: its
-- copies could not be given the TTL, and a key marked copied but not
-- copied would be missing from the snapshot (it lives ten seconds unless
-- its copier refreshes it).
local function cow_alive()
  if not __cow_key then
    return nil
  end
  local c = redis.pcall('HMGET', __cow_key, 'staging', 'deadline', 'ttl')
  if c.err or not c[1] then
    return nil  -- (not a hash: damaged, for fsck to report; no snapshot is alive)
  end
  if not cow_deadline_alive(c[2], now_ms()) then
    return nil
  end
  local ttl = tonumber(c[3] or '')
  if not ttl or ttl < 1 or ttl > 9007199254740991 or ttl % 1 ~= 0 then
    fail('EIO', 'the snapshot being taken (' .. __cow_key .. ') has no valid ttl')
  end
  return c[1], string.format('%d', ttl)
end

-- Copy-on-write (see the rules above). Returns the staging prefix the
-- client must name when it named another (or none), else nil; the caller
-- fails with COW <staging> (write.lua keeps its TMP keys first).
local function cow_pending()
  local staging, ttl = cow_alive()
  if not staging then
    return nil
  end
  if staging ~= __cow_target then
    return staging
  end
  local cut = #staging + 2
  for i = 1, #__cow_mirror do
    local m = __cow_mirror[i]
    if m ~= __cow_touched and redis.call('EXISTS', m) == 0 then
      local rel = string.sub(m, cut)
      if redis.call('SADD', __cow_touched, rel) == 1 then
        redis.call('PEXPIRE', __cow_touched, ttl)
        if redis.call('COPY', KEYS[i], m) == 1 then
          redis.call('PEXPIRE', m, ttl)
        end
      end
    end
  end
  return nil
end

-- For the copier's scripts: whether the snapshot `key` (<prefix>:COW) is
-- still the one holding `token`, and alive. Returns the time (ms) if so.
local function cow_held(key, token)
  local c = redis.pcall('HMGET', key, 'token', 'deadline')
  if c.err then
    return nil  -- not a hash: not ours
  end
  local now = now_ms()
  if c[1] ~= token or not cow_deadline_alive(c[2], now) then
    return nil
  end
  return now
end

-- Per-block change tracking (keys.hpp: <prefix>:CHANGED): the blocks a
-- change wrote or cut ('<ino>:<index>'), added while the record exists and
-- is a set (SCARD, which fails on anything else, then SADD). Past
-- k_changed_cap block members the record becomes the string 'overflow'
-- (unknown: an incremental dump compares every block), which stops it.
local k_changed_cap = 65536
local function track_blocks(changed_key, block_keys)
  local n = redis.pcall('SCARD', changed_key)
  if type(n) ~= 'number' or n == 0 then
    return
  end
  local members = {}
  for i = 1, #block_keys do
    members[i] = string.match(block_keys[i], ':BLK:(%d+:%d+)$')
  end
  -- (SADD in slices: unpack takes at most a few thousand values)
  local added = 0
  for first = 1, #members, 1000 do
    added = added + redis.call('SADD', changed_key, unpack(members, first, math.min(first + 999, #members)))
  end
  if n + added > k_changed_cap + 1 then
    redis.call('DEL', changed_key)
    redis.call('SET', changed_key, 'overflow')
  end
end

-- Change tracking around a snapshot's instant (cow_begin.lua,
-- changes_restart.lua): is a mount registered (MOUNTS, keys.hpp) by a daemon
-- that records nothing? Its registration lacks the 'v<n> ' of format
-- version 2 or later (keys.hpp, mount_registration). A dead one not swept
-- yet counts too, and so does a register that is not a hash: the answer
-- only ever costs an incremental dump its shortcut.
local function untracked_mounts(mounts_key)
  local values = redis.pcall('HVALS', mounts_key)
  if values.err then
    return true
  end
  for _, v in ipairs(values) do
    local n = tonumber(string.match(v, '^v(%d+) ') or '')
    if not n or n < 2 then
      return true
    end
  end
  return false
end

-- A live filesystem's superblock (no snapshot_id nor read_only: a
-- snapshot's own version is part of the digest incremental restores check;
-- `new_snapshot` for the one a snapshot's instant makes) raised to the
-- format `version` when it is older (superblock.hpp: from then on a daemon
-- that records nothing refuses to mount it).
local function upgrade_format(sb_key, version, new_snapshot)
  local sb = redis.pcall('HMGET', sb_key, 'version', 'snapshot_id', 'read_only')
  if sb.err then
    return  -- not a hash: the decoder's to refuse
  end
  local v = tonumber(sb[1] or '')
  local snapshot = sb[2] or sb[3] == '1'
  if v and (new_snapshot or not snapshot) and v < tonumber(version) then
    redis.call('HSET', sb_key, 'version', version)
  end
end

-- What dropping setuid, and setgid of a group-executable file, leaves of
-- `mode` (octal text): the kernel's rule, applied here under
-- FUSE_HANDLE_KILLPRIV_V2 (write.lua, attr_fields). Returns the new mode as
-- octal text and whether a bit went, or nil when `mode` is not a mode.
local function killed_mode(mode)
  local m = tonumber(mode or '', 8)
  if not m then
    return nil
  end
  local k = m % 4096 >= 2048 and m - 2048 or m
  if k % 2048 >= 1024 and k % 16 >= 8 then
    k = k - 1024
  end
  return string.format('%04o', k), k ~= m
end

-- An attribute change (size aside: truncate and extend have scripts of
-- their own), for setattr.lua and for write.lua after its data: args[at]
-- to args[at + 5] (the script's ARGV, or write_pieces' A) are mode (octal,
-- '' = keep), uid, gid, atime, mtime (times: '' = keep, 'now', or
-- nanoseconds) and 'kill' to drop setuid,
-- and setgid of a group-executable file, after the mode
-- (FATTR_KILL_SUIDGID; '' = keep). `mode_before` is a function that
-- returns the inode's mode before the change (called only for a kill
-- without a new mode). Changes nothing: returns the fields to HSET,
-- ctime (`now`) first and 'now' replaced by `now`, or nil when the kill
-- meets a mode that is not a mode (the caller fails with EIO, before its
-- first write).
local k_attr_names = {'mode', 'uid', 'gid', 'atime', 'mtime'}
local function attr_fields(args, at, now, mode_before)
  local f = {'ctime', now}
  for i = 1, 5 do
    local v = args[at + i - 1]
    if v ~= '' then
      if v == 'now' then
        v = now
      end
      f[#f + 1] = k_attr_names[i]
      f[#f + 1] = v
    end
  end
  if args[at + 5] == 'kill' then
    local k = killed_mode(args[at] ~= '' and args[at] or mode_before())
    if not k then
      return nil
    end
    f[#f + 1] = 'mode'
    f[#f + 1] = k
  end
  return f
end

local function check_frozen(freeze_key)
  -- Neither a freeze nor a snapshot, the common case: one EXISTS for both.
  if __cow_key and redis.call('EXISTS', freeze_key, __cow_key) == 0 then
    return
  end
  if freeze_alive(freeze_key) then
    fail('FROZEN', 'the filesystem is frozen (a delete, an install or a snapshot)')
  end
  local staging = cow_pending()
  if staging then
    fail('COW', staging)
  end
end

-- type of an inode, or ENOENT
local function inode_type(key)
  local t = redis.call('HGET', key, 'type')
  if not t then
    fail('ENOENT')
  end
  return t
end

-- Sets a file's size, and with touch == '1' its mtime and ctime to now.
local function set_size(inode_key, size, touch)
  if touch == '1' then
    local now = now_ns()
    redis.call('HSET', inode_key, 'size', size, 'mtime', now, 'ctime', now)
  else
    redis.call('HSET', inode_key, 'size', size)
  end
end

local function hget_num(key, field)
  return tonumber(redis.call('HGET', key, field) or '0')
end

-- A change count ('gen': a directory's, and a writeback mount's file's) is
-- what the decoder reads (inode.cpp, k_max_gen): a decimal integer from 0
-- to 2^53 - 1, which a double holds exactly (a longer one parses to 2^53
-- or more: refused). The count after the last wraps to 1: a mount's basis
-- compares ctime too, which every change stamps (dir_read), and a mount
-- that expected the count one up (Store's DirNames) drops what it knew.
local function gen_valid(g)
  return string.match(g, '^%d+$') ~= nil and tonumber(g) <= 2 ^ 53 - 1
end

local function next_gen(g)
  local n = tonumber(g)
  if n >= 2 ^ 53 - 1 then
    return '1'
  end
  return fmt(n + 1)
end

-- A change of a file's data changes its inode (an incremental dump's
-- comparison, inc_compare.lua, trusts that): appended to `set` (an HSET's
-- fields), mtime and ctime at `now`, or, when the kernel keeps the times
-- (`kernel_times`: a writeback mount's, which writes them back itself),
-- the change counted in 'gen' (after `g`, the inode's; none or a damaged
-- one counts from 1) instead, so that the times the mount shows are not
-- moved by a change the kernel stamped within its clock's last tick (it
-- writes no time back then). write.lua, punch.lua, copy_range.lua.
local function stamp_data(set, kernel_times, g, now)
  if kernel_times then
    set[#set + 1] = 'gen'
    set[#set + 1] = g and gen_valid(g) and next_gen(g) or '1'
  else
    set[#set + 1] = 'mtime'
    set[#set + 1] = now
    set[#set + 1] = 'ctime'
    set[#set + 1] = now
  end
  return set
end

-- Fails EIO unless the change count of `key` (a directory's inode) is
-- missing or what gen_valid takes: checked before the first write of a
-- change that counts in it (dir_changed).
local function check_gen(key)
  local g = redis.call('HGET', key, 'gen')
  if g and not gen_valid(g) then
    fail('EIO', key .. ': malformed field gen')
  end
end

-- Every change to a directory's entries goes through here: it stamps the
-- times and counts the change in 'gen', which lets a mount tell that no
-- other change came between two of its own (Store's DirNames). The count
-- was checked (check_gen) before the change's first write.
local function dir_changed(dir_inode_key, now)
  local g = redis.call('HGET', dir_inode_key, 'gen') or '0'
  redis.call('HSET', dir_inode_key, 'mtime', now, 'ctime', now, 'gen', next_gen(g))
end

-- The same in one HSET, for a script that read the directory's fields
-- first: dir_read checks them before the first write, dir_write stamps the
-- change and dir_reply says what it changed.
--
-- dir_read reads only what the checks and the reply need (HMGET of type,
-- nlink, gen, ctime, atime and `...`, the caller's own: create.lua's mode
-- and gid, returned after them); fails ENOENT when the inode is gone,
-- ENOTDIR when it is no directory, ENOENT when it was removed (nlink 0),
-- EIO when its 'gen' (or, with `nlink_delta`, its 'nlink') is not an
-- integer. `basis` is the client's cached "<gen>:<ctime>:<atime>" of the
-- directory, or '': when it is the server's, the client's copy was current
-- just before this change (every change of an inode's fields stamps its
-- ctime but an access, which stamps only atime; every change of its entries
-- counts in gen), and dir_reply need not send the fields.
local function dir_read(dir_inode_key, nlink_delta, basis, ...)
  local f = redis.call('HMGET', dir_inode_key, 'type', 'nlink', 'gen', 'ctime', 'atime', ...)
  if not f[1] then
    fail('ENOENT')
  end
  if f[1] ~= 'dir' then
    fail('ENOTDIR')
  end
  local nlink = f[2] or '0'
  if tonumber(nlink) == 0 then
    fail('ENOENT', 'the directory was removed')
  end
  local gen = f[3] or '0'
  if not gen_valid(gen) then
    fail('EIO', 'directory: malformed field gen')
  end
  if nlink_delta and (not string.match(nlink, '^-?%d+$') or #nlink > 15) then
    fail('EIO', 'directory: malformed field nlink')
  end
  local current = basis ~= '' and basis == gen .. ':' .. (f[4] or '') .. ':' .. (f[5] or '')
  return {nlink = nlink, gen = gen, current = current}, f[6], f[7]
end

-- Fails EIO unless each of `fields` of hash `key` is missing or an
-- integer a double holds exactly: what a script checks, before its first
-- write, of the counts it will HINCRBY (which would fail halfway through).
local function check_counts(key, ...)
  local v = redis.call('HMGET', key, ...)
  local names = {...}
  for i = 1, #names do
    if v[i] and (not string.match(v[i], '^-?%d+$') or #v[i] > 15) then
      fail('EIO', key .. ': malformed field ' .. names[i])
    end
  end
end

-- `flat` (HGETALL's list) with the field/value pairs of `set` (a flat list,
-- as HSET takes; a later pair wins) applied in place: what the inode holds
-- after a change that read its fields first.
local function with_fields(flat, set)
  local at = {}
  for i = 1, #flat, 2 do
    at[flat[i]] = i + 1
  end
  for i = 1, #set, 2 do
    local j = at[set[i]]
    if not j then
      flat[#flat + 1] = set[i]
      j = #flat + 1
      at[set[i]] = j
    end
    flat[j] = set[i + 1]
  end
  return flat
end

-- Fails EIO unless the client can decode the inode fields `flat` (HGETALL's
-- list, perhaps with_fields of a change): what a change whose reply
-- carries the inode's fields checks, on the fields it is about to leave,
-- before its first write. Made and then unreadable to the client, the
-- change would be reported EIO. The rules are decode_attr's
-- (core/store/inode.cpp), to a double's precision near 2^63; bytes is
-- accounting, which the decoder lets through damaged. (The tables are
-- built here, not beside the function: the prelude runs with every
-- script, and only setattr and link call this.)
local function check_readable(flat, key)
  local k_inode_types = {file = true, dir = true, symlink = true, fifo = true, chr = true, blk = true, sock = true}
  local k_inode_numbers = {  -- field = {signed, largest}
    uid = {false, 4294967294}, gid = {false, 4294967294}, size = {false, 2 ^ 50}, nlink = {true, 2 ^ 63},
    rdev = {false, 2 ^ 64}, atime = {true, 2 ^ 63}, mtime = {true, 2 ^ 63}, ctime = {true, 2 ^ 63},
    parent = {false, 2 ^ 64}, gen = {false, 2 ^ 53 - 1},
  }
  local f = {}
  for i = 1, #flat, 2 do
    f[flat[i]] = flat[i + 1]
  end
  local function refuse(field)
    fail('EIO', key .. ': malformed field ' .. field)
  end
  if not k_inode_types[f.type or ''] then
    refuse('type')
  end
  local mode = f.mode or ''
  if not string.match(mode, '^[0-7]+$') or #mode > 22 or tonumber(mode, 8) > 4095 then
    refuse('mode')
  end
  for field, rule in pairs(k_inode_numbers) do
    local v = f[field]
    if v and (not string.match(v, rule[1] and '^-?%d+$' or '^%d+$') or #v > 21 or
        math.abs(tonumber(v)) > rule[2]) then
      refuse(field)
    end
  end
  -- (never read as 0: an owner, a size)
  for _, field in ipairs({'uid', 'gid', 'size'}) do
    if not f[field] then
      fail('EIO', key .. ": no '" .. field .. "' field")
    end
  end
  if f.type == 'symlink' then
    local t = f.target or ''
    if t == '' or #t > 4095 or string.find(t, '\0', 1, true) then
      refuse('target')
    end
  end
end

-- Fails EIO unless `key` is a hash or missing: what a script checks, before
-- its first write, of a hash it may HSET after it (ORPHANS), which would
-- fail halfway through on a key of another type.
local function check_hash(key)
  local t = redis.call('TYPE', key).ok
  if t ~= 'hash' and t ~= 'none' then
    fail('EIO', key .. ': a ' .. t .. ', not a hash')
  end
end

-- Stamps the change read by dir_read (`d`): mtime and ctime `now`, gen
-- counted, nlink moved by `nlink_delta`; one HSET. `d` then holds the new
-- gen and nlink.
local function dir_write(dir_inode_key, d, now, nlink_delta)
  d.gen = next_gen(d.gen)
  if nlink_delta then
    d.nlink = fmt(tonumber(d.nlink) + nlink_delta)
    redis.call('HSET', dir_inode_key, 'mtime', now, 'ctime', now, 'gen', d.gen, 'nlink', d.nlink)
  else
    redis.call('HSET', dir_inode_key, 'mtime', now, 'ctime', now, 'gen', d.gen)
  end
end

-- What a change script returns of the directory after dir_write: {now,
-- gen, nlink}, all its other fields as the client's basis had them (the
-- basis matched: dir_read); otherwise {now, gen, nlink, its fields
-- (HGETALL, as they now are)}. (HGETALL of every field, and sending them,
-- was about a fifth of an unlink's redis-server instructions.)
local function dir_reply(dir_inode_key, d, now)
  if d.current then
    return {now, d.gen, d.nlink}
  end
  return {now, d.gen, d.nlink, redis.call('HGETALL', dir_inode_key)}
end

-- The short reply of a change whose basis matched (dir_read): what its
-- array would hold, in one string, separated by spaces, with the
-- directory's change, `now gen nlink`, spread in place (`head` before it,
-- `tail` after it, each '' or already joined). Redis turns a returned
-- table into its reply, and cmsgpack packs it into the outcome record,
-- at about 22k of an unlink's 186k redis-server instructions; a string
-- costs neither (the client reads both shapes: store_internal.hpp,
-- _short_fields). The record holds the same string.
local function short_reply(head, d, now, tail)
  return head .. now .. ' ' .. d.gen .. ' ' .. d.nlink .. tail
end

local S_ISGID = 1024

-- A non-directory that just lost its last link (`inode` key) is freed at
-- once when no mount holds it open (no `open` key) and, for a regular
-- file, all its blocks are KEYS[first..last] (`covered`: the bytes they
-- span): its inode, its xattrs and blocks go, and the superblock (`sb`)
-- counts follow. Returns true when freed; otherwise it stays for the
-- caller to record as an orphan (purge.lua frees it later). A fifo,
-- socket or device always stays: the kernel opens one without asking
-- its mount (no open count tells), and a process that holds it open may
-- fstat or fchmod it; the mount that removed it purges it once its
-- kernel forgets it (a moment after the last close).
--
-- In two halves for a script that read the inode's type and size itself
-- and must decide before its first write: unheld (reads only) returns the
-- last block key to delete and the bytes they store, or nil when the inode
-- stays; free_inode deletes.
local SPECIAL = {fifo = true, sock = true, chr = true, blk = true}

local function unheld(kind, size_text, open, first, last, covered)
  local size = tonumber(size_text)
  if redis.call('EXISTS', open) == 1 or (kind == 'file' and not (size and size <= tonumber(covered))) or
      SPECIAL[kind] then
    return nil
  end
  if kind ~= 'file' then
    last = first - 1  -- no blocks
  elseif last >= first then
    -- only the blocks the size reaches: no block ever lies past the end
    local bs = tonumber(covered) / (last - first + 1)
    last = first + math.ceil(size / bs) - 1
  end
  local stored = 0
  for i = first, last do
    local n = redis.pcall('STRLEN', KEYS[i])
    if type(n) ~= 'number' then
      return nil  -- a damaged block (not a string): purge.lua and fsck deal with it
    end
    stored = stored + n
  end
  return last, stored
end

local function free_inode(sb, inode, xattr, first, last, stored)
  redis.call('DEL', inode, xattr, unpack(KEYS, first, last))
  count_add(sb, 'inodes', -1)
  if stored ~= 0 then
    count_add(sb, 'bytes', -stored)
  end
end

local function free_unheld(sb, inode, open, xattr, first, last, covered)
  local f = redis.call('HMGET', inode, 'type', 'size')
  local stored
  last, stored = unheld(f[1], f[2], open, first, last, covered)
  if not last then
    return false
  end
  free_inode(sb, inode, xattr, first, last, stored)
  return true
end

-- create.lua's work (see there for K and A, its KEYS and ARGV; the
-- last of A, the parent's basis, is taken off A): returns its reply,
-- what its outcome record holds (nil: the reply) and {now, mode} of the
-- new inode. Also create_write.lua's first half.
local function create_node(K, A)
  check_frozen(K[2])
  local kind = A[2]
  local nlink_delta = kind == 'dir' and 1 or nil
  local parent, pmode_text, pgid = dir_read(K[4], nlink_delta, table.remove(A), 'mode', 'gid')
  -- (a deferred create's instant: the one its mount showed as the times)
  local shown = A[K[6] and 11 or 10]
  if shown and not is_instant(shown) then
    fail('EINVAL', 'malformed instant')
  end
  -- (and its OPEN key: a stray one would fail the HINCRBY after the writes;
  -- the client takes the next number on these very words: k_ino_in_use)
  if redis.call('EXISTS', K[5], K[6] or K[5]) ~= 0 then
    fail('EIO', 'inode number already in use')
  end
  local mode = tonumber(A[3], 8)
  local gid = A[5]
  local pmode = tonumber(pmode_text or '', 8)
  if not pmode then
    fail('EIO', 'directory: malformed field mode')
  end
  if pmode % (2 * S_ISGID) >= S_ISGID then
    -- setgid directory: new nodes take its group, new directories its setgid bit
    gid = pgid
    if not gid then
      fail('EIO', 'directory: no field gid')
    end
    if kind == 'dir' and mode % (2 * S_ISGID) < S_ISGID then
      mode = mode + S_ISGID
    end
  end
  local now = now_ns()
  local t = shown or now  -- the new node's times; the parent's change is `now`
  local nlink = '1'
  local size = '0'
  if kind == 'dir' then
    nlink = '2'
  elseif kind == 'symlink' then
    size = fmt(string.len(A[7]))
  end
  local mode_text = string.format('%04o', mode)
  -- The first write, or none: the entry goes in unless the name is taken
  -- (one pass over the directory's hash where HEXISTS then HSET took two).
  if redis.call('HSETNX', K[3], A[1], A[8]) == 0 then
    fail('EEXIST')
  end
  if kind == 'dir' then
    redis.call('HSET', K[5], 'type', kind, 'mode', mode_text, 'uid', A[4], 'gid', gid,
      'size', size, 'nlink', nlink, 'rdev', A[6], 'bytes', '0',
      'atime', t, 'mtime', t, 'ctime', t, 'parent', A[9])
  elseif kind == 'symlink' then
    redis.call('HSET', K[5], 'type', kind, 'mode', mode_text, 'uid', A[4], 'gid', gid,
      'size', size, 'nlink', nlink, 'rdev', A[6], 'bytes', '0',
      'atime', t, 'mtime', t, 'ctime', t, 'target', A[7])
  else
    redis.call('HSET', K[5], 'type', kind, 'mode', mode_text, 'uid', A[4], 'gid', gid,
      'size', size, 'nlink', nlink, 'rdev', A[6], 'bytes', '0',
      'atime', t, 'mtime', t, 'ctime', t)
  end
  dir_write(K[4], parent, now, nlink_delta)
  count_add(K[1], 'inodes', 1)
  if K[6] then
    redis.call('HINCRBY', K[6], A[10], 1)
  end
  if parent.current then
    return short_reply(t .. ' ' .. gid .. ' ' .. mode_text .. ' ', parent, now, ''), nil, {t, mode_text}
  end
  return {t, gid, mode_text, dir_reply(K[4], parent, now)}, {t, gid, mode_text, {}}, {t, mode_text}
end

-- The TMP keys of write.lua's pieces (K and A: its KEYS and ARGV), gone.
local function drop_write_temps(K, A)
  local n = (#K - 4) / 2
  for i = 1, n do
    if A[4 + (i - 1) * 3 + 2] == '' then
      redis.call('DEL', K[4 + 2 * i])
    end
  end
end

-- write.lua's work (see there for K and A, its KEYS and ARGV): returns
-- its reply. `made`: the file was made by this very script
-- (create_write.lua), {now, mode} as create_node returned them: the
-- FREEZE key was checked, and the inode's fields are known, not read.
local function write_pieces(K, A, made)
  local n = (#K - 4) / 2
  local function drop_temps()
    drop_write_temps(K, A)
  end
  local function refuse(code, msg)
    drop_temps()
    fail(code, msg)
  end
  if n < 1 or n ~= math.floor(n) or (#A ~= 3 + 3 * n and #A ~= 4 + 3 * n and #A ~= 10 + 3 * n and #A ~= 11 + 3 * n) or
      not tonumber(A[1]) or not string.match(A[3], '^1?k?$') then
    refuse('EINVAL', 'malformed write arguments')
  end
  local instant = A[11 + 3 * n]
  if instant and not is_instant(instant) then
    refuse('EINVAL', 'malformed instant')
  end
  local kernel_times = string.sub(A[3], -1) == 'k'
  for i = 1, n do
    if not tonumber(A[4 + (i - 1) * 3]) or not tonumber(A[5 + (i - 1) * 3]) then
      refuse('EINVAL', 'malformed write arguments')
    end
  end
  for i = 1, n do
    if A[4 + (i - 1) * 3 + 2] == '' then
      local t = redis.call('TYPE', K[4 + 2 * i])['ok']
      if t == 'none' then
        -- its SET was refused: the server is out of memory
        refuse('ENOSPC', 'the server refused the data (out of memory)')
      elseif t ~= 'string' then
        -- (another client's, since the pipeline's SET: before the first
        -- write, as a GET of it would fail after some)
        refuse('EIO', K[4 + 2 * i] .. ' is not a string')
      end
    end
  end
  -- Frozen, or a snapshot's staging keys not named: the client sends this
  -- script again (redis.cpp), so its TMP keys stay for it (they expire).
  if not made then
    check_frozen(K[2])
  end
  -- (pcall: a runtime error would skip refuse, leaving the TMP keys)
  local f = made and {'file', '0', made[2], '0'} or redis.pcall('HMGET', K[3], 'type', 'size', 'mode', 'bytes', 'gen')
  if f.err then
    refuse('EIO', K[3] .. ' is not a hash')
  end
  if not f[1] then
    refuse('ESTALE', 'the file was removed')
  end
  if f[1] ~= 'file' then
    refuse('EINVAL', 'not a regular file')
  end
  -- The kill is decided here, before the first write: a damaged mode
  -- refuses the whole write.
  local new_mode, killed = nil, nil
  if A[4 + 3 * n] == 'kill' then
    local changed
    new_mode, changed = killed_mode(f[3])
    if not new_mode then
      refuse('EIO', 'the inode has no valid mode')
    end
    killed = changed and 'killed' or nil
  end
  local now = made and made[1] or now_ns()
  local attrs = nil
  if #A >= 10 + 3 * n then
    attrs = attr_fields(A, 5 + 3 * n, instant or now, function()
      return new_mode or f[3]
    end)
    if not attrs then
      refuse('EIO', 'the inode has no valid mode')
    end
  end
  -- (up to 2^50, 16 digits: a file may be as large as 1 PiB, inode.hpp)
  local size = f[2] and string.match(f[2], '^%d+$') and #f[2] <= 16 and tonumber(f[2]) <= 2 ^ 50 and tonumber(f[2])
  if not size then
    refuse('EIO', 'the inode has no valid size')
  end
  if A[2] ~= '' and tonumber(A[2]) ~= size then
    drop_temps()
    return {'RETRY', fmt(size)}
  end
  -- Every block is read before the first write: one that is not a string
  -- (damage) refuses the whole write, where its SETRANGE would have failed
  -- after the blocks before it were written.
  local lengths = {}
  for i = 1, n do
    local blk = K[3 + 2 * i]
    if not lengths[blk] then
      local l = redis.pcall('STRLEN', blk)
      if type(l) ~= 'number' then
        refuse('EIO', blk .. ' is not a string')
      end
      lengths[blk] = l
    end
  end
  local delta = 0
  local written = {}
  for i = 1, n do
    local a = 4 + (i - 1) * 3
    local blk = K[3 + 2 * i]
    local tmp = K[4 + 2 * i]
    written[i] = blk
    local off = tonumber(A[a])
    local len = tonumber(A[a + 1])
    local before = lengths[blk]
    local after
    if A[a + 2] ~= '' then
      after = redis.call('SETRANGE', blk, off, A[a + 2])
    elseif off == 0 and len >= before then
      redis.call('RENAME', tmp, blk)
      redis.call('PERSIST', blk)
      after = len
    else
      after = redis.call('SETRANGE', blk, off, redis.call('GET', tmp))
      redis.call('DEL', tmp)
    end
    lengths[blk] = after
    delta = delta + after - before
  end
  local stop = tonumber(A[1])
  if stop > size then
    size = stop
  end
  -- One HSET: the data's fields (stamp_data), then the attribute
  -- change's (a field named twice takes the later value, as two HSETs in
  -- turn would).
  local set = stamp_data({'size', fmt(size)}, kernel_times, not made and f[5], now)
  if killed then
    set[#set + 1] = 'mode'
    set[#set + 1] = new_mode
  end
  if attrs then
    for i = 1, #attrs do
      set[#set + 1] = attrs[i]
    end
  end
  -- The inode's byte count rides in the same HSET when it is an integer
  -- HINCRBY would take and a double holds exactly (missing counts as 0);
  -- any other goes to HINCRBY as before (count_add), which counts it or,
  -- damaged, leaves it for fsck.
  local bytes_ok = false
  if delta ~= 0 then
    local b = f[4] or '0'
    if #b <= 15 and (b == '0' or string.match(b, '^-?[1-9]%d*$')) then
      set[#set + 1] = 'bytes'
      set[#set + 1] = fmt(tonumber(b) + delta)
      bytes_ok = true
    end
  end
  redis.call('HSET', K[3], unpack(set))
  if delta ~= 0 then
    if not bytes_ok then
      count_add(K[3], 'bytes', delta)
    end
    count_add(K[1], 'bytes', delta)
  end
  track_blocks(K[4], written)
  -- (the record, read back after a lost reply, does without the fields:
  -- a client without them asks the server when it needs them)
  if string.sub(A[3], 1, 1) == '1' then
    return {fmt(size), redis.call('HGETALL', K[3]), killed}, {fmt(size), false, killed}
  end
  return {fmt(size), false, killed}
end

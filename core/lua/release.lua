#!lua flags=allow-oom
-- Opens of files by this mount end: one release per file named, in order
-- (a file named twice is released twice), as one script, so that a batch
-- of releases (Store::release_files) costs the server one EVALSHA. Not held
-- back by a snapshot's freeze: OPEN keys are not part of the filesystem.
-- Runs on a full server too (allow-oom): it only shrinks the OPEN hashes,
-- and a release refused there would leave the open counted forever.
-- KEYS: 1 ORPHANS, then per file i (from 1): 2i OPEN, 2i+1 INODE
-- ARGV: 1 session, then per file i: 1+i its inode number
-- Returns one answer per file, in order: 1 when the file is an orphan
-- (nlink 0, in ORPHANS) that no mount holds open any more, whichever mount
-- unlinked it: the last close frees it (the caller purges it), else 0.
-- (The mount that unlinked it may be gone, or its kernel may keep the
-- inode, and so never purge it.) A file whose OPEN key is damaged (not a
-- hash, or this session's count not an integer) gets an error reply
-- ('EIO ...') in its place, and nothing of it is changed; the other files
-- are released all the same. A damaged INODE or ORPHANS makes the file no
-- orphan this release can judge (0: purge.lua and fsck deal with damage).
local n = #ARGV - 1
if #KEYS ~= 2 * n + 1 then
  fail('EINVAL', 'release: ' .. #KEYS .. ' keys for ' .. n .. ' files')
end
local out = {}
for i = 1, n do
  local open, inode, ino = KEYS[2 * i], KEYS[2 * i + 1], ARGV[1 + i]
  -- The HINCRBY is the check: on a damaged OPEN it fails, writing nothing.
  local left = redis.pcall('HINCRBY', open, ARGV[1], -1)
  if type(left) ~= 'number' then
    out[i] = {err = 'EIO release of inode ' .. ino .. ': damaged ' .. open .. ': ' .. tostring(left.err)}
  else
    if left <= 0 then
      redis.call('HDEL', open, ARGV[1])
    end
    out[i] = 0
    if redis.call('HLEN', open) == 0 then
      local nlink = redis.pcall('HGET', inode, 'nlink')
      if type(nlink) == 'string' and tonumber(nlink) == 0 and redis.pcall('HEXISTS', KEYS[1], ino) == 1 then
        out[i] = 1
      end
    end
  end
end
return out

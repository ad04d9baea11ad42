#!lua flags=allow-oom
-- Registers or refreshes a mount's session key, and its field in the
-- mounts' register (MOUNTS, where the tools count mounts without SCANning
-- the server), in one step. Runs on a full server too (allow-oom): a
-- session key that could not be refreshed there would expire while the
-- mount lives, and the other mounts would then take its opens and orphans
-- for a dead mount's and free them.
-- KEYS: 1 MOUNT, 2 MOUNTS
-- ARGV: 1 value (host, pid, mount point), 2 time to live in ms, 3 session id
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('HSET', KEYS[2], ARGV[3], ARGV[1])
return 1

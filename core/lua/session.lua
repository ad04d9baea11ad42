#!lua flags=allow-oom
-- Registers or refreshes a mount's session key. Runs on a full server too
-- (allow-oom): a session key that could not be refreshed there would
-- expire while the mount lives, and the other mounts would then take its
-- opens and orphans for a dead mount's and free them.
-- KEYS: MOUNT
-- ARGV: value (host, pid, mount point), time to live in ms
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1

#!/usr/bin/env bash
# sentinel: a mount found through Redis Sentinel (1 master, 2 replicas, 3
# sentinels; tests/prod/topology.sh) with --sync-replicas 1 rides out two
# failovers under a writer that fsyncs every file: first the master hangs
# (SIGSTOP, its sockets stay open), then the master that replaced it dies
# (SIGKILL; it comes back later as a replica, so fsync has a replica to wait
# for again). Outages cost latency, not errors (DESIGN.md, decision 12):
# the writer sees no error at all, every write fsync acknowledged survives
# (read back through the mount and through a fresh read-only mount found
# with the --sentinel form naming two of the sentinels), fsck through the
# sentinel URL is clean, and dump, restore, copy and delete through the
# sentinels work; a sentinel that wants a user and password is found with
# REDISFS_SENTINEL_USER/PASSWORD and refused without (or with a wrong
# one). The slowest call across each failover is printed, never asserted.
#
# REDISFS_PROD_INFRA_ONLY=1 stops after the checks of the topology itself
# (the same failures, on raw keys, watched with redis-cli): for a quick run
# while redisfs cannot talk to this topology.
. "$(dirname "$0")/topology.sh"

[[ -c /dev/fuse ]] || skip "no /dev/fuse"
need_tools fusermount3 jq
need_binary REDISFS_BIN
need_binary REDISFS_SNAP_BIN

W=$TOPO_HERE/ack_writer.py
PREFIX=S$RANDOM$RANDOM
MNT=$T/mnt

snap() {
  "$REDISFS_SNAP_BIN" --redis "$SENTINEL_URL" "$@"
}

# ------------------------------------------------------------------ topology
t0=$(now)
start_sentinel_set
m0=$SENTINEL_MASTER_PORT
# the --sentinel form, given two of the three sentinels (any one will do)
SENTINELS_2=127.0.0.1:$SENTINEL_PORT1,127.0.0.1:$SENTINEL_PORT2/$SENTINEL_MASTER_NAME
note "sentinel set up in $(since "$t0") s: master $m0, replicas ${SENTINEL_REPLICA_PORTS[*]}," \
  "sentinels ${SENTINEL_PORTS[*]} ($SENTINEL_URL)"
rc_at "$m0" set "probe:$PREFIX" 1 >/dev/null
[[ $(rc_at "$m0" wait 2 5000) == 2 ]] || fail "WAIT 2 on master $m0: the replicas do not acknowledge"
for r in "${SENTINEL_REPLICA_PORTS[@]}"; do
  [[ $(role_of "$r") == slave && $(rc_at "$r" get "probe:$PREFIX") == 1 ]] || fail "replica $r does not replicate $m0"
done
rc_at "$m0" del "probe:$PREFIX" >/dev/null
if [[ ${REDISFS_PROD_INFRA_ONLY:-0} == 1 ]]; then
  # the events of this test, on raw keys, watched with redis-cli only
  exercise_sentinel_set
  note "REDISFS_PROD_INFRA_ONLY=1: stopping after the topology checks"
  exit 0
fi

# ------------------------------------------------------------------ mount and work
# --timeout 60: room for a loaded 2-core CI box; a call that fails is an
# error whatever the timeout
mount_at "$MNT" --redis "$SENTINEL_URL" --prefix "$PREFIX" --sync-replicas 1 --timeout 60
mkdir -p "$MNT/w" "$MNT/tree/sub"
head -c 300000 /dev/urandom >"$T/blob"
cp "$T/blob" "$MNT/tree/blob"
ln -s blob "$MNT/tree/link"
echo hello >"$MNT/tree/sub/hello"
mv "$MNT/tree/sub/hello" "$MNT/tree/sub/hi"
cmp "$T/blob" "$MNT/tree/link"
[[ $(rc_at "$m0" exists "$PREFIX:SB") == 1 ]] || fail "the filesystem is not on the master the sentinels name ($m0)"

steps() {  # acknowledged steps so far (a line each; an error ends the writer)
  if [[ -f $T/journal ]]; then grep -cv '^error' "$T/journal" || true; else echo 0; fi
}

# writer_progress N: waits until the journal holds N steps; fails if the
# writer stopped (it stops at its first error) or makes no progress.
writer_progress() {
  local want=$1 i
  for ((i = 0; i < 1800; i++)); do
    (($(steps) >= want)) && return 0
    kill -0 "$writer" 2>/dev/null || fail "the writer stopped: $(cat "$T/writer.out")"
    sleep 0.1
  done
  fail "the writer is stuck at $(steps) steps (waited 180 s for $want): $(cat "$T/writer.out")"
}

latency() {  # T0 T1
  python3 "$W" latency "$T/journal" "$1" "$2"
}

${ORPHAN_GUARD[@]+"${ORPHAN_GUARD[@]}"} python3 "$W" write "$MNT/w" "$T/journal" --stop "$T/stop" >"$T/writer.out" 2>&1 &
writer=$!
track_job "$writer"
writer_progress 20
note "writer running: $(steps) acknowledged steps; $(latency 0 "$(now)")"

# ------------------------------------------------------------------ failover 1: the master hangs
t0=$(now)
stop_node "$m0"
sentinel_wait_failover "$m0"
m1=$NEW_MASTER_PORT
note "SIGSTOP master $m0: the sentinels promoted $m1 after $(since "$t0") s"
writer_progress $(($(steps) + 20))
note "failover 1 (SIGSTOP): $(latency "$t0" "$(now)")"

# the other replica follows the new master before we take that one away
wait_for 60 "the sentinels do not agree on $m1 with a replica" sentinels_agree "$m1" 1

# ------------------------------------------------------------------ failover 2: the new master dies
t0=$(now)
kill_node "$m1"
sentinel_wait_failover "$m1"
m2=$NEW_MASTER_PORT
[[ $m2 != "$m0" ]] || fail "the sentinels promoted the stopped master $m0"
note "SIGKILL master $m1: the sentinels promoted $m2 after $(since "$t0") s"
# it comes back as a replica: --sync-replicas 1 has a replica to wait for.
# The sentinels may then fail over once more, to the node that came back:
# on a loaded machine they can miss the end of the promotion they made
# and make another (seen once in CI: m1 master again, m2 its replica, all
# three sentinels agreeing). Either way round one of the two is the master
# the sentinels name, with the other as its replica, and that is what the
# rest needs: m2 is then whichever is the master.
restart_node "$m1" --replicaof 127.0.0.1 "$m2"
_settled() { _replica_of_port "$2" "$1" && sentinels_agree "$1" 1; } # MASTER REPLICA
_either_settled() { _settled "$m2" "$m1" || _settled "$m1" "$m2"; }
WAIT_EXPLAIN="replication_state $m0 $m1 $m2" \
  wait_for 60 "$m1 does not come back as a replica of $m2 (nor $m2 of $m1)" _either_settled
if _settled "$m2" "$m1"; then
  note "$m1 is back as a replica of $m2 after $(since "$t0") s"
else
  note "$m1 came back, and the sentinels failed over to it once more: $m2 is its replica after $(since "$t0") s"
  read -r m1 m2 <<<"$m2 $m1"
fi
writer_progress $(($(steps) + 20))
note "failover 2 (SIGKILL): $(latency "$t0" "$(now)")"

# ------------------------------------------------------------------ the writer stops
touch "$T/stop"
rc=0
wait "$writer" || rc=$?
cat "$T/writer.out"
((rc == 0)) || fail "the writer saw an error (exit $rc): $(grep '^error' "$T/journal" || true)"
! grep -q '^error' "$T/journal" || fail "the journal records an error: $(grep '^error' "$T/journal")"
note "whole run: $(latency 0 "$(now)")"

python3 "$W" verify "$MNT/w" "$T/journal" || fail "acknowledged writes are wrong or missing through the mount"
cmp "$T/blob" "$MNT/tree/blob"
[[ $(cat "$MNT/tree/sub/hi") == hello && $(readlink "$MNT/tree/link") == blob ]] || fail "the tree changed"
fs_unmount "$MNT"

# a fresh read-only mount, found with the --sentinel form
mount_at "$T/ro" --sentinel "$SENTINELS_2" --prefix "$PREFIX" --read-only
python3 "$W" verify "$T/ro/w" "$T/journal" || fail "acknowledged writes are wrong or missing after a remount"
cmp "$T/blob" "$T/ro/tree/blob"
expect_fail "read-only" touch "$T/ro/new"
fs_unmount "$T/ro"

# ------------------------------------------------------------------ the toolkit through the sentinels
snap fsck "$PREFIX" >"$T/fsck.out" 2>&1 || fail "fsck through $SENTINEL_URL: $(cat "$T/fsck.out")"
note "fsck: $(tail -1 "$T/fsck.out")"
snap dump "$PREFIX" -o "$T/dump.json" || fail "dump through the sentinel URL"
jq -e --arg p "$PREFIX" '.format == "redisfs-dump" and .prefix == $p and .trailer.records == (.records | length)' \
  "$T/dump.json" >/dev/null || fail "the dump is not a complete redisfs-dump of $PREFIX"
snap copy "$PREFIX" "$PREFIX-snap" || fail "copy through the sentinel URL"
"$REDISFS_SNAP_BIN" --sentinel "$SENTINELS_2" restore "$T/dump.json" --prefix "$PREFIX-restored" ||
  fail "restore through --sentinel"
for p in "$PREFIX-snap" "$PREFIX-restored"; do
  snap fsck "$p" >"$T/fsck.out" 2>&1 || fail "fsck $p: $(cat "$T/fsck.out")"
  mount_at "$T/$p" --redis "$SENTINEL_URL" --prefix "$p" --read-only
  python3 "$W" verify "$T/$p/w" "$T/journal" >/dev/null || fail "$p lacks acknowledged writes"
  cmp "$T/blob" "$T/$p/tree/blob"
  fs_unmount "$T/$p"
done
snap list --json >"$T/list.json"
for p in "$PREFIX" "$PREFIX-snap" "$PREFIX-restored"; do
  jq -e --arg p "$p" 'any(.[]; .prefix == $p)' "$T/list.json" >/dev/null || fail "list lacks $p: $(cat "$T/list.json")"
done
# and the data is on the master the sentinels name now
[[ $(rc_at "$m2" exists "$PREFIX:SB" "$PREFIX-snap:SB" "$PREFIX-restored:SB") == 3 ]] ||
  fail "the filesystems are not on the current master $m2"
"$REDISFS_SNAP_BIN" --sentinel "$SENTINELS_2" delete "$PREFIX-restored" ||
  fail "delete through --sentinel"
[[ $(rc_at "$m2" --scan --pattern "$PREFIX-restored:*" | wc -l) == 0 ]] || fail "delete left keys of $PREFIX-restored"

# a sentinel that wants a user and a password (redisfs(1): the URL's are
# the data nodes', the sentinels' come from REDISFS_SENTINEL_USER and
# REDISFS_SENTINEL_PASSWORD): found with them, refused without
start_node sentinel-auth sentinel \
  "sentinel resolve-hostnames no" \
  "sentinel announce-hostnames no" \
  "sentinel monitor $SENTINEL_MASTER_NAME 127.0.0.1 $m2 2"
sa=$NODE_PORT
rc_at "$sa" acl setuser watcher on '>sentpw' '~*' '&*' +@all >/dev/null
rc_at "$sa" acl setuser default off >/dev/null
wait_for 30 "the sentinel with a password does not name $m2" \
  sh -c "redis-cli -p $sa --user watcher --pass sentpw --no-auth-warning sentinel get-master-addr-by-name $SENTINEL_MASTER_NAME | grep -qx $m2"
AUTH_URL=redis-sentinel://127.0.0.1:$sa/$SENTINEL_MASTER_NAME
REDISFS_SENTINEL_USER=watcher REDISFS_SENTINEL_PASSWORD=sentpw "$REDISFS_SNAP_BIN" --redis "$AUTH_URL" list >"$T/auth.list" 2>&1 ||
  fail "list through a sentinel with a password: $(cat "$T/auth.list")"
grep -q "^$PREFIX " "$T/auth.list" || fail "list through a sentinel with a password: $(cat "$T/auth.list")"
if "$REDISFS_SNAP_BIN" --timeout 3 --redis "$AUTH_URL" list >"$T/noauth.list" 2>&1; then
  fail "a sentinel that wants a password answered without one: $(cat "$T/noauth.list")"
fi
if REDISFS_SENTINEL_USER=watcher REDISFS_SENTINEL_PASSWORD=wrong "$REDISFS_SNAP_BIN" --timeout 3 --redis "$AUTH_URL" list \
  >"$T/badauth.list" 2>&1; then
  fail "a sentinel answered a wrong password: $(cat "$T/badauth.list")"
fi
! grep -q 'sentpw\|wrong' "$T/noauth.list" "$T/badauth.list" || fail "a password shows in a message"
grep -q "sentinel .* refused AUTH: WRONGPASS" "$T/badauth.list" ||
  fail "a wrong sentinel password is not said as one: $(cat "$T/badauth.list")"
note "a sentinel with a password: found with REDISFS_SENTINEL_USER/PASSWORD; without: $(head -1 "$T/noauth.list")"

# A connection that breaks during AUTH (lost_reply_proxy.py in front of the
# sentinel loses the AUTH and closes both sides) is a sentinel out of
# reach, not a refusal: the next sentinel is asked, and a lone one is asked
# again within --timeout.
PROXY=$(free_port)
"${ORPHAN_GUARD[@]}" python3 "$TOPO_HERE/../lost_reply_proxy.py" "$PROXY" "$sa" "$T/arm" &
track_job $!
wait_for 10 "the proxy does not listen on $PROXY" \
  python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1]))).close()' "$PROXY"
for url in "redis-sentinel://127.0.0.1:$PROXY,127.0.0.1:$sa/$SENTINEL_MASTER_NAME" \
  "redis-sentinel://127.0.0.1:$PROXY/$SENTINEL_MASTER_NAME"; do
  rm -f "$T/arm.fired"
  echo '-AUTH watcher' >"$T/arm"
  REDISFS_SENTINEL_USER=watcher REDISFS_SENTINEL_PASSWORD=sentpw "$REDISFS_SNAP_BIN" --timeout 10 --redis "$url" list \
    >"$T/broken.list" 2>&1 || fail "list through $url, AUTH lost once: $(cat "$T/broken.list")"
  [[ -e $T/arm.fired ]] || fail "the proxy lost no AUTH (list through $url)"
  grep -q "^$PREFIX " "$T/broken.list" || fail "list through $url, AUTH lost once: $(cat "$T/broken.list")"
done
note "a sentinel whose connection breaks during AUTH: the next one asked, a lone one asked again"
REDISFS_SENTINEL_USER=watcher REDISFS_SENTINEL_PASSWORD=sentpw mount_at "$T/auth" --redis "$AUTH_URL" --prefix "$PREFIX" --read-only
cmp "$T/blob" "$T/auth/tree/blob"
fs_unmount "$T/auth"

# the hung first master: woken, then stopped for good
cont_node "$m0"
kill_node "$m0"
note "ok"

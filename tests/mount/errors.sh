#!/usr/bin/env bash
# errors: redisfs refuses what it cannot do with a short, clear message, a
# non-zero exit, and nothing left behind (no mount, no daemon): a bad
# prefix, an unreachable server, an evicting server (unless allowed), a
# missing mount point, a wrong password. A password never shows up in the
# output. A command line that cannot be used exits 2 with one line that
# starts with "redisfs: ".
. "$(dirname "$0")/lib.sh"

# refused MAX_LINES TEXT ARGS...: redisfs ARGS must fail within 60 s, in at
# most MAX_LINES lines of output that mention TEXT, leaving no mount.
refused() {
  local max=$1 text=$2 out rc=0 lines
  shift 2
  out=$(timeout 60 "$REDISFS_BIN" "$@" 2>&1) || rc=$?
  if ((rc == 0)); then
    unmount_at "${*: -1}"
    fail "redisfs $* succeeded; expected a failure mentioning '$text'"
  fi
  ((rc != 124)) || fail "redisfs $* did not give up within 60 s"
  [[ -z ${WANT_RC:-} || $rc == "$WANT_RC" ]] || fail "redisfs $* exited $rc, want $WANT_RC: $out"
  [[ ${out,,} == *"${text,,}"* ]] || fail "redisfs $* failed ($rc) without mentioning '$text': $out"
  lines=$(printf '%s\n' "$out" | wc -l)
  ((lines <= max)) || fail "redisfs $* printed $lines lines, want at most $max: $out"
  ! is_mounted "${*: -1}" || fail "redisfs $* failed but left a mount"
  ! _find_daemon "${*: -1}" >/dev/null || fail "redisfs $* failed but left a daemon running"
  OUT=$out
}

url=unix://$SOCK

refused 1 prefix --redis "$url" --prefix 'a:b' "$MNT"
refused 1 prefix --redis "$url" --prefix 'a*' "$MNT"
refused 1 prefix --redis "$url" --prefix 'a b' "$MNT"
refused 1 prefix --redis "$url" --prefix '' "$MNT"
note "bad prefixes refused: $OUT"

refused 2 "$T/no-such.sock" --redis "unix://$T/no-such.sock" --prefix "$PREFIX" "$MNT"
note "unreachable server: $OUT"
refused 2 "127.0.0.1" --redis "redis://127.0.0.1:1/0" --prefix "$PREFIX" "$MNT"
refused 2 "url" --redis "http://example.com/" --prefix "$PREFIX" "$MNT"

# a password in the URL never appears
refused 2 "127.0.0.1" --redis "redis://someone:S3cretPassw0rd@127.0.0.1:1/0" --prefix "$PREFIX" "$MNT"
[[ $OUT != *S3cretPassw0rd* ]] || fail "the password shows in the error: $OUT"
REDISFS_PASSWORD=Env5ecret refused 2 "127.0.0.1" --redis "redis://127.0.0.1:1/0" --prefix "$PREFIX" "$MNT"
[[ $OUT != *Env5ecret* ]] || fail "the password from REDISFS_PASSWORD shows in the error: $OUT"

# a server that wants a password
rcli config set requirepass 'C0rrect-Horse' >/dev/null
rcli() { redis-cli --no-auth-warning -a 'C0rrect-Horse' -s "$SOCK" "$@"; }
refused 3 "" --redis "$url" --prefix "$PREFIX" "$MNT"
note "no password: $OUT"
printf 'Wr0ngPassw0rd\n' >"$T/wrong-pw"
refused 3 "" --redis "$url" --password-file "$T/wrong-pw" --prefix "$PREFIX" "$MNT"
[[ $OUT != *Wr0ngPassw0rd* ]] || fail "the wrong password shows in the error: $OUT"
REDISFS_PASSWORD=Wr0ngPassw0rd refused 3 "" --redis "$url" --prefix "$PREFIX" "$MNT"
[[ $OUT != *Wr0ngPassw0rd* ]] || fail "the wrong password shows in the error: $OUT"
printf 'C0rrect-Horse\n' >"$T/pw"
mount_fs --password-file "$T/pw"
echo ok >"$MNT/f"
unmount_fs
grep -r C0rrect-Horse "$T"/daemon.*.log && fail "the password shows in the daemon's output"
rcli config set requirepass '' >/dev/null
rcli() { redis-cli -s "$SOCK" "$@"; }

# mount points that cannot be used
refused 2 "$T/does/not/exist" --redis "$url" --prefix "$PREFIX" "$T/does/not/exist"
touch "$T/a-file"
refused 2 "$T/a-file" --redis "$url" --prefix "$PREFIX" "$T/a-file"

# a server older than 6.2: refused, exit 1 (tests/fake_redis.py answers INFO
# as one)
python3 "$HERE/../fake_redis.py" "$T/old.sock" 6.0.9 &
OLD=$!
for ((i = 0; i < 100; i++)); do [[ -S $T/old.sock ]] && break; sleep 0.05; done
WANT_RC=1 refused 1 "the Redis server is version 6.0.9; redisfs needs 6.2 or newer" --redis "unix://$T/old.sock" \
  --prefix "$PREFIX" "$MNT"
kill "$OLD" 2>/dev/null || true
wait "$OLD" 2>/dev/null || true

# an evicting server: refused read-write, fine read-only or when allowed
rcli config set maxmemory-policy allkeys-lru >/dev/null
WANT_RC=1 refused 3 "evict" --redis "$url" --prefix "$PREFIX" "$MNT"
note "evicting server: $OUT"
mount_fs --read-only
[[ $(cat "$MNT/f") == ok ]] || fail "read-only mount of an evicting server cannot read"
unmount_fs
mount_fs --allow-evicting-server
echo again >"$MNT/g"
unmount_fs
rcli config set maxmemory-policy noeviction >/dev/null

# usage errors: exit 2 and one line that names the program
usage_error() {  # TEXT ARGS...
  local text=$1 out rc=0
  shift
  out=$(timeout 60 "$REDISFS_BIN" "$@" 2>&1) || rc=$?
  ((rc == 2)) || fail "redisfs $* exited $rc, want 2: $out"
  [[ $out == "redisfs: "* && $out == *"$text"* ]] || fail "redisfs $*: not 'redisfs: ...$text...': $out"
  (($(printf '%s\n' "$out" | wc -l) == 1)) || fail "redisfs $*: more than one line: $out"
  ! is_mounted "${*: -1}" || fail "redisfs $* failed but left a mount"
}
usage_error "--no-such-option" --no-such-option "$MNT"
usage_error "MOUNTPOINT is required" --redis "$url"
usage_error "not expected: extra" --redis "$url" "$PREFIX" "$MNT" extra
usage_error "prefix" --redis "$url" 'a:b' "$MNT"
usage_error "prefix" --redis "$url" --prefix 'a b' "$MNT"
usage_error "SOURCE names prefix 'B' but --prefix named 'A'" --redis "$url" --prefix A B "$MNT"
usage_error "-o prefix names prefix 'C' but SOURCE named 'A'" --redis "$url" A -o prefix=C "$MNT"
usage_error "-o redis= and its command-line option name different values" --redis "$url" -o redis=unix:///x "$MNT"
usage_error "--log-level" --redis "$url" -o log_level=loud "$MNT"
refused 2 "block" --redis "$url" --prefix "N$PREFIX" --block-size 3000 "$MNT"
refused 2 "" --redis "$url" --prefix "$PREFIX" -o attr_timeout=banana "$MNT"
refused 2 "--sync-replicas" --redis "$url" --prefix "$PREFIX" --sync-replicas -1 "$MNT"
refused 2 "sync_replicas" --redis "$url" --prefix "$PREFIX" -o sync_replicas=some "$MNT"
WANT_RC=2 refused 1 "--timeout" --redis "$url" --prefix "$PREFIX" --timeout 0 "$MNT"
WANT_RC=2 refused 1 "--timeout" --redis "$url" --prefix "$PREFIX" -o timeout=86401 "$MNT"
WANT_RC=2 REDISFS_TIMEOUT=soon refused 1 "REDISFS_TIMEOUT" --redis "$url" --prefix "$PREFIX" "$MNT"

# server options that do not fit: named, before any connection, exit 2 (a
# file they name that cannot be read: 1)
WANT_RC=2 refused 1 "--tls needs a TCP server" --redis "$url" --prefix "$PREFIX" --tls "$MNT"
WANT_RC=2 refused 1 "--tls needs a TCP server" --redis "$url" --prefix "$PREFIX" -o tls "$MNT"
WANT_RC=2 refused 1 "--tls-cert needs TLS: use rediss:// or --tls" --redis redis://127.0.0.1:1 --tls-cert "$T/a-file" \
  --prefix "$PREFIX" "$MNT"
WANT_RC=2 REDISFS_TLS_CA_CERT=$T/a-file refused 1 "REDISFS_TLS_CA_CERT needs TLS" --redis redis://127.0.0.1:1 \
  --prefix "$PREFIX" "$MNT"
WANT_RC=2 refused 1 "--tls-key needs the client certificate" --redis rediss://127.0.0.1:1 -o tls_key="$T/a-file" \
  --prefix "$PREFIX" "$MNT"
: >"$T/empty-password"
WANT_RC=1 refused 1 "password file $T/empty-password is empty" --redis redis://127.0.0.1:1 \
  --password-file "$T/empty-password" --prefix "$PREFIX" "$MNT"
WANT_RC=1 refused 1 "$T/no-such-ca.pem" --redis rediss://127.0.0.1:1 --tls-ca-cert "$T/no-such-ca.pem" --prefix "$PREFIX" "$MNT"
WANT_RC=2 refused 1 "--sentinel and --redis" --redis "$url" --sentinel 127.0.0.1:1/mymaster --prefix "$PREFIX" "$MNT"
WANT_RC=2 refused 1 "--tls needs a server given by --redis" --data-dir "$T/never" --tls --prefix "$PREFIX" "$MNT"
[[ ! -e $T/never ]] || fail "a refused embedded mount created its data directory"
# --data-dir is the embedded server's: beside a server named otherwise it
# would be ignored
WANT_RC=2 refused 1 "--data-dir names the embedded server's directory, but --redis names a server" \
  --data-dir "$T/never" --redis "$url" --prefix "$PREFIX" "$MNT"
WANT_RC=2 REDISFS_URL=$url refused 1 "but REDISFS_URL names a server" -o data_dir="$T/never" --prefix "$PREFIX" "$MNT"
[[ ! -e $T/never ]] || fail "a refused mount created the data directory it was given beside a server"
# of -o ro and -o rw the last wins (mount(8)); --read-only with -o rw is a contradiction
WANT_RC=2 refused 1 "--read-only asks for a read-only mount, -o rw for a read-write one" --read-only -o rw \
  --redis "$url" --prefix "$PREFIX" "$MNT"

# the new options are accepted (the timeout and WAIT count are the client's)
mount_fs --timeout 5 --sync-replicas 0 -o timeout=7,sync_replicas=0
[[ $(cat "$MNT/f") == ok ]] || fail "a mount with --timeout and --sync-replicas cannot read"
unmount_fs
check_consistency --no-orphans

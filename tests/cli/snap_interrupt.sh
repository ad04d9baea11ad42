#!/usr/bin/env bash
# An interrupted (SIGTERM / SIGINT) dump, restore or copy cleans up after
# itself: exit 1 saying "interrupted", no temporary or staging keys, no
# half file under the final name (nor a file there before changed), no keys under the restore's or the
# copy's target, the copy's source as it was. A second signal, of either
# kind, ends the command at once; what it leaves expires by itself.
. "$(dirname "$0")/snap_lib.sh"

make_fs BIG
# 3000 more blocks (12 MB): the dump cannot fit in a pipe's buffer.
add_blocks BIG 3 3 3000
# The file and the totals say so, as the scripts would have kept them.
rcli hset BIG:INODE:3 size $((3003 * 4096)) bytes $((8192 + 3000 * 4096)) >/dev/null
rcli hset BIG:SB bytes $((13 + 8192 + 3000 * 4096)) >/dev/null
[[ $(key_count BIG) == 3012 ]] || fail "BIG has $(key_count BIG) keys"
keys_before=$(dbsize)

for sig in TERM INT; do
  note "dump, SIG$sig while blocked on a full pipe"
  rm -f "$T/fifo"
  mkfifo "$T/fifo"
  (exec 3<"$T/fifo"; sleep 1.5; cat <&3 >/dev/null) &
  reader=$!
  rc=0
  "$REDISFS_SNAP_BIN" --redis "$URL" -q dump BIG >"$T/fifo" 2>"$T/err" &
  pid=$!
  sleep 0.5
  kill -"$sig" "$pid"
  wait "$pid" || rc=$?
  wait "$reader"
  [[ $rc == 1 ]] || fail "interrupted dump exited with $rc: $(cat "$T/err")"
  grep -q 'interrupted' "$T/err" || fail "interrupted dump says: $(cat "$T/err")"
  [[ $(dbsize) == "$keys_before" ]] || fail "the interrupted dump left $(($(dbsize) - keys_before)) keys"
  [[ -z $(rcli --scan --pattern '*~dump~*') ]] || fail "temporary dump keys left behind"
done

note "dump -o FILE, interrupted: no file, no temporary file"
snap -q dump BIG -o "$T/big.json"
mv "$T/big.json" "$T/full.json"
"$REDISFS_SNAP_BIN" --redis "$URL" -q dump BIG -o "$T/big.json" 2>"$T/err" &
pid=$!
# once it writes (its temporary file is there: the handlers are installed
# long before), or done already; a fixed sleep killed a slow start (an
# ASan build's) before it had a handler, which proves nothing
for ((i = 0; i < 1000; i++)); do
  if compgen -G "$T/big.json.tmp-*" >/dev/null || [[ -e $T/big.json ]] || ! kill -0 "$pid" 2>/dev/null; then
    break
  fi
  sleep 0.01
done
kill -TERM "$pid" 2>/dev/null || true  # it may be done already
rc=0
wait "$pid" || rc=$?
[[ $rc == 1 || $rc == 0 ]] || fail "dump -o exited with $rc"
note "  $( ((rc == 1)) && echo "interrupted while writing" || echo "done before the signal came")"
if [[ $rc == 1 ]]; then
  [[ ! -e $T/big.json ]] || fail "an interrupted dump left $T/big.json"
else
  cmp <(jq -c '.records | sort_by(.key)' "$T/big.json") <(jq -c '.records | sort_by(.key)' "$T/full.json")
fi
[[ -z $(ls "$T" | grep 'big.json.tmp') ]] || fail "temporary file left behind"
[[ $(dbsize) == "$keys_before" ]] || fail "the interrupted dump left keys"

note "dump -o FILE over an existing FILE, failed or interrupted: FILE stays as it was"
cp "$T/full.json" "$T/kept.json"
expect_fail snap dump NOSUCH -o "$T/kept.json"
grep -q "no filesystem at prefix 'NOSUCH'" "$T/err" || fail "a dump of no filesystem says: $(cat "$T/err")"
cmp -s "$T/kept.json" "$T/full.json" || fail "a failed dump changed the file it was to replace"
# (slowed: surely interrupted while it writes its temporary file)
REDISFS_FAULT=dump-stream-slow "$REDISFS_SNAP_BIN" --redis "$URL" -q dump BIG -o "$T/kept.json" 2>"$T/err" &
pid=$!
for ((i = 0; i < 1000; i++)); do
  compgen -G "$T/kept.json.tmp-*" >/dev/null && [[ -s $(compgen -G "$T/kept.json.tmp-*" | head -1) ]] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.01
done
kill -TERM "$pid" 2>/dev/null || true
rc=0
wait "$pid" || rc=$?
((rc == 1)) || fail "a slowed dump interrupted while writing exited $rc: $(cat "$T/err")"
grep -q 'interrupted' "$T/err" || fail "the interrupted dump says: $(cat "$T/err")"
cmp -s "$T/kept.json" "$T/full.json" || fail "an interrupted dump changed the file it was to replace"
[[ -z $(ls "$T" | grep 'kept.json.tmp') ]] || fail "temporary file left behind"
[[ $(dbsize) == "$keys_before" ]] || fail "the interrupted dump left keys"

note "restore, SIGTERM while waiting for the end of its input"
rm -f "$T/fifo"
mkfifo "$T/fifo"
(cat "$T/full.json"; touch "$T/written"; sleep 3) >"$T/fifo" &
writer=$!
rc=0
"$REDISFS_SNAP_BIN" --redis "$URL" -q restore --prefix TARGET "$T/fifo" 2>"$T/err" &
pid=$!
# Once the whole dump is in the pipe (however slow the machine), the
# restore waits for the end of its input: interrupt it there.
for ((i = 0; i < 600; i++)); do
  [[ -e $T/written ]] && break
  sleep 0.05
done
sleep 0.2
kill -TERM "$pid"
wait "$pid" || rc=$?
wait "$writer"
[[ $rc == 1 ]] || fail "interrupted restore exited with $rc: $(cat "$T/err")"
grep -q 'interrupted' "$T/err" || fail "interrupted restore says: $(cat "$T/err")"
[[ $(key_count TARGET) == 0 ]] || fail "the interrupted restore left keys under TARGET"
[[ -z $(rcli --scan --pattern '*~restore~*') ]] || fail "staging keys left behind"
[[ $(dbsize) == "$keys_before" ]] || fail "the interrupted restore changed the server"

note "and without interruption, the same restore works"
snap -q restore --prefix TARGET "$T/full.json"
[[ $(key_count TARGET) == 3012 ]] || fail "TARGET has $(key_count TARGET) keys"
[[ $(fs_digest TARGET) == "$(fs_digest BIG)" ]] || fail "TARGET differs from BIG"

# copy_interrupted FAULT SIGNAL...: a copy of BIG to COPY (slowed down by
# FAULT), sent the signals 0.6 s apart; sets rc, its exit status
copy_interrupted() {
  local fault=$1 sig
  shift
  REDISFS_FAULT=$fault "$REDISFS_SNAP_BIN" --redis "$URL" -q copy BIG COPY 2>"$T/err" &
  pid=$!
  for sig in "$@"; do
    sleep 0.6
    kill -"$sig" "$pid"
  done
  rc=0
  wait "$pid" || rc=$?
}

# every key on the server but BIG's change record, which the copy's
# instant started afresh (cow_begin.lua: the interrupted snapshot's
# record went with it, so the next incremental dump compares all)
server_keys() {
  rcli --scan | { grep -vx 'BIG:CHANGED' || true; } | sort
}
big=$(fs_digest BIG)
server_keys >"$T/keys.before"
for sig in INT TERM; do
  note "copy, SIG$sig midway: the partial copy removed, the source as it was"
  copy_interrupted copy-staging-slow "$sig"
  [[ $rc == 1 ]] || fail "interrupted copy exited with $rc: $(cat "$T/err")"
  grep -q 'interrupted' "$T/err" || fail "interrupted copy says: $(cat "$T/err")"
  [[ $(key_count COPY) == 0 ]] || fail "the interrupted copy left keys under COPY"
  [[ -z $(rcli --scan --pattern '*~copy~*') ]] || fail "staging keys left behind"
  [[ $(fs_digest BIG) == "$big" ]] || fail "the interrupted copy changed BIG"
  server_keys | diff "$T/keys.before" - >"$T/keys.diff" || fail "the interrupted copy changed the server: $(head -3 "$T/keys.diff")"
done

note "copy, a second signal while it cleans up ends it at once (SIGINT, then SIGTERM)"
copy_interrupted copy-slow-cleanup INT TERM
[[ $rc == 143 ]] || fail "the copy sent SIGINT then SIGTERM exited with $rc, not by SIGTERM: $(cat "$T/err")"
# what it left expires by itself
while read -r key; do
  [[ -z $key ]] && continue
  ttl=$(rcli pttl "$key")
  ((ttl > 0)) || fail "$key, left by the killed copy, has no time to live ($ttl)"
done < <(rcli --scan --pattern '*~copy~*'; rcli --scan --pattern 'COPY:*'; rcli --scan --pattern 'BIG:COW')
[[ $(fs_digest BIG | { grep -v '^COW ' || true; }) == "$big" ]] || fail "the killed copy changed BIG"
rcli del COPY:RESERVED >/dev/null # (would lapse in 30 s: the tool died)
snap -q copy BIG COPY || fail "a copy after the killed one"
[[ -z $(rcli --scan --pattern '*~copy~*') ]] || fail "the killed copy's staging keys outlived the next copy"
[[ $(fs_digest COPY) == "$big" ]] || fail "COPY differs from BIG"
note "ok"

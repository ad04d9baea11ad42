#!/usr/bin/env bash
# Compressed dumps: dump -o FILE.zst / FILE.gz (or --compress) and restore
# of each, from a file and from a pipe, compared key by key with the source
# (DEBUG DIGEST-VALUE); restore tells the compression by magic whatever the
# name; zstd -d / gzip -d give JSON that jq reads, with the plain dump's
# trailer; a truncated or corrupt stream is one line and leaves nothing
# (no staging keys, no target), the byte it names the decompressed JSON's;
# usage errors exit 2.
. "$(dirname "$0")/snap_lib.sh"

make_fs SKX
# A file of 300 blocks (text and random halves) so the JSON (about 1.5 MB)
# passes many times through the codecs' 128 KiB buffers.
rcli eval "
  math.randomseed(7)
  for i = 0, 299 do
    local t = {}
    if i % 2 == 0 then
      for j = 1, 4096 do t[j] = string.char(math.random(0, 255)) end
    else
      for j = 1, 256 do t[j] = string.format('line %05d of %03d\n', j, i) end
    end
    redis.call('SET', 'SKX:BLK:6:' .. i, string.sub(table.concat(t), 1, 4096))
  end" 0 >/dev/null
now=$(date +%s%N)
rcli hset SKX:INODE:6 type file mode 0644 uid 0 gid 0 size $((300 * 4096)) nlink 1 rdev 0 bytes $((300 * 4096)) \
  atime "$now" mtime "$now" ctime "$now" >/dev/null
rcli hset SKX:DIR:1 big.bin 6 >/dev/null
rcli hset SKX:SB inodes 6 bytes $((8205 + 300 * 4096)) >/dev/null
snap -q fsck SKX  # the test's filesystem is whole
src=$(fs_digest SKX)

magic() { head -c 4 "$1" | od -An -tx1 | tr -d ' \n'; }

note "dump by extension: .zst, .gz, and plain"
snap dump SKX -o "$T/fs.json.zst" 2>"$T/err"
grep -q "^dumped SKX to $T/fs.json.zst (zstd, .* of JSON)" "$T/err" || fail "zstd summary: $(cat "$T/err")"
snap -q dump SKX -o "$T/fs.json.gz"
snap -q dump SKX -o "$T/fs.json"
[[ $(magic "$T/fs.json.zst") == 28b52ffd ]] || fail ".zst is not zstd: $(magic "$T/fs.json.zst")"
[[ $(magic "$T/fs.json.gz") == 1f8b* ]] || fail ".gz is not gzip: $(magic "$T/fs.json.gz")"
[[ $(head -c 1 "$T/fs.json") == '{' ]] || fail "a .json dump is not plain JSON"
plain=$(stat -c %s "$T/fs.json")
(($(stat -c %s "$T/fs.json.zst") < plain * 9 / 10)) || fail "zstd did not make the dump smaller"
(($(stat -c %s "$T/fs.json.gz") < plain * 9 / 10)) || fail "gzip did not make the dump smaller"
[[ -z $(ls "$T" | grep 'tmp-') ]] || fail "temporary dump file left behind"

note "the decompressed dump is the JSON jq reads, with the same trailer"
trailer=$(jq -c .trailer "$T/fs.json")
[[ $(zstd -dc "$T/fs.json.zst" | jq -c .trailer) == "$trailer" ]] || fail "zstd -d: another trailer"
[[ $(gzip -dc "$T/fs.json.gz" | jq -c .trailer) == "$trailer" ]] || fail "gzip -d: another trailer"
cmp <(zstd -dc "$T/fs.json.zst" | jq -c '.records | sort_by(.key)') <(jq -c '.records | sort_by(.key)' "$T/fs.json")

note "round trip of each, from the file"
for f in fs.json.zst fs.json.gz fs.json; do
  p=R$(tr -dc 'A-Za-z' <<<"$f")
  snap restore "$T/$f" --prefix "$p" 2>"$T/err"
  [[ $(fs_digest "$p") == "$src" ]] || fail "restore of $f differs"
  [[ $(sb_content "$p") == "$(sb_content SKX)" ]] || fail "restore of $f: superblock differs"
done
grep -q '^restored .*fs.json (dump of SKX) as' "$T/err" || fail "plain restore summary: $(cat "$T/err")"
snap restore "$T/fs.json.zst" --prefix SUMMARY 2>"$T/err"
grep -q '(zstd dump of SKX) as SUMMARY' "$T/err" || fail "zstd restore summary: $(cat "$T/err")"

note "restore from a pipe, and under any name: told by magic"
# shellcheck disable=SC2002  # a pipe, not a file, on purpose
cat "$T/fs.json.zst" | snap -q restore --prefix PIPEZ
cat "$T/fs.json.gz" | snap -q restore - --prefix PIPEG
cp "$T/fs.json.zst" "$T/misnamed.json"
snap -q restore "$T/misnamed.json" --prefix MISNAMED
snap -q dump SKX --compress zstd | "$REDISFS_SNAP_BIN" -q --redis "$URL" restore --prefix DUMPPIPE
snap -q restore --dry-run "$T/fs.json.gz" --prefix DRY
for p in PIPEZ PIPEG MISNAMED DUMPPIPE; do
  [[ $(fs_digest "$p") == "$src" ]] || fail "$p differs"
done

note "a zstd stream that starts with a skippable frame (pzstd's) is zstd too"
pzstd -q -p 2 -c "$T/fs.json" >"$T/parallel.zst"
[[ $(magic "$T/parallel.zst") == 502a4d18 ]] || fail "pzstd did not start with a skippable frame: $(magic "$T/parallel.zst")"
snap restore "$T/parallel.zst" --prefix PZSTD 2>"$T/err"
grep -q '(zstd dump of SKX) as PZSTD' "$T/err" || fail "pzstd restore summary: $(cat "$T/err")"
[[ $(fs_digest PZSTD) == "$src" ]] || fail "the restore of a pzstd dump differs"

note "--compress overrides the name; stdout stays plain by default"
# (head closes the pipe early: the dump's write error is expected)
[[ $(snap -q dump SKX 2>/dev/null | head -c 1) == '{' ]] || fail "dump to stdout is not plain JSON"
[[ $(snap -q dump SKX --compress gzip 2>/dev/null | head -c 2 | od -An -tx1 | tr -d ' \n') == 1f8b ]] ||
  fail "--compress gzip to stdout"
snap -q dump SKX --compress none -o "$T/none.zst"
[[ $(head -c 1 "$T/none.zst") == '{' ]] || fail "--compress none wrote compressed data"
snap -q dump SKX --compress zstd --compress-level 19 -o "$T/nine.json"
[[ $(magic "$T/nine.json") == 28b52ffd ]] || fail "--compress zstd -o x.json"
zstd -dc "$T/nine.json" | jq -e '.format == "redisfs-dump"' >/dev/null

# Into a FIFO named .zst: written to (compressed), never replaced.
mkfifo "$T/pipe.zst"
cat "$T/pipe.zst" >"$T/from-fifo" &
snap -q dump SKX -o "$T/pipe.zst"
wait $!
[[ -p $T/pipe.zst ]] || fail "dump -o FIFO.zst replaced the FIFO"
[[ $(magic "$T/from-fifo") == 28b52ffd ]] || fail "dump -o FIFO.zst is not zstd"
snap -q restore "$T/from-fifo" --prefix FIFO
[[ $(fs_digest FIFO) == "$src" ]] || fail "restore of the dump through a FIFO differs"

note "usage errors exit 2 and write nothing"
for bad in "--compress bogus" "--compress-level 0" "--compress-level 99" "--compress none --compress-level 3"; do
  # shellcheck disable=SC2086  # the words of $bad are separate arguments
  expect_fail snap dump SKX -o "$T/bad.json.zst" $bad
  [[ $LAST_RC == 2 ]] || fail "dump $bad: exit $LAST_RC"
  [[ $(grep -c . "$T/err") -le 2 ]] || fail "dump $bad: $(cat "$T/err")"
  [[ -z $(ls "$T" | grep 'bad.json') ]] || fail "dump $bad left a file"
done
expect_fail snap dump NOPE -o "$T/nope.json.zst"
[[ -z $(ls "$T" | grep 'nope.json') ]] || fail "a failed compressed dump left a file"

# refused FILE WHAT: restore must fail with one line containing WHAT and
# leave the server as it was: no staging keys, no target.
refused() {
  local file=$1 what=$2 before
  before=$(dbsize)
  expect_fail snap restore "$file" --prefix BROKEN
  [[ $LAST_RC == 1 ]] || fail "restore of $file: exit $LAST_RC"
  [[ $(wc -l <"$T/err") == 1 ]] || fail "restore of $file: not one line: $(cat "$T/err")"
  grep -q -- "$what" "$T/err" || fail "restore of $file: $(cat "$T/err")"
  [[ $(dbsize) == "$before" ]] || fail "restore of $file changed the server"
  [[ $(key_count BROKEN) == 0 ]] || fail "restore of $file left BROKEN"
  [[ $(rcli --scan --pattern '*~restore~*' | wc -l) == 0 ]] || fail "restore of $file left staging keys"
}

note "truncated and corrupt streams are refused, nothing left (from a file)"
size=$(stat -c %s "$T/fs.json.zst")
head -c $((size / 2)) "$T/fs.json.zst" >"$T/half.zst"
refused "$T/half.zst" 'zstd stream is truncated'
head -c 20 "$T/parallel.zst" >"$T/skippable-only.zst"  # (pzstd's skippable frame, then 8 bytes)
refused "$T/skippable-only.zst" 'zstd stream is truncated'
# Only the frame's checksum cut: the JSON inside is whole, the stream is not.
head -c $((size - 2)) "$T/fs.json.zst" >"$T/nochecksum.zst"
{ zstd -dc "$T/nochecksum.zst" 2>/dev/null || true; } | jq -e '.trailer.records' >/dev/null ||
  fail "the JSON should be whole"
refused "$T/nochecksum.zst" 'zstd stream is truncated'
cp "$T/fs.json.gz" "$T/corrupt.gz"
printf '\xde\xad\xbe\xef\xde\xad\xbe\xef' | dd of="$T/corrupt.gz" bs=1 seek=$(($(stat -c %s "$T/corrupt.gz") / 2)) \
  conv=notrunc 2>/dev/null
refused "$T/corrupt.gz" 'gzip stream is corrupt'
# Only the CRC-32 at the end altered: the JSON is whole, the stream is not.
cp "$T/fs.json.gz" "$T/badcrc.gz"
printf '\x00\x00\x00\x00' | dd of="$T/badcrc.gz" bs=1 seek=$(($(stat -c %s "$T/badcrc.gz") - 8)) conv=notrunc 2>/dev/null
refused "$T/badcrc.gz" 'gzip stream is corrupt (incorrect data check'
# From a pipe too; but there it is a broken `dump | restore`: what was
# staged is kept for --resume (never under the target), and a resume from
# the whole compressed dump finishes it.
# shellcheck disable=SC2002
expect_fail bash -c "cat '$T/half.zst' | '$REDISFS_SNAP_BIN' --redis '$URL' restore --prefix PIPED"
grep -q '^redisfs-snap: error: stdin: dump: the zstd stream is truncated.*kept for 12 h' "$T/err" ||
  fail "pipe: $(cat "$T/err")"
[[ $(key_count PIPED) == 0 ]] || fail "a truncated stream from a pipe wrote PIPED"
snap -q restore --resume "$T/fs.json.zst" --prefix PIPED
[[ $(fs_digest PIPED) == "$src" ]] || fail "the resumed restore of a zstd dump differs"
[[ -z $(rcli --scan --pattern 'PIPED~*') ]] || fail "the resume left $(rcli --scan --pattern 'PIPED~*' | head -3)"

note "hostile: a well-formed zstd frame of garbage is refused like bad JSON"
printf 'this is not JSON\n' >"$T/garbage.json"
zstd -q -c "$T/garbage.json" >"$T/garbage.zst"
refused "$T/garbage.json" 'not JSON at byte'
refused "$T/garbage.zst" 'not JSON at byte'
# (the byte an error names is the decompressed JSON's: the same in all three)
printf '{"format":"redisfs-dump","version":1, oops}\n' >"$T/late.json"
zstd -q -c "$T/late.json" >"$T/late.zst"
gzip -c "$T/late.json" >"$T/late.gz"
for f in late.json late.zst late.gz; do
  refused "$T/$f" 'not JSON at byte 39:'
  sed "s|$T/$f|FILE|" "$T/err" >"$T/$f.err"
done
cmp -s "$T/late.json.err" "$T/late.zst.err" && cmp -s "$T/late.json.err" "$T/late.gz.err" ||
  fail "the errors of one dump, compressed or not, differ: $(cat "$T"/late.*.err)"
{ printf 'x'; head -c 100000 /dev/urandom; } | gzip -c >"$T/random.gz"
refused "$T/random.gz" 'not JSON at byte'
# A compressed dump of a dump whose checksum was altered: the trailer check
# is on the JSON, compressed or not.
jq -c '.trailer.sha256 = ("0" * 64)' "$T/fs.json" | zstd -q -c >"$T/badsum.zst"
refused "$T/badsum.zst" 'checksum mismatch'

note "ok"

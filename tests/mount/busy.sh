#!/usr/bin/env bash
# Outages cost latency, not errors: a server kept busy by another client's
# scripts (BUSY answered to every other client while one runs) slows a
# mount and fails nothing. In the default mode and on a writeback mount
# (whose flushes pipeline a file's changes, sent again in order when the
# server ran them out of order): tar x of /usr/include/linux (+ syncfs)
# gives the same tree; small files written, chmodded, read back and
# renamed from Python; rm -rf of the tree; the filesystem is consistent
# afterwards, and a second mount sees what the first wrote.
. "$(dirname "$0")/lib.sh"
need_tools tar diff

for mode in default writeback; do
  opts=()
  [[ $mode == writeback ]] && opts=(-o writeback)
  note "$mode mode: tar x, small files, rm -rf under BUSY refusals"
  mount_fs "${opts[@]}"
  busy_scripts_start "$SOCK"
  mkdir "$MNT/$mode"
  tar -C /usr/include -cf - linux | tar -C "$MNT/$mode" -xf - || fail "tar x failed"
  sync -f "$MNT"
  python3 - "$MNT/$mode/py" <<'PY' || fail "the small files"
import os, sys
d = sys.argv[1]
os.mkdir(d)
for i in range(300):
    p = os.path.join(d, "f%d" % i)
    with open(p, "wb") as f:
        f.write(b"%d:" % i * (i * 37 % 3000))
    if i % 3 == 0:
        os.chmod(p, 0o600)
for i in range(300):
    p = os.path.join(d, "f%d" % i)
    with open(p, "rb") as f:
        assert f.read() == b"%d:" % i * (i * 37 % 3000), p
    assert (os.stat(p).st_mode & 0o777) == (0o600 if i % 3 == 0 else 0o644), p
    if i % 2 == 0:
        os.rename(p, os.path.join(d, "g%d" % i))
PY
  diff -r /usr/include/linux "$MNT/$mode/linux" >/dev/null || fail "the extracted tree differs"
  rm -rf "$MNT/$mode/linux" || fail "rm -rf failed"
  busy_scripts_stop
  [[ ! -e $MNT/$mode/linux ]] || fail "rm -rf left the tree"
  unmount_fs
  check_consistency >/dev/null || fail "inconsistent after the $mode mode: $(check_consistency 2>&1 | tail -3)"
done

note "a new mount sees both modes' files"
mount_fs
[[ $(find "$MNT/default/py" "$MNT/writeback/py" -type f | wc -l) == 600 ]] || fail "files missing"
for mode in default writeback; do
  [[ $(cat "$MNT/$mode/py/g2") == "$(python3 -c 'import sys; sys.stdout.write("2:" * 74)')" ]] ||
    fail "$mode: g2 differs"
done
unmount_fs
note "ok"

#!/usr/bin/env bash
# symlink_cache: the kernel keeps a symlink's target (FUSE_CAP_CACHE_SYMLINKS,
# fs/op_init.cpp), so following a symlink again costs no READLINK (the
# daemon's counters, SIGUSR1); a symlink another mount replaces under the
# same name (a new inode) shows its new target once entry_timeout passed.
. "$(dirname "$0")/lib.sh"

mount_fs
mkdir "$MNT/d"
echo one >"$MNT/d/one"
echo two >"$MNT/d/two"
ln -s d/one "$MNT/link"
unmount_fs

mount_fs
read -r n0 _ < <(trips readlink)
for _ in 1 2 3 4 5; do
  [[ $(readlink "$MNT/link") == d/one ]] || fail "readlink: $(readlink "$MNT/link")"
  [[ $(cat "$MNT/link") == one ]] || fail "cat through the link: $(cat "$MNT/link")"
done
read -r n1 _ < <(trips readlink)
((n1 - n0 == 1)) || fail "5 readlinks and 5 follows of one symlink sent $((n1 - n0)) READLINKs, want 1"

B=$T/b
mount_at "$B"
ln -sfn d/two "$B/link.new"
mv -T "$B/link.new" "$B/link"
sleep 1.2 # entry_timeout (1 s): this mount looks the name up again
[[ $(readlink "$MNT/link") == d/two ]] || fail "a symlink replaced through another mount still reads $(readlink "$MNT/link")"
[[ $(cat "$MNT/link") == two ]] || fail "following a replaced symlink reads $(cat "$MNT/link")"
unmount_fs "$B"
unmount_fs

#!/usr/bin/env bash
# fstab: redisfs installed with `cmake --install` mounts the way other
# filesystems do, through mount(8) and fuse3's mount.fuse3 helper (which
# runs `redisfs SOURCE MOUNTPOINT -o OPTIONS`, SOURCE being the prefix):
#   - `mount -t fuse.redisfs PREFIX DIR -o redis=URL,password_file=F,_netdev`
#     against a server that wants a password;
#   - `mount -T FSTAB -a` of a test fstab: a line with _netdev, nofail,
#     defaults and x-systemd.* options mounts, a noauto line does not, and
#     `mount -T FSTAB DIR` mounts that one by its directory;
#   - the old `TYPE#SOURCE` form with type fuse;
#   - `umount` unmounts and the daemons exit.
# mount(8) runs its helpers without the caller's PATH (the shell's default
# is /usr/local/sbin:/usr/local/bin:...), so the case works in a mount
# namespace of its own, where the installed bin/ is bind-mounted on
# /usr/local/sbin: the system's /usr/local is never touched.
. "$(dirname "$0")/lib.sh"

need_tools mount umount unshare
[[ -x /sbin/mount.fuse3 || -x /usr/sbin/mount.fuse3 ]] || skip "no mount.fuse3 (package fuse3)"
install_to "$T/root"
unshare -m --propagation private true 2>/dev/null || skip "cannot make a mount namespace"

rcli config set requirepass fstab-secret >/dev/null
echo fstab-secret >"$T/pw"
chmod 600 "$T/pw"
URL="unix://$SOCK"
mkdir -p "$T/m1" "$T/m2" "$T/m3" "$T/m4"
cat >"$T/fstab" <<FSTAB
# a test fstab: what an admin writes in /etc/fstab
$PREFIX-a $T/m2 fuse.redisfs redis=$URL,password_file=$T/pw,_netdev,nofail,defaults,x-systemd.automount,x-systemd.mount-timeout=30,log_file=$T/m2.log 0 0
$PREFIX-b $T/m3 fuse.redisfs redis=$URL,password_file=$T/pw,noauto,user 0 0
FSTAB

# The namespace's own script: every mount lives and dies in there.
cat >"$T/inner.sh" <<INNER
set -u
T=$T
fails=0
check() { if ! eval "\$1"; then echo "FAIL: \$2"; fails=\$((fails + 1)); fi; }
mounted() { awk -v m="\$1" '\$2 == m { f = 1 } END { exit !f }' /proc/self/mounts; }
mount --bind "\$T/root/bin" /usr/local/sbin || exit 3

out=\$(mount -t fuse.redisfs $PREFIX \$T/m1 -o redis=$URL,password_file=\$T/pw,_netdev 2>&1); rc=\$?
check "((rc == 0)) && mounted \$T/m1" "mount -t fuse.redisfs exited \$rc: \$out"
echo "-- mount -t fuse.redisfs: \$out"
check "echo one >\$T/m1/file && [[ \\\$(cat \$T/m1/file) == one ]]" "write and read through the mount(8) mount"

out=\$(mount -T \$T/fstab -a 2>&1); rc=\$?
check "((rc == 0)) && mounted \$T/m2" "mount -T fstab -a exited \$rc: \$out"
check "! mounted \$T/m3" "mount -a mounted the noauto line"
check "echo two >\$T/m2/file" "write to the fstab mount"
out=\$(mount -T \$T/fstab \$T/m3 2>&1); rc=\$?
check "((rc == 0)) && mounted \$T/m3" "mount -T fstab DIR of the noauto line exited \$rc: \$out"

out=\$(mount -t fuse "\$T/root/bin/redisfs#$PREFIX" \$T/m4 -o redis=$URL,password_file=\$T/pw 2>&1); rc=\$?
check "((rc == 0)) && mounted \$T/m4" "mount -t fuse redisfs#PREFIX exited \$rc: \$out"
check "[[ \\\$(cat \$T/m4/file 2>&1) == one ]]" "the TYPE#SOURCE mount does not show the first mount's file"

for m in \$T/m1 \$T/m2 \$T/m3 \$T/m4; do
  mounted \$m && { umount \$m || { echo "FAIL: umount \$m"; fails=\$((fails + 1)); umount -l \$m; }; }
done
exit \$fails
INNER

rc=0
unshare -m --propagation private bash "$T/inner.sh" || rc=$?
# The daemons lived in the namespace: wait until every one of them is gone.
for ((i = 0; i < 200; i++)); do
  pids=$(pgrep -f "redisfs.*$T/m[1-4]" || true)
  [[ -z $pids ]] && break
  sleep 0.1
done
[[ -z $pids ]] || { kill -KILL $pids 2>/dev/null; fail "redisfs daemons still running after umount: $pids"; }
((rc == 0)) || fail "$rc check(s) failed in the mount namespace (see above)"

# What the mounts wrote is on the server, under the prefixes they were given.
[[ $(rcli -a fstab-secret --no-auth-warning hget "$PREFIX-a:SB" root) == 1 ]] || fail "no filesystem $PREFIX-a on the server"
[[ $(rcli -a fstab-secret --no-auth-warning hget "$PREFIX:SB" root) == 1 ]] || fail "no filesystem $PREFIX on the server"
grep -q "mounted $PREFIX-a on $T/m2" "$T/m2.log" || fail "-o log_file= of the fstab line has no mount line: $(cat "$T/m2.log")"
rcli -a fstab-secret --no-auth-warning config set requirepass "" >/dev/null
note "mount -t fuse.redisfs, mount -T fstab -a, mount -T fstab DIR and TYPE#SOURCE all mounted and unmounted"

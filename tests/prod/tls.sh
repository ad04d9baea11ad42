#!/usr/bin/env bash
# tls: redisfs and redisfs-snap over TLS (rediss://) to a TLS-only server
# (no plain TCP port) that requires client certificates.
#
# A mount does real file work (write, read back, mkdir, rename, symlink,
# ls, a 4 MB file checked by SHA-256); then copy, dump to a file, restore
# under another prefix, fsck, list and delete all go over TLS, and the
# restored filesystem and the snapshot, mounted read-only, read like the
# original. The TLS settings also work from the environment (REDISFS_TLS_*),
# with --tls on a redis:// URL, with --tls-ca-cert-dir, with a right
# --tls-server-name, without a client cert where the server does not ask
# for one, and for a restricted ACL user (setup_fsuser). Each misconfiguration fails on its own, long before --timeout,
# with a one-line message saying what is wrong: an unknown CA, a wrong
# --tls-server-name, no client certificate (or one from another CA) where
# one is required, plain redis:// to the TLS port, rediss:// to a plain
# server (never a silent fall back to cleartext).
. "$(dirname "$0")/lib.sh"

[[ -c /dev/fuse ]] || skip "no /dev/fuse"
need_tools fusermount3 sha256sum diff jq
need_binary REDISFS_BIN
need_binary REDISFS_SNAP_BIN

C=$T/certs
make_certs "$C"
start_tls_redis s "$C" yes
PORT=${SRV_PORT[s]}
URL=rediss://127.0.0.1:$PORT
TLS=(--tls-ca-cert "$C/ca.crt" --tls-cert "$C/client.crt" --tls-key "$C/client.key")
# the infrastructure itself: redis-cli reaches the server over TLS only
[[ $(tls_cli s "$C" ping) == PONG ]] || fail "redis-cli over TLS"
out=$(redis-cli -h 127.0.0.1 -p "$PORT" ping 2>&1) || true
[[ $out != PONG ]] || fail "the server answers plain TCP on its TLS port"

P=T$RANDOM$RANDOM
snap() {
  "$REDISFS_SNAP_BIN" --redis "$URL" "${TLS[@]}" "$@"
}

# ------------------------------------------------------------------ a mount over TLS
M=$T/m
fs_mount "$M" --redis "$URL" "${TLS[@]}" --prefix "$P"
[[ $(rcli s exists "$P:SB") == 1 ]] || fail "the mount over TLS made no filesystem $P"
echo "hello over tls" >"$M/hello"
[[ $(cat "$M/hello") == "hello over tls" ]] || fail "read back"
mkdir -p "$M/d/e"
mv "$M/hello" "$M/d/e/hello2"
[[ ! -e $M/hello && $(cat "$M/d/e/hello2") == "hello over tls" ]] || fail "rename"
ln -s e/hello2 "$M/d/link"
head -c 4000000 /dev/urandom >"$T/big"
cp "$T/big" "$M/d/big"
for i in 1 2 3 4 5; do printf 'small %s\n' "$i" >"$M/d/s$i"; done
[[ $(ls "$M/d" | tr '\n' ' ') == "big e link s1 s2 s3 s4 s5 " ]] || fail "ls: $(ls "$M/d")"
sum=$(sha256sum <"$T/big")
[[ $(sha256sum <"$M/d/big") == "$sum" ]] || fail "the 4 MB file reads back different"
mkdir "$T/ref"
cp -a "$M/." "$T/ref/"
fs_unmount "$M"
note "mounted over TLS (client cert), wrote, read, renamed, 4 MB checksum ok"

# remount: the data is still there
fs_mount "$M" --redis "$URL" "${TLS[@]}" --prefix "$P"
[[ $(sha256sum <"$M/d/big") == "$sum" ]] || fail "the 4 MB file differs after a remount"
fs_unmount "$M"

# ------------------------------------------------------------------ redisfs-snap over TLS
snap -q copy "$P" "${P}snap"
snap -q dump -o "$T/dump.json" "$P"
jq -e --arg p "$P" '.' "$T/dump.json" >/dev/null || fail "the dump is not JSON"
snap -q restore --prefix "${P}r" "$T/dump.json"
snap fsck "$P" || fail "fsck $P over TLS"
snap fsck "${P}r" || fail "fsck of the restored ${P}r over TLS"
snap list >"$T/list.out" || fail "list over TLS"
for p in "$P" "${P}snap" "${P}r"; do
  grep -Eq -- "^(.*─ )?$p " "$T/list.out" || fail "list does not show $p: $(cat "$T/list.out")"
done
note "copy, dump, restore, fsck, list over TLS"

# the restored filesystem and the snapshot read like the original
fs_mount "$T/mr" --redis "$URL" "${TLS[@]}" --prefix "${P}r" --read-only
fs_mount "$T/ms" --redis "$URL" "${TLS[@]}" --prefix "${P}snap" --read-only
diff -r --no-dereference "$T/ref" "$T/mr" || fail "the restored filesystem differs from the original"
diff -r --no-dereference "$T/ref" "$T/ms" || fail "the snapshot differs from the original"
[[ $(sha256sum <"$T/mr/d/big") == "$sum" ]] || fail "the restored 4 MB file differs"
fs_unmount "$T/ms"
fs_unmount "$T/mr"
note "restored filesystem and snapshot, mounted read-only over TLS, match"

snap -q delete "${P}snap"
[[ -z $(rcli s --scan --pattern "${P}snap:*") ]] || fail "delete over TLS left keys"

# ------------------------------------------------------------------ other ways to say the same
# environment variables only
REDISFS_TLS_CA_CERT=$C/ca.crt REDISFS_TLS_CERT=$C/client.crt REDISFS_TLS_KEY=$C/client.key \
  "$REDISFS_SNAP_BIN" --redis "$URL" list >"$T/out" || fail "list with REDISFS_TLS_* variables"
grep -q -- "^$P " "$T/out" || fail "list (REDISFS_TLS_*) does not show $P"
REDISFS_TLS_CA_CERT=$C/ca.crt REDISFS_TLS_CERT=$C/client.crt REDISFS_TLS_KEY=$C/client.key \
  fs_mount "$M" --redis "$URL" --prefix "$P" --read-only
[[ $(cat "$M/d/e/hello2") == "hello over tls" ]] || fail "read through a mount configured by REDISFS_TLS_*"
fs_unmount "$M"
# --tls on a redis:// URL, the CA as a hashed directory, the right server name
"$REDISFS_SNAP_BIN" --redis "redis://127.0.0.1:$PORT" --tls --tls-ca-cert-dir "$C/cadir" \
  --tls-cert "$C/client.crt" --tls-key "$C/client.key" --tls-server-name localhost list >/dev/null ||
  fail "list with --tls, --tls-ca-cert-dir and --tls-server-name localhost"
note "REDISFS_TLS_* variables, --tls, --tls-ca-cert-dir, --tls-server-name localhost work"

# a server that does not ask for client certificates
start_tls_redis open "$C" no
"$REDISFS_SNAP_BIN" --redis "rediss://127.0.0.1:${SRV_PORT[open]}" --tls-ca-cert "$C/ca.crt" list >/dev/null ||
  fail "list without a client certificate on a server that needs none"

# a restricted ACL user over TLS (AUTH inside the TLS session)
set_admin_password s adminpw
setup_fsuser s fsuser userpw "$P"
printf 'userpw\n' >"$T/pw"
"$REDISFS_SNAP_BIN" --redis "rediss://fsuser@127.0.0.1:$PORT" --password-file "$T/pw" "${TLS[@]}" fsck "$P" ||
  fail "fsck as the ACL user over TLS"
fs_mount "$M" --redis "rediss://fsuser@127.0.0.1:$PORT" --password-file "$T/pw" "${TLS[@]}" --prefix "$P"
echo "as fsuser" >"$M/acl-user-file"
[[ $(sha256sum <"$M/d/big") == "$sum" ]] || fail "the 4 MB file, read as the ACL user over TLS"
fs_unmount "$M"
note "an ACL user over TLS: fsck, mount, write, read"

# ------------------------------------------------------------------ misconfigurations
# Each must fail by itself (a permanent error is not an outage to wait
# through): --timeout 60, and the case gives up after 30 s.
W=(--timeout 60)
bad_list() {  # redisfs-snap list with the given connection options
  "$REDISFS_SNAP_BIN" "${W[@]}" "$@" list
}
bad_mount() {
  "$REDISFS_BIN" -f "${W[@]}" --prefix "$P" "$@" "$T/mbad"
}
mkdir -p "$T/mbad"
VERIFY='verif|unknown ca|self.signed|issuer'

# a CA that did not sign the server's certificate
expect_quick_fail 30 "$VERIFY" bad_list --redis "$URL" --tls-ca-cert "$C/other-ca.crt" \
  --tls-cert "$C/client.crt" --tls-key "$C/client.key"
expect_quick_fail 30 "$VERIFY" bad_mount --redis "$URL" --tls-ca-cert "$C/other-ca.crt" \
  --tls-cert "$C/client.crt" --tls-key "$C/client.key"
# a name the server's certificate does not carry
expect_quick_fail 30 "$VERIFY|mismatch|hostname|server name" bad_list --redis "$URL" "${TLS[@]}" \
  --tls-server-name wrong.example.org
expect_quick_fail 30 "$VERIFY|mismatch|hostname|server name" bad_mount --redis "$URL" "${TLS[@]}" \
  --tls-server-name wrong.example.org
# the same through the environment
REDISFS_TLS_CA_CERT=$C/ca.crt REDISFS_TLS_CERT=$C/client.crt REDISFS_TLS_KEY=$C/client.key \
  REDISFS_TLS_SERVER_NAME=wrong.example.org expect_quick_fail 30 "$VERIFY|mismatch|hostname|server name" \
  bad_list --redis "$URL"
# no client certificate where the server requires one (TLS 1.3: the
# server's alert comes after the client's handshake is done, and may be
# lost to a reset, so a TLS error without "certificate" is accepted)
CERT_RE='certificate|alert|handshake|unknown ca|TLS|SSL'
expect_quick_fail 30 "$CERT_RE" bad_list --redis "$URL" --tls-ca-cert "$C/ca.crt"
expect_quick_fail 30 "$CERT_RE" bad_mount --redis "$URL" --tls-ca-cert "$C/ca.crt"
# a client certificate from another CA
expect_quick_fail 30 "$CERT_RE" bad_list --redis "$URL" --tls-ca-cert "$C/ca.crt" \
  --tls-cert "$C/other-client.crt" --tls-key "$C/other-client.key"
# plain redis:// to the TLS port
expect_quick_fail 30 'TLS|SSL|protocol|handshake|closed|reset' bad_list --redis "redis://127.0.0.1:$PORT"
expect_quick_fail 30 'TLS|SSL|protocol|handshake|closed|reset' bad_mount --redis "redis://127.0.0.1:$PORT"
# rediss:// to a plain server: never a silent fall back to cleartext (the
# handshake may hang there, so this one has --timeout 5)
start_plain_redis_tcp plain
W=(--timeout 5)
expect_quick_fail 30 'TLS|SSL|protocol|handshake|version|closed|reset|time' bad_list \
  --redis "rediss://127.0.0.1:${SRV_PORT[plain]}" --tls-ca-cert "$C/ca.crt"
[[ -z $(rcli s --scan --pattern "$P~*") ]] || note "temporary keys left: $(rcli s --scan --pattern "$P~*" | head -3)"
! is_mounted "$T/mbad" || fail "a failed mount left $T/mbad mounted"
note "every misconfiguration failed on its own with a message"

#!/usr/bin/env bash
# Installs what redisfs needs (Debian 12 packages), builds it into build/,
# and mounts a filesystem on the embedded default store.
#
#   ./quickstart.sh [MOUNTPOINT]     default mountpoint: ~/redisfs
#   ./quickstart.sh --build-only     install + build, mount nothing (CI)
set -euo pipefail
cd "$(dirname "$0")"

packages=(build-essential cmake pkg-config libhiredis-dev libssl-dev libfuse3-dev fuse3 libcli11-dev
          nlohmann-json3-dev doctest-dev redis-server redis-tools jq attr groff-base python3 procps openssl)

mount_point="${HOME}/redisfs"
build_only=0
case "${1:-}" in
  --build-only) build_only=1 ;;
  -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
  "") ;;
  *) mount_point=$1 ;;
esac

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "quickstart: installing ${missing[*]}" >&2
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
[ "$build_only" -eq 1 ] && exit 0

mkdir -p "$mount_point"
build/fs/redisfs "$mount_point"
echo "redisfs is mounted on $mount_point (data in ${XDG_DATA_HOME:-$HOME/.local/share}/redisfs)."
echo "Unmount with: fusermount3 -u $mount_point"

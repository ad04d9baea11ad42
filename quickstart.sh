#!/usr/bin/env bash
# Installs what redisfs needs (Debian 12 packages), builds redisfs and
# redisfs-snap into build/, installs them (cmake --install: /usr/local/bin,
# man pages, the systemd unit), mounts a filesystem on the embedded default
# store, and then builds the tests.
#
#   ./quickstart.sh [MOUNTPOINT]     default mountpoint: ~/redisfs
#   ./quickstart.sh --build-only     packages + build of everything; no install, no mount (CI)
# cmake --install honours DESTDIR (a staging root instead of /).
set -euo pipefail
cd "$(dirname "$0")"

packages=(build-essential cmake pkg-config libhiredis-dev libssl-dev libfuse3-dev fuse3 libcli11-dev
          nlohmann-json3-dev doctest-dev libzstd-dev zlib1g-dev redis-server redis-tools jq attr groff-base python3
          procps openssl zstd gzip strace)

mount_point="${HOME}/redisfs"
build_only=0
case "${1:-}" in
  --build-only) build_only=1 ;;
  -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
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
  # Wait for a dpkg lock another apt holds (unattended upgrades) instead of failing.
  apt=("${sudo[@]}" apt-get -o DPkg::Lock::Timeout=300)
  "${apt[@]}" update -qq
  "${apt[@]}" install -y -qq --no-install-recommends "${missing[@]}"
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
if [ "$build_only" -eq 1 ]; then
  cmake --build build -j"$(nproc)"
  exit 0
fi
# What mounting needs first; the tests after the mount.
cmake --build build -j"$(nproc)" --target redisfs redisfs-snap
prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' build/CMakeCache.txt)
sudo=()
[ "$(id -u)" -eq 0 ] || [ -w "${DESTDIR:-}$prefix" ] || sudo=(sudo)
"${sudo[@]}" cmake --install build >/dev/null
echo "quickstart: installed redisfs and redisfs-snap in ${DESTDIR:-}$prefix/bin"
redisfs=redisfs
if [ -n "${DESTDIR:-}" ]; then
  redisfs=build/fs/redisfs  # a staging root: nothing of it is on the PATH
elif [ "$(command -v redisfs || true)" != "$prefix/bin/redisfs" ]; then
  echo "quickstart: $prefix/bin is not first on your PATH for redisfs: run  export PATH=$prefix/bin:\$PATH" >&2
  redisfs=build/fs/redisfs
fi

mkdir -p "$mount_point"
"$redisfs" "$mount_point"
echo "redisfs is mounted on $mount_point (data in ${XDG_DATA_HOME:-$HOME/.local/share}/redisfs)."
echo "Unmount with: fusermount3 -u $mount_point"
echo "quickstart: building the tests (ctest --test-dir build runs them)"
cmake --build build -j"$(nproc)"

#!/usr/bin/env bash
# The tree keeps the shape the README's Layout section describes:
#   - every .cpp of core/, fs/, tools/, tests/unit/, tests/redis/ and tests/prod/ is
#     listed in its CMakeLists.txt (sources are not globbed), and every
#     listed one exists;
#   - every Lua script of core/lua/ but the prelude is in REDISFS_LUA_NAMES
#     (core/CMakeLists.txt), and every name there has its script;
#   - core/ includes its headers by part ("store/store.hpp"), each naming a
#     file of that part: a bare name is only one of the headers the build
#     generates (version.hpp, lua_script_ids.hpp); fs/, tools/ and tests/
#     include core/'s headers the same way, and their own (tests: and
#     fs/'s, the library redisfs_fs) by bare name;
#   - each part of core/ is named in the README's Layout section.
# Usage: check_layout.sh SOURCE_DIR. One line per fault on stderr.
set -uo pipefail
root=${1:?usage: check_layout.sh SOURCE_DIR}
cd "$root" || exit 1
status=0
fault() {
  echo "layout: $*" >&2
  status=1
}

# The .cpp files a CMakeLists.txt names (comments and generated sources,
# ${...}/x.cpp, left out), relative to its directory.
listed() { sed 's/#.*//' "$1" | grep -oE '(^|[[:space:](])[A-Za-z0-9_][A-Za-z0-9_/.-]*\.cpp' | tr -d ' \t(' | sort -u; }

# compare HAVE NAMED ONLY_HAVE ONLY_NAMED: a fault for each line of the
# sorted list HAVE that NAMED lacks (the printf format ONLY_HAVE, %s the
# line) and for each line of NAMED that HAVE lacks (ONLY_NAMED).
# shellcheck disable=SC2059  # the formats are this script's own
compare() {
  local line
  while read -r line; do
    [ -n "$line" ] && fault "$(printf "$3" "$line")"
  done < <(comm -23 <(echo "$1") <(echo "$2"))
  while read -r line; do
    [ -n "$line" ] && fault "$(printf "$4" "$line")"
  done < <(comm -13 <(echo "$1") <(echo "$2"))
}

# check_listed CMAKELISTS DIR FIND_ARGS...: DIR's .cpp files (found with
# FIND_ARGS, relative to DIR) against what CMAKELISTS lists.
check_listed() {
  local cmake=$1 dir=$2
  shift 2
  compare "$(cd "$dir" && find . "$@" -name '*.cpp' | sed 's|^\./||' | sort -u)" "$(listed "$cmake")" \
    "$dir/%s is not listed in $cmake" "$cmake lists %s, which $dir does not hold"
}
check_listed core/CMakeLists.txt core
check_listed fs/CMakeLists.txt fs -maxdepth 1
check_listed tools/CMakeLists.txt tools -maxdepth 1
check_listed tests/CMakeLists.txt tests \( -path './unit/*' -o -path './redis/*' -o -path './prod/*' \)

# Lua scripts.
scripts=$(find core/lua -maxdepth 1 -name '*.lua' | sed 's|^core/lua/||; s/\.lua$//' | grep -vx prelude | sort)
names=$(sed -n '/^set(REDISFS_LUA_NAMES/,/^)/p' core/CMakeLists.txt | sed '1d;$d' | tr -d ' \t' | grep -v '^$' | sort)
compare "$scripts" "$names" "core/lua/%s.lua is not in REDISFS_LUA_NAMES (core/CMakeLists.txt)" \
  "REDISFS_LUA_NAMES names %s, which has no script in core/lua/"

# Includes.
generated="version.hpp lua_script_ids.hpp"
while IFS= read -r file; do
  dir=$(dirname "$file")
  while IFS= read -r inc; do
    case "$inc" in
      */*)
        # By part: a header of core/ (tests also by their own folder).
        [ -f "core/$inc" ] || [ -f "$dir/$inc" ] || fault "$file includes \"$inc\", which core/ does not hold"
        ;;
      *)
        if [[ " $generated " == *" $inc "* ]]; then
          continue
        fi
        case "$file" in
          core/*) fault "$file includes \"$inc\" by a bare name: include a core/ header by its part (\"part/$inc\")" ;;
          tests/*) [ -f "$dir/$inc" ] || [ -f "fs/$inc" ] || fault "$file includes \"$inc\", which neither $dir nor fs/ holds" ;;
          *) [ -f "$dir/$inc" ] || fault "$file includes \"$inc\", which $dir does not hold" ;;
        esac
        ;;
    esac
  done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$file")
done < <(find core fs tools tests/unit tests/redis -name '*.cpp' -o -name '*.hpp' -o -name '*.hpp.in' | sort)

# The parts of core/ in the README.
layout=$(sed -n '/^## Layout/,/^## /p' README.md)
for part in core/*/; do
  part=${part%/}
  grep -qF "\`$part/\`" <<<"$layout" || fault "$part/ is not described in the README's Layout section"
done

# doctest case names: each is a CTest test of its own (tests/CMakeLists.txt),
# and CMake cuts a name at a ';' (the case then runs nothing, and fails).
while IFS= read -r line; do
  fault "a test case name holds a ';' (CTest cuts it there): $line"
done < <(grep -Hn 'TEST_CASE[_A-Z]*(.*"[^"]*;[^"]*"' tests/unit/*.cpp tests/redis/*.cpp || true)

[ "$status" -eq 0 ] && echo "layout: sources listed, Lua scripts named, includes by part, parts in the README, test names"
exit $status

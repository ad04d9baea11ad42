#!/usr/bin/env bash
# Every command of README.md's shell blocks and of the man pages' EXAMPLES
# runs as written, against private servers (tests/cli/docs_examples.py says
# how the names in the text are mapped): what the docs show works.
. "$(dirname "$0")/../common.sh"

[[ -c /dev/fuse ]] || skip "no /dev/fuse"
need_tools fusermount3 redis-server redis-cli python3 jq
need_binary REDISFS_BIN
need_binary REDISFS_SNAP_BIN

# (docs_examples.py keeps its own scratch directory; $T holds the
# sanitizer reports of what it runs: route_sanitizer_reports)
T=$(mktemp -d /tmp/redisfs-docs-reports.XXXXXX)
route_sanitizer_reports
trap remove_tmp EXIT

python3 "$(dirname "$0")/docs_examples.py" "$(cd "$(dirname "$0")/../.." && pwd)" "$REDISFS_BIN" "$REDISFS_SNAP_BIN"

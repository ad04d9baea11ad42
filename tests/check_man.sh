#!/usr/bin/env bash
# The man pages must be clean: groff -ww warns but exits 0, so any output
# at all is a failure. Exit 77 (skip) without groff.
set -uo pipefail
command -v groff >/dev/null || { echo "skipped: groff not found"; exit 77; }
status=0
for page in "$@"; do
  out=$(groff -man -ww -z "$page" 2>&1)
  if [ -n "$out" ]; then
    echo "$page:"; echo "$out"
    status=1
  fi
done
exit $status

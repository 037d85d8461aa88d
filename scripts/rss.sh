#!/usr/bin/env bash
# Peak RSS (VmHWM) of the cairn daemon while it adds a 2 GiB file, and while it answers
# repo/stat, pin/ls and repo/gc on a repo holding ~3 GiB and on one holding COUNT (default a
# million) 1 KiB blocks; with the repo's size on disk against the live bytes after add and GC.
# VmHWM is reset before each step (echo 5 > /proc/PID/clear_refs), so each figure is that step's
# own peak. Needs curl. Usage: bash scripts/rss.sh [COUNT]; CAIRN_BIN picks the binary
# (default target/release/cairn if built, else target/debug/cairn); SKIP_LARGE=1 measures only the
# repo of small blocks.
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT="${1:-1000000}"
BIN="${CAIRN_BIN:-}"
if [ -z "$BIN" ]; then
  if [ -x target/release/cairn ]; then BIN=target/release/cairn; else BIN=target/debug/cairn; fi
fi
WORK="$(mktemp -d "${TMPDIR:-/tmp}/cairn-rss.XXXXXX")"
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
echo "binary: $BIN; work dir: $WORK"

start() { # repo
  CAIRN_PATH="$1" "$BIN" daemon >"$WORK/daemon.log" 2>&1 &
  PID=$!
  for _ in $(seq 600); do [ -s "$1/api" ] && grep -q "Daemon is ready" "$WORK/daemon.log" && break; sleep 0.1; done
  API="$(sed 's#/ip4/\([^/]*\)/tcp/\([0-9]*\)#\1:\2#' "$1/api")"
}
stop() { CAIRN_PATH="$REPO" "$BIN" shutdown >/dev/null; wait "$PID" 2>/dev/null || true; PID=""; }
reset() { echo 5 > "/proc/$PID/clear_refs"; }
mib() { awk '{printf "%.1f MiB", $1/1024}'; }
hwm() { grep VmHWM "/proc/$PID/status" | awk '{print $2}' | mib; }
rss() { grep VmRSS "/proc/$PID/status" | awk '{print $2}' | mib; }
rpc() { curl -sS -X POST "http://$API/api/v0/$1" "${@:2}"; }
step() { # name, command...
  local name="$1"; shift
  reset
  local t0; t0=$(date +%s.%N)
  "$@" >/dev/null
  printf '%-34s peak %-10s now %-10s %5.1f s\n' "$name" "$(hwm)" "$(rss)" "$(echo "$(date +%s.%N) - $t0" | bc)"
}
mkfile() { # size in MiB, path (curl streams a file; it would buffer all of stdin)
  head -c "$(( $1 * 1048576 ))" /dev/urandom >"$2"
}
addfile() { # file, output file for add's last line ({"Name","Hash","Size"})
  rpc "add?pin=true&progress=false" -F "file=@$1" | tail -1 >"$2"
  rm -f "$1"
}
hash_of() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["Hash"])' "$1"; }

if [ -z "${SKIP_LARGE:-}" ]; then
echo "== a repo of large files (1 GiB, then a 2 GiB file)"
REPO="$WORK/big"
CAIRN_PATH="$REPO" "$BIN" init --profile test >/dev/null
start "$REPO"
printf '%-34s now %s\n' "idle after start" "$(rss)"
mkfile 1024 "$WORK/first.bin"
addfile "$WORK/first.bin" "$WORK/first.json"
mkfile 2048 "$WORK/second.bin"
step "add 2 GiB file (pinned)" addfile "$WORK/second.bin" "$WORK/second.json"
SECOND=$(hash_of "$WORK/second.json")
LIVE=$(rpc repo/stat | python3 -c 'import json,sys; print(json.load(sys.stdin)["RepoSize"])')
echo "after add: live blocks 3 GiB; RepoSize $LIVE; du -sb $(du -sb "$REPO" | cut -f1)"
step "repo/stat" rpc repo/stat
step "pin/ls (all, with indirect)" rpc pin/ls
rpc "pin/rm?arg=$SECOND" >/dev/null
step "repo/gc (removes the 2 GiB file)" rpc repo/gc
echo "after gc: live 1 GiB ($((1<<30)) bytes); du -sb $(du -sb "$REPO" | cut -f1)"
stop
fi

echo "== a repo of $COUNT 1 KiB blocks (1 in 100 pinned)"
REPO="$WORK/small"
CAIRN_PATH="$REPO" "$BIN" init --profile test >/dev/null
FILL="${FILL_BIN:-target/release/examples/fill}"
[ -x "$FILL" ] || FILL=target/debug/examples/fill
"$FILL" "$REPO/datastore" "$COUNT" 1024 100 "$REPO/blocks"
start "$REPO"
printf '%-34s now %s\n' "idle after start" "$(rss)"
step "repo/stat" rpc repo/stat
step "pin/ls" rpc pin/ls
echo "before gc: du -sb $(du -sb "$REPO" | cut -f1)"
step "repo/gc (removes 99%)" rpc repo/gc
echo "after gc: du -sb $(du -sb "$REPO" | cut -f1) for $((COUNT / 100)) KiB live"
stop

#!/usr/bin/env bash
# SIGKILLs the cairn daemon CYCLES times (default 100) while 4 concurrent clients block/put blocks
# of 1 KiB to 1 MiB over its RPC, restarts it, reads back every acknowledged block, and prints
# `N cycles, M lost, K corrupt`. BUFFERED=1 runs it with `Datastore.Sync: false` (losses allowed).
# See tests/daemon_crash.rs; `bash scripts/crash-cycles.sh` does the same for the bare blockstore.
set -euo pipefail
cd "$(dirname "$0")/.."
export CAIRN_DAEMON_CRASH_CYCLES="${1:-100}"
if [ -n "${BUFFERED:-}" ]; then export CAIRN_DAEMON_CRASH_BUFFERED=1; fi
cargo test --test daemon_crash -- --nocapture 2>&1 | grep -v '^lost: '

#!/usr/bin/env bash
# Kills a blockstore writer with SIGKILL at random moments, CYCLES times (default 100), and prints
# `N cycles, M lost, K corrupt` for the Synced durability mode. See crates/blockstore/tests/crash.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
CAIRN_CRASH_CYCLES="${1:-100}" cargo test -p cairn-blockstore --test crash -- --nocapture

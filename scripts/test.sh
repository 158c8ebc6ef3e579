#!/usr/bin/env bash
# Every check and test of the project; CI runs exactly this (.ci/run).
# PostgreSQL variants of the tests run when EAUTH_TEST_DATABASE_URL is set.
set -euo pipefail
cd "$(dirname "$0")/.."

# ---- tools the tests need from Debian -------------------------------------------------------
# eauth-cli's tests compare codes with oathtool and read QR images made by qrencode; the browser
# tests (e2e/) run Debian's chromium. Without them those tests fail (they never skip), so install
# whatever is missing; idempotent and quiet.
missing=()
for tool in oathtool qrencode chromium; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if ((${#missing[@]})); then
  echo "== installing ${missing[*]} (Debian packages)"
  sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# ----------------------------------------------------------------------------------------------

echo "== formatting"
cargo fmt --all -- --check

echo "== one TLS crypto provider (ring): aws-lc-rs must not be linked"
if cargo tree --workspace --edges normal -i aws-lc-rs >/dev/null 2>&1; then
  echo "aws-lc-rs is in the dependency tree: see ECOSYSTEM-NOTES (one TLS crypto provider)" >&2
  exit 1
fi

echo "== lints"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== tests${EAUTH_TEST_DATABASE_URL:+ (PostgreSQL: $EAUTH_TEST_DATABASE_URL)}"
cargo test --workspace --locked

echo "== benchmark smoke run (every scenario for a moment against the debug eauthd; any error fails)"
# Numbers from a debug build mean nothing: this only keeps the benchmark working. The real run
# is `cargo run --release -p eauth-bench` (README, "Benchmark").
cargo build --locked --bin eauthd
cargo run --locked -p eauth-bench -- --smoke --eauthd "${CARGO_TARGET_DIR:-target}/debug/eauthd"

echo "== browser tests of the sign-in webview, push approval with eauth, the example portal and the Domain Console (e2e/: Playwright in Debian's Chromium)"
command -v npm >/dev/null || { echo "the browser tests need Node.js 20 and npm" >&2; exit 1; }
(cd e2e && npm ls --depth=0 >/dev/null 2>&1) || (cd e2e && npm ci --no-audit --no-fund)
cargo build --locked --bin eauthd --bin eauth-portal --bin eauth
(cd e2e && npx playwright test)

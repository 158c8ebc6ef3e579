#!/usr/bin/env bash
# Every check and test of the project; CI runs exactly this (.ci/run).
# PostgreSQL variants of the tests run when EAUTH_TEST_DATABASE_URL is set.
set -euo pipefail
cd "$(dirname "$0")/.."

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

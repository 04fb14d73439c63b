#!/bin/bash
# The whole test suite: lint gates, docs, unit tests, integration and interop tests.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
RUSTDOCFLAGS=-Dwarnings cargo doc --workspace --no-deps --document-private-items --locked --quiet
# TLS is rustls; an openssl build would mean a new C dependency crept in.
if cargo tree --workspace --locked -i openssl-sys >/dev/null 2>&1; then
    echo "error: openssl-sys is in the dependency tree (use rustls)" >&2
    cargo tree --workspace --locked -i openssl-sys >&2
    exit 1
fi
cargo nextest run --workspace --locked --profile ci

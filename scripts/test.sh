#!/usr/bin/env bash
# The project's test command (README): installs what the tests need, then formatting,
# lints and the whole test suite. CI (.ci/run) runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked
echo "== fuzz targets, 10 s each (scripts/fuzz.sh)"
if scripts/fuzz.sh --check; then
    scripts/fuzz.sh all "${FUZZ_SECONDS:-10}"
else
    echo "SKIPPED: the fuzz toolchain cannot be set up here (cargo-fuzz not installable or no" \
        "C++ compiler for libFuzzer); the fuzz targets were not run" >&2
fi

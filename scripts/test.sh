#!/usr/bin/env bash
# The project's test command (README): installs what the tests need, then formatting,
# lints and the whole test suite. CI (.ci/run) runs exactly this.
#
# The fuzz targets' release build (minutes of CPU) runs at the lowest priority while the
# test suite runs: the suite mostly waits on servers, links and timers, so the build takes
# the idle CPU and the fuzzing itself starts as soon as the suite ends.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test (build)"
cargo test --workspace --locked --no-run

fuzz_build=""
fuzz_log=fuzz/logs/build.log
if scripts/fuzz.sh --check; then
    mkdir -p fuzz/logs
    # Its own process group, so a failing suite stops the whole build with it.
    NICE=19 setsid scripts/fuzz.sh --build >"$fuzz_log" 2>&1 &
    fuzz_build=$!
    trap 'kill -- "-$fuzz_build" 2>/dev/null || true' EXIT
fi

echo "== cargo test"
cargo test --workspace --locked

echo "== fuzz targets, 10 s each (scripts/fuzz.sh)"
if [[ -z "$fuzz_build" ]]; then
    echo "SKIPPED: the fuzz toolchain cannot be set up here (cargo-fuzz not installable or no" \
        "C++ compiler for libFuzzer); the fuzz targets were not run" >&2
    exit 0
fi
if ! wait "$fuzz_build"; then
    tail -n 40 "$fuzz_log" >&2
    echo "the fuzz targets did not build (log: $fuzz_log)" >&2
    exit 1
fi
trap - EXIT
tail -n 1 "$fuzz_log"
scripts/fuzz.sh all "${FUZZ_SECONDS:-10}"

#!/usr/bin/env bash
# Builds and runs the coverage-guided fuzz targets in fuzz/ (cargo-fuzz / libFuzzer).
#
#   scripts/fuzz.sh [TARGET] [SECONDS]    one target, or every target when TARGET is omitted
#                                         or "all"; SECONDS per target (default 60)
#   scripts/fuzz.sh --check               does this machine have the fuzz toolchain (cargo-fuzz,
#                                         installed if missing, and a C++ compiler for
#                                         libFuzzer)? Exit 0 or 1; builds nothing.
#   scripts/fuzz.sh --build               builds every target and runs none (scripts/test.sh
#                                         builds them while the test suite runs)
#
# Installs cargo-fuzz when it is missing. The targets build with the project's stable
# toolchain (RUSTC_BOOTSTRAP=1 lets it take cargo-fuzz's -Z flags; for these builds only),
# without a sanitizer (Rust code is memory safe; what is looked for is a panic, a
# stack overflow, a hang or unbounded memory) and with debug assertions and overflow checks.
# The committed seeds are in fuzz/seeds/TARGET; what the fuzzer learns goes to
# fuzz/corpus/TARGET, a crash to fuzz/artifacts/TARGET, logs to fuzz/logs (all ignored by
# git). Each target's executions and crashes are printed at its end. Environment:
# FUZZ_JOBS=N runs N processes per target (default 1); NICE=N (default 19) is the niceness.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

TARGETS=(imap_response tolerant_lexer internaldate mutf7_roundtrip message_header batch_csv)
export RUSTC_BOOTSTRAP=1
FLAGS=(--release --debug-assertions --sanitizer none)

ensure_cargo_fuzz() {
    if ! cargo fuzz --version >/dev/null 2>&1; then
        echo "== installing cargo-fuzz"
        cargo install cargo-fuzz --locked
    fi
}

build_targets() {
    echo "== building fuzz targets"
    nice -n "${NICE:-19}" cargo fuzz build "${FLAGS[@]}"
}

if [[ "${1:-}" == "--check" ]]; then
    ensure_cargo_fuzz && command -v c++ >/dev/null
    exit
fi
if [[ "${1:-}" == "--build" ]]; then
    ensure_cargo_fuzz
    build_targets
    exit
fi

target="${1:-all}"
seconds="${2:-60}"
if [[ "$target" == "all" ]]; then
    selected=("${TARGETS[@]}")
elif [[ " ${TARGETS[*]} " == *" $target "* ]]; then
    selected=("$target")
else
    echo "unknown fuzz target '$target'; targets: ${TARGETS[*]}" >&2
    exit 2
fi

ensure_cargo_fuzz
build_targets

jobs=()
if ((${FUZZ_JOBS:-1} > 1)); then
    jobs=(-jobs="$FUZZ_JOBS" -workers="$FUZZ_JOBS")
fi
failed=()
for t in "${selected[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t" logs
    log="logs/$t.log"
    touch "logs/$t.start"
    echo "== fuzzing $t for ${seconds}s"
    status=0
    # -timeout: one input taking over 10 s is a hang; -rss_limit_mb bounds memory.
    nice -n "${NICE:-19}" cargo fuzz run "${FLAGS[@]}" "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=1024 -max_len=65536 \
        -print_final_stats=1 "${jobs[@]}" >"$log" 2>&1 || status=$?
    execs=$({ cat "$log"; cat fuzz-*.log 2>/dev/null || true; } |
        awk '/stat::number_of_executed_units/ {s += $2} END {print s + 0}')
    crashes=$(find "artifacts/$t" -type f -newer "logs/$t.start" | wc -l)
    echo "$t: $execs executions, $crashes crash(es), exit $status (log: fuzz/$log)"
    rm -f fuzz-*.log
    if ((status != 0 || crashes != 0)); then
        tail -n 40 "$log" >&2
        failed+=("$t")
    fi
done

if ((${#failed[@]})); then
    echo "fuzzing found crashes in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzzing: no crash in ${selected[*]}"

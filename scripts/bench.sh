#!/usr/bin/env bash
# Benchmarks (figures for the README and issue notes; not part of the test suite).
#   scripts/bench.sh verify [BLOBS] [SIZE]   verify of a stage of BLOBS blobs of SIZE bytes
#                                            (default 20000 x 100 KiB ~ 2 GB) against reading
#                                            the same bytes with cat, cold and warm cache.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-verify}

secs() { python3 -c 'import sys,time; print(f"{time.time():.3f}")'; }
drop_caches() {
    sync
    if [ -w /proc/sys/vm/drop_caches ]; then echo 3 > /proc/sys/vm/drop_caches; return 0; fi
    return 1
}

bench_verify() {
    local blobs=${1:-20000} size=${2:-102400}
    cargo build --release -q -p mailstage-extract -p mailstage-tests --bin mailstage-extract --bin stage-workload
    local work; work=$(mktemp -d "${TMPDIR:-/tmp}/mailstage-bench.XXXXXX")
    trap 'rm -rf "$work"' RETURN
    local t0 t1
    # The workload repeats every fifth message, so 5/4 as many messages give $blobs blobs.
    local messages=$((blobs * 5 / 4))
    t0=$(secs); target/release/stage-workload "$work/stage" "$messages" "$size"; t1=$(secs)
    local bytes; bytes=$(du -sb "$work/stage/blobs" | cut -f1)
    local files; files=$(find "$work/stage/blobs" -type f | wc -l)
    echo "staged $messages messages as $files blobs ($((bytes / 1048576)) MiB) in $(python3 -c "print(f'{$t1-$t0:.2f}')") s"
    for cache in cold warm; do
        if [ $cache = cold ] && ! drop_caches; then echo "(cannot drop caches: not root; cold figures skipped)"; continue; fi
        t0=$(secs); find "$work/stage/blobs" -type f -print0 | xargs -0 cat > /dev/null; t1=$(secs)
        local read_s; read_s=$(python3 -c "print(f'{$t1-$t0:.3f}')")
        [ $cache = cold ] && drop_caches
        t0=$(secs); target/release/mailstage-extract --stage "$work/stage" verify > "$work/verify.txt"; t1=$(secs)
        local verify_s; verify_s=$(python3 -c "print(f'{$t1-$t0:.3f}')")
        echo "$cache cache: read all blobs once with cat ${read_s} s; verify ${verify_s} s; verify / (2 x read) = $(python3 -c "print(f'{$verify_s/(2*$read_s):.2f}')")"
    done
    tail -2 "$work/verify.txt"
}

case "$what" in
    verify) shift || true; bench_verify "$@" ;;
    *) echo "usage: scripts/bench.sh verify [BLOBS] [SIZE]" >&2; exit 2 ;;
esac

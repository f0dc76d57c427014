#!/usr/bin/env bash
# Steady-state no-change passes of mbsync and mailstage on loopback (figures for the README).
#   scripts/bench-nochange.sh [ROUNDS] [MAILBOXES] [MESSAGES]
# starts one harness Dovecot with bench.sh's skewed corpus (default 4 x 5000), copies it once
# with mbsync (one process per mailbox, PipelineDepth 50, as bench.sh runs it) and once with
# mailstage-extract (batch start), then ROUNDS times (default 5) a no-change pass of each, one
# right after the other, both copies kept: unlike bench.sh's no-change pass, which follows
# each tool's full pass and so carries its writeback. Prints each round and the medians.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5} mailboxes=${2:-4} messages=${3:-5000}
command -v mbsync > /dev/null || { echo "mbsync not found: apt-get install isync" >&2; exit 1; }
cargo build --release -q -p mailstage-extract -p mailstage-tests --bin mailstage-extract --bin bench-corpus
work=$(mktemp -d "${TMPDIR:-/tmp}/mailstage-nochange.XXXXXX")
secs() { date +%s.%N; }
# shellcheck source=scripts/bench-common.sh
. scripts/bench-common.sh
start_corpus "$work" "$mailboxes" "$messages"
# shellcheck disable=SC1091
. "$work/corpus.env"
write_mbsync_rcs "$work" 50
rcs=("${MBSYNC_RCS[@]}")
run_mbsync() {
    local rc pids=()
    for rc in "${rcs[@]}"; do mbsync -q -c "$rc" -a 2> /dev/null & pids+=($!); done
    for p in "${pids[@]}"; do wait "$p"; done
}
ms=$PWD/target/release/mailstage-extract
export MAILSTAGE_DIR="$work/stage"
"$ms" endpoint new --name bench --server 127.0.0.1 --port "$PORT" --security none \
    --max-concurrent-migrations "$mailboxes" --max-concurrent-incremental-syncs "$mailboxes" > /dev/null
"$ms" batch new --name bench --endpoint bench --csv "$CSV" > /dev/null
run_mbsync
"$ms" batch start bench --quiet > /dev/null
sync
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
: > "$work/rounds"
for _ in $(seq "$rounds"); do
    a=$(secs); run_mbsync; b=$(secs)
    "$ms" batch sync bench --quiet > /dev/null; c=$(secs)
    echo "$a $b $c" >> "$work/rounds"
done
python3 - "$work/rounds" <<'PY'
import statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1])]
mb = [b - a for a, b, c in rows]
ms = [c - b for a, b, c in rows]
for m, s in zip(mb, ms):
    print(f"no-change pass: mbsync {m:.3f} s, mailstage {s:.3f} s: {s / m:.2f}")
m, s = statistics.median(mb), statistics.median(ms)
print(f"median of {len(rows)}: mbsync {m:.3f} s, mailstage {s:.3f} s: ratio {s / m:.2f}")
PY
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

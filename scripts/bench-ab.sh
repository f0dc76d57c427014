#!/usr/bin/env bash
# A/B of extraction binaries on a shared, loaded machine (figures for the README).
#   scripts/bench-ab.sh ROUNDS MESSAGES LABEL=BINARY...
# starts one harness Dovecot (bench-corpus: MAILBOXES=1 mailbox(es), SHAPE=small 300-byte
# messages in INBOX, or SHAPE=corpus for bench.sh's skewed corpus), then ROUNDS times: the
# write floor (cp of the message files, one sync -f) and a full `batch start` of each binary
# into a new stage, one after the other, so that the load's drift hits every binary alike.
# Prints one line per run: label, wall seconds, load average, blobs stored.
# Example: scripts/bench-ab.sh 2 100000 before=/tmp/old-extract after=target/release/mailstage-extract
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 3 ] || { sed -n '2,10p' "$0"; exit 2; }
rounds=$1 messages=$2; shift 2
cargo build --release -q -p mailstage-tests --bin bench-corpus
work=$(mktemp -d "${TMPDIR:-/tmp}/mailstage-ab.XXXXXX")
[ "${SHAPE:-small}" = small ] && export BENCH_SHAPE=small
secs() { date +%s.%N; }
# shellcheck source=scripts/bench-common.sh
. scripts/bench-common.sh
start_corpus "$work" "${MAILBOXES:-1}" "$messages" > /dev/null
# shellcheck disable=SC1091
. "$work/corpus.env"
since() { python3 -c "import sys; print(f'{$(secs) - float(sys.argv[1]):.2f}')" "$1"; }
load() { cut -d' ' -f1 /proc/loadavg; }
floor() {
    mkdir -p "$work/floor"; sync
    local t0; t0=$(secs)
    (cd "$MAIL_DIR" && find . -type f \( -path '*/cur/*' -o -path '*/new/*' \) -print0 |
        xargs -0 cp --parents -t "$work/floor")
    sync -f "$work/floor"
    echo "floor $(since "$t0") load $(load)"
    rm -rf "$work/floor"; sync
}
run() {
    local label=$1 bin=$2 t0
    export MAILSTAGE_DIR="$work/stage"
    rm -rf "$MAILSTAGE_DIR"; sync
    "$bin" endpoint new --name ab --server 127.0.0.1 --port "$PORT" --security none \
        --max-concurrent-migrations "${MAILBOXES:-1}" > /dev/null
    "$bin" batch new --name ab --endpoint ab --csv "$CSV" > /dev/null
    t0=$(secs)
    # shellcheck disable=SC2086
    ${WRAP:-} "$bin" batch start ab --quiet > "$work/$label.log" 2>&1 || { cat "$work/$label.log"; exit 1; }
    echo "$label $(since "$t0") load $(load) blobs $(find "$MAILSTAGE_DIR/blobs" -type f | wc -l)"
    rm -rf "$MAILSTAGE_DIR"; sync
}
for _ in $(seq "$rounds"); do
    floor
    for ab in "$@"; do run "${ab%%=*}" "${ab#*=}"; done
done

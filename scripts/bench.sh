#!/usr/bin/env bash
# Benchmarks (figures for the README and issue notes; not part of the test suite).
#   scripts/bench.sh verify [BLOBS] [SIZE]   verify of a stage of BLOBS blobs of SIZE bytes
#                                            (default 20000 x 100 KiB ~ 2 GB) against reading
#                                            the same bytes with cat, cold and warm cache.
#   scripts/bench.sh extract [--rtt RTT] [--folders N] [--small|--huge] [MAILBOXES] [MESSAGES]
#                                            extraction against mbsync (isync) on the same
#                                            harness Dovecot: MAILBOXES x MESSAGES (default
#                                            4 x 5000) of the skewed 1 KiB-3 MiB corpus in 9
#                                            folders each; a full pass and a no-change pass of
#                                            each tool, wall time and peak RSS, the write floor
#                                            (copying the same message files with cp, then one
#                                            sync -f), and the ratios.
#                                            --small: 1 x 100000 messages of ~300 bytes in INBOX;
#                                            --huge: 1 x 510000 of them (the 500,000-item cap
#                                            applies; mbsync is left out: BENCH_MBSYNC=1 adds it).
#                                            --rtt 40ms puts the delay proxy (tests/src/bin/
#                                            delay-proxy.rs: RTT/2 each way) in front of the
#                                            server for both tools (default 4 x 800 then) and
#                                            shows the commands and turns each pass sent.
#                                            --folders 1500: each mailbox has N folders (a
#                                            deep hierarchy) with the messages dealt out in
#                                            turn, 2-8 KB each (default 1 x 2N messages).
#                                            BENCH_PIPELINE_DEPTH sets mbsync's PipelineDepth
#                                            (default 50); BENCH_KEEP=1 keeps the work dir;
#                                            MAILSTAGE_DURABILITY=fsync forces per-file fsyncs.
#                                            BENCH_WRAP='perf record -g -o F' runs mailstage's
#                                            passes under a profiler (times then include it).
#   scripts/bench.sh upload [MAILBOXES] [MESSAGES] [--budget N] [--rtt 40ms]
#                                            the same corpus extracted by mailstage, then
#                                            uploaded into a second harness Dovecot: upload
#                                            messages/s and MB/s, and the end-to-end time.
#                                            --budget N: through the Exchange emulator giving
#                                            each mailbox N APPENDs/s (a bucket holding one
#                                            second's worth); default 2 x 300 messages; the
#                                            fraction of the budget's best time, throttles per
#                                            mailbox. --rtt D: the same upload again into a
#                                            second target Dovecot through the delay proxy
#                                            (RTT D; default 2 x 300 messages), against the
#                                            loopback time. BENCH_SHAPE=small: messages of
#                                            ~300 bytes in INBOX (one large mailbox:
#                                            BENCH_SHAPE=small scripts/bench.sh upload 1 50000;
#                                            the target then stores mail as sdbox).
#                                            TARGET_DOVECOT_FORMAT=sdbox|mdbox, and
#                                            TARGET_DOVECOT_EXTRA: lines for its dovecot.conf.
#   scripts/bench.sh merge [BLOBS] [SIZE]    stage merge of a stage of BLOBS blobs of SIZE bytes
#                                            (default 20000 x 100 KiB) into an empty stage on the
#                                            same disk (what copying a stage in costs: every blob
#                                            read, hashed, written, fsynced), then the same merge
#                                            again (nothing to copy), wall time and peak RSS.
#   scripts/bench.sh lint [MESSAGES...]      `mailstage-upload lint --assume m365` (every blob
#                                            scanned for long lines) of one mailbox of MESSAGES
#                                            ~300-byte messages each (default 5000 100000), with
#                                            its time and peak RSS: the plan is read in parts.
#   scripts/bench.sh report                  the migration report of a synthetic 200,000-message
#                                            batch (scripts/report-bench-index.py) in each format:
#                                            wall time and peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-verify}

secs() { python3 -c 'import sys,time; print(f"{time.time():.3f}")'; }
# shellcheck source=scripts/bench-common.sh
. scripts/bench-common.sh
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

# Runs "$@" under /usr/bin/time; appends "wall_s peak_rss_kb" to the file $TIMING.
timed() { /usr/bin/time -f '%e %M' -a -o "$TIMING" "$@"; }

# Messages and bytes in the mbsync maildirs (files in cur/ and new/).
maildir_counts() {
    find "$1" -type f \( -path '*/cur/*' -o -path '*/new/*' \) -printf '%s\n' |
        awk '{n++; b+=$1} END {printf "%d %.0f\n", n, b}'
}

# "wall_s" of the last line of $TIMING (as written by `timed`).
last_wall() { tail -1 "$TIMING" | cut -d' ' -f1; }

bench_upload() {
    local budget="" rtt="" positional=()
    while [ $# -gt 0 ]; do
        case $1 in
            --budget) budget=$2; shift 2 ;;
            --rtt) rtt=$2; shift 2 ;;
            *) positional+=("$1"); shift ;;
        esac
    done
    local paced_default=""; [ -n "$budget$rtt" ] && paced_default=1
    local mailboxes=${positional[0]:-${paced_default:+2}} messages=${positional[1]:-${paced_default:+300}}
    mailboxes=${mailboxes:-4} messages=${messages:-5000}
    cargo build --release -q -p mailstage-extract -p mailstage-upload -p mailstage-tests \
        --bin mailstage-extract --bin mailstage-upload --bin bench-corpus --bin target-dovecot \
        --bin exchange-emulator --bin delay-proxy
    local work; work=$(mktemp -d "${TMPDIR:-/tmp}/mailstage-bench.XXXXXX")
    local ms="$PWD/target/release/mailstage-extract" mu="$PWD/target/release/mailstage-upload"
    echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
    start_corpus "$work" "$mailboxes" "$messages"
    # shellcheck disable=SC1091
    . "$work/corpus.env"
    local emails=() u
    for u in $USERS; do emails+=("$u@bench.test"); done
    # One large folder: the target stores mail as sdbox (Dovecot rewrites a maildir's
    # uidlist as it grows, ~35 APPENDs/s past 20,000 messages); TARGET_DOVECOT_FORMAT and
    # TARGET_DOVECOT_EXTRA (configuration lines) set the target otherwise.
    local format=${TARGET_DOVECOT_FORMAT-}
    [ "${BENCH_SHAPE:-}" = small ] && format=${format:-sdbox}
    exec 4> >(TARGET_DOVECOT_FORMAT="$format" target/release/target-dovecot "${emails[@]}" > "$work/target.env")
    while ! grep -q '^MAIL_DIR=' "$work/target.env" 2>/dev/null; do sleep 0.2; done
    local tport; tport=$(sed -n 's/^PORT=//p' "$work/target.env")
    if [ -n "$budget" ]; then
        exec 5> >(target/release/exchange-emulator "$tport" "$budget" > "$work/emulator.env")
        while ! grep -q '^PORT=' "$work/emulator.env" 2>/dev/null; do sleep 0.2; done
        tport=$(sed -n 's/^PORT=//p' "$work/emulator.env")
        echo "through the Exchange emulator: $budget APPENDs/s per mailbox"
    fi
    local TIMING="$work/timing"; : > "$TIMING"
    export MAILSTAGE_DIR="$work/stage" BENCH_TARGET_PASSWORD=admin-pw
    "$ms" endpoint new --name bench --server 127.0.0.1 --port "$PORT" --security none \
        --max-concurrent-migrations "$mailboxes" > /dev/null
    "$ms" batch new --name bench --endpoint bench --csv "$CSV" > /dev/null
    timed "$ms" batch start bench --quiet > "$work/extract.txt"
    local extract_s; extract_s=$(last_wall)
    "$mu" target new --name dst --kind imap --server 127.0.0.1 --port "$tport" --security none \
        --admin-user admin --password-env BENCH_TARGET_PASSWORD > /dev/null
    local status=0
    echo "upload: $mailboxes mailboxes at once, ${CONNECTIONS:-2} connection(s) per mailbox (CONNECTIONS=N to change)"
    timed "$mu" run --batch bench --target dst --quiet --concurrency "$mailboxes" \
        --connections-per-mailbox "${CONNECTIONS:-2}" > "$work/upload.txt" 2>&1 || status=$?
    [ $status = 0 ] || { echo "mailstage-upload run exited $status:" >&2; cat "$work/upload.txt" >&2; return 1; }
    local upload_s rss_kb; read -r upload_s rss_kb < <(tail -1 "$TIMING")
    local done; done=$("$mu" status --batch bench --target dst --json | python3 -c '
import json, sys
print(sum(r["done"] for r in json.load(sys.stdin)))')
    [ "$done" = "$MESSAGES" ] || { echo "uploaded $done of $MESSAGES" >&2; cat "$work/upload.txt" >&2; return 1; }
    if [ -z "$format" ]; then
        local on_target; on_target=$(find "$(sed -n 's/^MAIL_DIR=//p' "$work/target.env")" -type f \( -path '*/cur/*' -o -path '*/new/*' \) | wc -l)
        echo "target maildirs hold $on_target message files"
    fi
    tail -1 "$work/upload.txt"
    python3 - "$MESSAGES" "$BYTES" "$extract_s" "$upload_s" "$rss_kb" <<'PY'
import sys
n, b, ex, up, rss = int(sys.argv[1]), int(sys.argv[2]), *map(float, sys.argv[3:])
print(f"extract (Dovecot -> stage): {ex:.2f} s")
print(f"upload  (stage -> Dovecot): {up:.2f} s = {n/up:.0f} messages/s, {b/up/1e6:.1f} MB/s, peak RSS {rss/1024:.1f} MiB")
print(f"end to end: {ex+up:.2f} s for {n} messages, {b/1e6:.0f} MB")
PY
    if [ -n "$budget" ]; then
        exec 5>&-
        while ! grep -q '^END' "$work/emulator.env" 2>/dev/null; do sleep 0.2; done
        python3 - "$work/emulator.env" "$budget" "$upload_s" <<'PY'
import sys
lines = [l.split() for l in open(sys.argv[1]) if l.startswith("MAILBOX ")]
budget, took = float(sys.argv[2]), float(sys.argv[3])
# The best time under the budget: each mailbox's APPENDs beyond the bucket's first second's
# worth at the budget's rate, the mailboxes in parallel.
best = max((int(l[3]) - budget) / budget for l in lines)
for l in lines:
    print(f"  {l[1]}: {l[3]} APPENDs admitted, {l[5]} throttled")
print(f"budget's best time {best:.2f} s, took {took:.2f} s: {best / took:.2f} of the best (goal >= 0.9); "
      f"throttles per mailbox: {max(int(l[5]) for l in lines)} at most (goal <= 5)")
PY
    fi
    [ -n "$rtt" ] && upload_far "$work" "$rtt" "$upload_s" "${emails[@]}"
    echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
}

# Starts the delay proxy (RTT $rtt) in front of the corpus server's $SERVER_PORT on fd 5, on
# $PROXY_PORT (0: a free one, kept for the next passes); sets PORT to the port to use.
start_proxy() {
    [ -n "$rtt" ] || { PORT=$SERVER_PORT; return 0; }
    : > "$work/proxy.env"
    exec 5> >(target/release/delay-proxy "$SERVER_PORT" "$rtt" "$PROXY_PORT" > "$work/proxy.env")
    while ! grep -q '^PORT=' "$work/proxy.env" 2>/dev/null; do sleep 0.1; done
    PORT=$(sed -n 's/^PORT=//p' "$work/proxy.env")
    PROXY_PORT=$PORT
}

# Stops the delay proxy and prints what it carried (for the pass named $1).
stop_proxy() {
    [ -n "$rtt" ] || return 0
    exec 5>&-
    while ! grep -q '^COMMANDS_BY_NAME=' "$work/proxy.env" 2>/dev/null; do sleep 0.1; done
    local CONNECTIONS COMMANDS TURNS COMMANDS_BY_NAME
    # shellcheck disable=SC1091
    . <(grep -v '^PORT=' "$work/proxy.env")
    echo "  through the $rtt proxy ($1): $CONNECTIONS connections, $COMMANDS commands, $TURNS turns ($COMMANDS_BY_NAME)"
}

# The batch uploaded again, into a second target Dovecot behind the delay proxy.
upload_far() {
    local work=$1 rtt=$2 near_s=$3; shift 3
    exec 6> >(target/release/target-dovecot "$@" > "$work/far.env")
    while ! grep -q '^MAIL_DIR=' "$work/far.env" 2>/dev/null; do sleep 0.2; done
    local fport; fport=$(sed -n 's/^PORT=//p' "$work/far.env")
    exec 7> >(target/release/delay-proxy "$fport" "$rtt" > "$work/delay.env")
    while ! grep -q '^PORT=' "$work/delay.env" 2>/dev/null; do sleep 0.2; done
    local dport; dport=$(sed -n 's/^PORT=//p' "$work/delay.env")
    "$mu" target new --name far --kind imap --server 127.0.0.1 --port "$dport" --security none \
        --admin-user admin --password-env BENCH_TARGET_PASSWORD > /dev/null
    local status=0
    timed "$mu" run --batch bench --target far --quiet --concurrency "$mailboxes" \
        --connections-per-mailbox "${CONNECTIONS:-2}" > "$work/far.txt" 2>&1 || status=$?
    [ $status = 0 ] || { echo "upload through the delay proxy exited $status:" >&2; cat "$work/far.txt" >&2; return 1; }
    local far_s; far_s=$(last_wall)
    exec 7>&-
    while ! grep -q '^COMMANDS_BY_NAME=' "$work/delay.env" 2>/dev/null; do sleep 0.2; done
    exec 6>&-
    tail -1 "$work/far.txt"
    python3 - "$near_s" "$far_s" "$rtt" <<'PY'
import sys
near, far, rtt = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
print(f"upload through RTT {rtt}: {far:.2f} s, loopback {near:.2f} s: +{far - near:.2f} s (goal <= +2 s)")
PY
    grep -E '^(CONNECTIONS|COMMANDS|TURNS)=' "$work/delay.env"
}

bench_extract() {
    local rtt="" many_folders="" shape=corpus mbsync_on=${BENCH_MBSYNC:-1} cap=500000
    local args=()
    while [ $# -gt 0 ]; do
        case "$1" in
            --rtt) rtt=$2; shift 2 ;;
            --rtt=*) rtt=${1#--rtt=}; shift ;;
            --folders) many_folders=$2; shift 2 ;;
            --folders=*) many_folders=${1#--folders=}; shift ;;
            --small) shape=small; shift ;;
            --huge) shape=huge; mbsync_on=${BENCH_MBSYNC:-0}; shift ;;
            *) args+=("$1"); shift ;;
        esac
    done
    local default_mailboxes=4 default_messages=5000
    [ -n "$rtt" ] && default_messages=800
    case $shape in
        small) default_mailboxes=1 default_messages=100000 ;;
        huge) default_mailboxes=1 default_messages=510000 ;;
    esac
    if [ -n "$many_folders" ]; then
        default_mailboxes=1 default_messages=$((2 * many_folders))
        export BENCH_FOLDERS=$many_folders
    fi
    local mailboxes=${args[0]:-$default_mailboxes} messages=${args[1]:-$default_messages} depth=${BENCH_PIPELINE_DEPTH:-50}
    # What a full pass stages: the item cap keeps the newest 500,000 of a mailbox.
    local expect=$(( mailboxes * (messages < cap ? messages : cap) ))
    if [ $shape != corpus ]; then export BENCH_SHAPE=small; fi
    command -v mbsync > /dev/null || { echo "mbsync not found: apt-get install isync" >&2; return 1; }
    [ -x /usr/bin/time ] || { echo "/usr/bin/time not found: apt-get install time" >&2; return 1; }
    cargo build --release -q -p mailstage-extract -p mailstage-tests --bin mailstage-extract --bin bench-corpus \
        --bin delay-proxy
    local work; work=$(mktemp -d "${TMPDIR:-/tmp}/mailstage-bench.XXXXXX")
    local ms; ms="$PWD/target/release/mailstage-extract"
    echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"

    start_corpus "$work" "$mailboxes" "$messages"
    # shellcheck disable=SC1091
    . "$work/corpus.env"
    local SERVER_PORT=$PORT
    [ -z "$rtt" ] || echo "both tools reach the server through the delay proxy: $rtt round trip"
    local PROXY_PORT=0

    # mbsync: one process per mailbox, all at once, pull only into maildirs.
    write_mbsync_rcs "$work" "$depth"
    local rcs=("${MBSYNC_RCS[@]}")
    run_mbsync() {
        local rc pids=() failed=0
        : > "$TIMING"
        for rc in "${rcs[@]}"; do
            timed mbsync -q -c "$rc" -a > "$rc.log" 2>&1 &
            pids+=($!)
        done
        for p in "${pids[@]}"; do wait "$p" || failed=1; done
        if [ $failed = 1 ]; then
            echo "mbsync failed:" >&2; cat "$work"/mbsync/*.rc.log >&2; return 1
        fi
    }
    declare -A wall rss msgs mib
    local TIMING="$work/timing"
    sync
    for pass in full nochange; do
        [ "$mbsync_on" = 1 ] || break
        start_proxy
        # (the rc files name the port: rewrite it for this proxy)
        sed -i "s/^Port .*/Port $PORT/" "${rcs[@]}"
        t0=$(secs); run_mbsync; t1=$(secs)
        wall[mbsync_$pass]=$(python3 -c "print(f'{$t1-$t0:.2f}')")
        # Peak RSS: the sum over the parallel processes (all alive at once), in MiB.
        rss[mbsync_$pass]=$(awk '{s+=$2} END {printf "%.1f", s/1024}' "$TIMING")
        rss[mbsync_max_$pass]=$(awk '$2>m {m=$2} END {printf "%.1f", m/1024}' "$TIMING")
        read -r n b < <(maildir_counts "$work/mbsync")
        if [ $pass = full ]; then
            msgs[mbsync_$pass]=$n; mib[mbsync_$pass]=$((b / 1048576))
            [ "$n" = "$MESSAGES" ] || { echo "mbsync copied $n of $MESSAGES messages" >&2; return 1; }
        else
            msgs[mbsync_$pass]=$((n - msgs[mbsync_full])); mib[mbsync_$pass]=0
        fi
        echo "mbsync $pass pass: ${wall[mbsync_$pass]} s, peak RSS ${rss[mbsync_$pass]} MiB summed over $mailboxes processes (largest ${rss[mbsync_max_$pass]} MiB)"
        stop_proxy "mbsync $pass"
    done
    # mbsync's copy stays until the end (removed with $work): deleting 100,000 files makes
    # ext4's inode allocator step over the freed inodes for minutes (`recently_deleted`), which
    # doubled the next tool's time (session 8: mailstage --small 20.5 s right after the
    # deletions, 8-10 s on a rested filesystem). No tool runs right after mass deletions.
    sync

    # The write floor: the same message files copied (cp, from the page cache), one sync.
    mkdir -p "$work/floor"; sync
    t0=$(secs)
    (cd "$MAIL_DIR" && find . -type f \( -path '*/cur/*' -o -path '*/new/*' \) -print0 |
        xargs -0 cp --parents -t "$work/floor")
    sync -f "$work/floor"
    t1=$(secs)
    wall[floor]=$(python3 -c "print(f'{$t1-$t0:.2f}')")
    echo "write floor (cp of the message files, one sync -f): ${wall[floor]} s"
    sync

    # mailstage: one process for the whole batch.
    export MAILSTAGE_DIR="$work/stage"
    local status
    for pass in full nochange; do
        local cmd=start; [ $pass = nochange ] && cmd=sync
        start_proxy
        if [ $pass = full ]; then
            "$ms" endpoint new --name bench --server 127.0.0.1 --port "$PORT" --security none \
                --max-concurrent-migrations "$mailboxes" --max-concurrent-incremental-syncs "$mailboxes" > /dev/null
            "$ms" batch new --name bench --endpoint bench --csv "$CSV" > /dev/null
        fi
        : > "$TIMING"
        t0=$(secs)
        # shellcheck disable=SC2086
        status=0; timed ${BENCH_WRAP:-} "$ms" batch $cmd bench --quiet > "$work/ms-$pass.txt" 2>&1 || status=$?
        t1=$(secs)
        # (Exit status 2, done with skips, is what --huge expects: the item cap applies.)
        [ $status = 0 ] || { [ $shape = huge ] && [ $status = 2 ]; } ||
            { echo "mailstage-extract batch $cmd exited $status:" >&2; cat "$work/ms-$pass.txt" >&2; return 1; }
        wall[ms_$pass]=$(python3 -c "print(f'{$t1-$t0:.2f}')")
        # (The last line: time(1) writes "Command exited with non-zero status 2" before it.)
        rss[ms_$pass]=$(tail -1 "$TIMING" | awk '{printf "%.1f", $2/1024}')
        # What this pass staged, from the JSON status (messages and bytes over all mailboxes).
        read -r n b < <("$ms" batch status bench --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
def walk(o):
    if isinstance(o, dict):
        if "staged" in o and "staged_bytes" in o and "email" in o:
            yield o["staged"], o["staged_bytes"]
        for v in o.values(): yield from walk(v)
    elif isinstance(o, list):
        for v in o: yield from walk(v)
rows = list(walk(d))
print(sum(r[0] for r in rows), sum(r[1] for r in rows))')
        if [ $pass = full ]; then
            msgs[ms_$pass]=$n; mib[ms_$pass]=$((b / 1048576))
            [ "$n" = "$expect" ] || { echo "mailstage staged $n of $expect messages" >&2; cat "$work/ms-$pass.txt" >&2; return 1; }
        else
            msgs[ms_$pass]=$((n - msgs[ms_full])); mib[ms_$pass]=$(( (b / 1048576) - mib[ms_full] ))
        fi
        echo "mailstage $pass pass: ${wall[ms_$pass]} s, peak RSS ${rss[ms_$pass]} MiB (one process)"
        stop_proxy "mailstage $pass"
    done
    local blobs; blobs=$(find "$work/stage/blobs" -type f | wc -l)
    [ "$blobs" = "$expect" ] || { echo "the stage holds $blobs blobs for $expect messages" >&2; return 1; }
    "$ms" verify > "$work/verify.txt" || { echo "verify failed:" >&2; cat "$work/verify.txt" >&2; return 1; }
    echo "verify: $(tail -1 "$work/verify.txt")"

    echo
    echo "corpus ($shape): $MESSAGES messages, $((BYTES / 1048576)) MiB, $mailboxes mailboxes x $FOLDERS folders; mbsync PipelineDepth $depth"
    echo "MAILSTAGE_DURABILITY=${MAILSTAGE_DURABILITY:-auto} (auto: one syncfs per group where trusted)"
    printf '%-10s %-9s %9s %14s %10s %9s\n' tool pass "wall s" "peak RSS MiB" messages "MiB"
    for pass in full nochange; do
        [ "$mbsync_on" = 1 ] && printf '%-10s %-9s %9s %14s %10s %9s\n' mbsync $pass "${wall[mbsync_$pass]}" "${rss[mbsync_$pass]} (sum)" "${msgs[mbsync_$pass]}" "${mib[mbsync_$pass]}"
        printf '%-10s %-9s %9s %14s %10s %9s\n' mailstage $pass "${wall[ms_$pass]}" "${rss[ms_$pass]}" "${msgs[ms_$pass]}" "${mib[ms_$pass]}"
    done
    python3 - "$shape" "${wall[floor]}" "${wall[ms_full]}" "${wall[mbsync_full]:-0}" "${wall[ms_nochange]}" "${wall[mbsync_nochange]:-0}" "${rss[ms_full]}" "${rss[ms_nochange]}" "${rtt:-loopback}" "$many_folders" <<'PY'
import sys
shape = sys.argv[1]
floor, msf, mbf, msn, mbn, rf, rn = map(float, sys.argv[2:9])
where, many = sys.argv[9], sys.argv[10]
ok = lambda c: "meets" if c else "MISSES"
full_goal = 0.2 if shape == "small" else 0.85
if where != "loopback" or many:
    full_goal = 0.5
nc_goal = 0.5 if many else 0.2
floor_goal = 1.1 if shape == "corpus" else 2.0
print(f"link: {where}" + (f", {many} folders per mailbox" if many else ""))
print(f"ratio mailstage/write floor, full pass: {msf/floor:.2f} (goal <= {floor_goal}: {ok(msf/floor <= floor_goal)})")
if mbf > 0:
    print(f"ratio mailstage/mbsync, full pass:      {msf/mbf:.2f} (goal <= {full_goal}: {ok(msf/mbf <= full_goal)})")
    print(f"ratio mailstage/mbsync, no-change pass: {msn/mbn:.2f} (goal <= {nc_goal}: {ok(msn/mbn <= nc_goal)})")
print(f"mailstage peak RSS: {max(rf, rn):.1f} MiB (goal <= 64: {ok(max(rf, rn) <= 64)})")
PY
    echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
}

bench_lint() {
    local sizes=("$@") n
    [ ${#sizes[@]} -gt 0 ] || sizes=(5000 100000)
    cargo build --release -q -p mailstage-extract -p mailstage-upload -p mailstage-tests \
        --bin mailstage-extract --bin mailstage-upload --bin bench-corpus
    local ms="$PWD/target/release/mailstage-extract" mu="$PWD/target/release/mailstage-upload"
    export BENCH_SHAPE=small
    echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
    for n in "${sizes[@]}"; do
        # Each size in its own shell: start_corpus's EXIT trap stops its Dovecot there.
        (
            work=$(mktemp -d "${TMPDIR:-/tmp}/mailstage-bench.XXXXXX")
            start_corpus "$work" 1 "$n" > /dev/null
            # shellcheck disable=SC1091
            . "$work/corpus.env"
            export MAILSTAGE_DIR="$work/stage"
            "$ms" endpoint new --name bench --server 127.0.0.1 --port "$PORT" --security none > /dev/null
            "$ms" batch new --name bench --endpoint bench --csv "$CSV" > /dev/null
            "$ms" batch start bench --quiet > /dev/null
            /usr/bin/time -f "lint of 1 x $n messages: %e s, %M KiB peak RSS" \
                "$mu" lint --batch bench --assume m365 > /dev/null || [ $? = 2 ]
        )
    done
    echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
}

bench_report() {
    cargo build --release -q -p mailstage-extract
    local work; work=$(mktemp -d "${TMPDIR:-/tmp}/mailstage-bench.XXXXXX")
    trap 'rm -rf "$work"' RETURN
    local bin=target/release/mailstage-extract
    "$bin" --stage "$work/stage" endpoint new --name e --server 127.0.0.1 --security none >/dev/null
    python3 scripts/report-bench-index.py "$work/stage/index.sqlite" >/dev/null
    local f
    for f in text json csv html; do
        /usr/bin/time -f "$f: %e s, %M KiB peak RSS" "$bin" --stage "$work/stage" \
            batch report big --format "$f" --out "$work/report.$f" >/dev/null || true
    done
    /usr/bin/time -f "csv --all: %e s, %M KiB peak RSS" "$bin" --stage "$work/stage" \
        batch report big --format csv --all --out "$work/all.csv" >/dev/null || true
}

bench_merge() {
    local blobs=${1:-20000} size=${2:-102400}
    cargo build --release -q -p mailstage-extract -p mailstage-tests --bin mailstage-extract --bin stage-workload
    local work; work=$(mktemp -d "${TMPDIR:-/tmp}/mailstage-bench.XXXXXX")
    trap 'rm -rf "$work"' RETURN
    target/release/stage-workload "$work/stage" $((blobs * 5 / 4)) "$size"
    local bytes; bytes=$(du -sb "$work/stage/blobs" | cut -f1)
    echo "source stage: $(find "$work/stage/blobs" -type f | wc -l) blobs, $((bytes / 1048576)) MiB"
    local bin=target/release/mailstage-extract
    /usr/bin/time -f "first merge: %e s, %M KiB peak RSS" \
        "$bin" stage merge --into "$work/merged" "$work/stage" >/dev/null
    /usr/bin/time -f "second merge (nothing new): %e s, %M KiB peak RSS" \
        "$bin" stage merge --into "$work/merged" "$work/stage" >/dev/null
    "$bin" --stage "$work/merged" verify | tail -1
}

case "$what" in
    verify) shift || true; bench_verify "$@" ;;
    extract) shift || true; bench_extract "$@" ;;
    upload) shift || true; bench_upload "$@" ;;
    merge) shift || true; bench_merge "$@" ;;
    report) bench_report ;;
    lint) shift || true; bench_lint "$@" ;;
    *) echo "usage: scripts/bench.sh verify|merge [BLOBS] [SIZE] | extract [--rtt RTT] [--folders N] [MAILBOXES] [MESSAGES] | upload [--rtt RTT] [--budget N] [MAILBOXES] [MESSAGES] | lint [MESSAGES...] | report" >&2; exit 2 ;;
esac

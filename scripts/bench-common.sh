# Functions the benchmark scripts share (sourced by scripts/bench.sh, bench-ab.sh and
# bench-nochange.sh from the repository's root; they define `secs`).

# Starts bench-corpus (a harness Dovecot filled and warmed) in the background; it runs until
# fd 3 closes, which the EXIT trap does (and it removes $1 unless BENCH_KEEP is set).
# Leaves the KEY=value lines in $1/corpus.env.
start_corpus() {
    local work=$1 mailboxes=$2 messages=$3 t0 t1
    t0=$(secs)
    exec 3> >(target/release/bench-corpus "$work" "$mailboxes" "$messages" > "$work/corpus.env")
    local corpus=$!
    # (An EXIT trap: a RETURN trap would also fire when `.` and the inner functions return.)
    # shellcheck disable=SC2064
    trap "exec 3>&-; exec 4>&- 2>/dev/null; sleep 1; [ -n \"\${BENCH_KEEP:-}\" ] || rm -rf '$work'" EXIT
    while ! grep -q '^WARM_S=' "$work/corpus.env" 2>/dev/null; do
        kill -0 "$corpus" 2> /dev/null || { echo "bench-corpus ended before its corpus was ready" >&2; return 1; }
        sleep 0.5
    done
    t1=$(secs)
    local PORT CSV USERS MESSAGES BYTES FOLDERS MAIL_DIR FILL_S WARM_S
    # shellcheck disable=SC1091
    . "$work/corpus.env"
    echo "corpus: $mailboxes mailboxes x $messages messages = $MESSAGES messages," \
        "$((BYTES / 1048576)) MiB ($((BYTES / MESSAGES / 1024)) KiB average), $FOLDERS folders with mail each;" \
        "written in ${FILL_S} s, server index warmed in ${WARM_S} s (setup $(python3 -c "print(f'{$t1-$t0:.0f}')") s)"
}

# Writes one mbsync configuration per user of the corpus ($USERS, $PORT from corpus.env)
# under $1/mbsync, PipelineDepth $2, pulling every folder into a maildir; their paths go in
# the array MBSYNC_RCS.
write_mbsync_rcs() {
    local work=$1 depth=$2 u
    MBSYNC_RCS=()
    mkdir -p "$work/mbsync"
    for u in $USERS; do
        mkdir -p "$work/mbsync/$u"
        cat > "$work/mbsync/$u.rc" <<RC
IMAPAccount $u
Host 127.0.0.1
Port $PORT
User $u
Pass pw-$u
SSLType None
AuthMechs LOGIN
PipelineDepth $depth

IMAPStore $u-far
Account $u

MaildirStore $u-near
Path $work/mbsync/$u/
Inbox $work/mbsync/$u/INBOX
SubFolders Verbatim

Channel $u
Far :$u-far:
Near :$u-near:
Patterns *
Sync Pull
Create Near
SyncState *
RC
        MBSYNC_RCS+=("$work/mbsync/$u.rc")
    done
}

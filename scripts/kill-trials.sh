#!/usr/bin/env bash
# Kills the real binaries with SIGKILL at N random moments and checks that each re-run ends
# as an uninterrupted run does (the test suite runs 20 of each):
#   extract: `mailstage-extract batch start` during a full pass (tests/tests/extract_kill.rs);
#            the stage equals an uninterrupted pass.
#   upload:  `mailstage-upload run` (tests/tests/upload_kill.rs); every message on the
#            target exactly once.
#   scripts/kill-trials.sh [extract|upload|both] [N] [SEED]   N defaults to 200; SEED replays
set -euo pipefail
cd "$(dirname "$0")/.."

which=${1:-both}
n=${2:-200}
case $which in extract | upload | both) ;; *) echo "usage: $0 [extract|upload|both] [N] [SEED]" >&2; exit 64 ;; esac
case $n in '' | *[!0-9]*) echo "usage: $0 [extract|upload|both] [N] [SEED]" >&2; exit 64 ;; esac
export MAILSTAGE_KILL_TRIALS=$n MAILSTAGE_UPLOAD_KILL_TRIALS=$n
if [ $# -ge 3 ]; then
    export MAILSTAGE_KILL_SEED=$3
fi
tests=()
[ "$which" = upload ] || tests+=(--test extract_kill)
[ "$which" = extract ] || tests+=(--test upload_kill)
exec cargo test -p mailstage-tests "${tests[@]}" -- --nocapture --test-threads 1

#!/usr/bin/env bash
# Kills `mailstage-extract batch start` with SIGKILL at N random moments of a full pass
# (tests/tests/extract_kill.rs; the test suite runs 20) and checks that each re-run ends with
# the stage an uninterrupted pass gives.
#   scripts/kill-trials.sh [N] [SEED]   N defaults to 200; SEED replays a failed run
set -euo pipefail
cd "$(dirname "$0")/.."

n=${1:-200}
case $n in '' | *[!0-9]*) echo "usage: $0 [N] [SEED]" >&2; exit 64 ;; esac
export MAILSTAGE_KILL_TRIALS=$n
if [ $# -ge 2 ]; then
    export MAILSTAGE_KILL_SEED=$2
fi
exec cargo test -p mailstage-tests --test extract_kill -- --nocapture

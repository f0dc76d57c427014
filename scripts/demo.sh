#!/usr/bin/env bash
# A guided tour of what works today: build, stage a small mailbox, verify it, look at it as a
# maildir, damage a blob on purpose and watch verify name the message, then clean up.
# (Extraction from a live IMAP server joins this tour when `batch start` lands.)
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build -q -p mailstage-extract -p mailstage-upload -p mailstage-tests --bin stage-workload
bin=target/debug
demo=$(mktemp -d "${TMPDIR:-/tmp}/mailstage-demo.XXXXXX")
export MAILSTAGE_DIR="$demo/stage"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "stage 40 messages (the workload the crash test kills; every 5th is a duplicate)"
$bin/stage-workload "$MAILSTAGE_DIR" 40
find "$MAILSTAGE_DIR" -maxdepth 1 | sort
echo "blobs: $(find "$MAILSTAGE_DIR/blobs" -type f | wc -l) files for 40 messages"

step "mailstage-extract verify"
$bin/mailstage-extract verify

step "mailstage-extract maildir --out $demo/view"
$bin/mailstage-extract maildir --out "$demo/view"
ls "$demo/view/crash@example.com/INBOX/cur" | head -3

step "flip one byte in a blob, then verify again (exit status 1, message named)"
blob=$(find "$MAILSTAGE_DIR/blobs" -type f | sort | head -1)
chmod u+w "$blob"; printf 'X' | dd of="$blob" bs=1 seek=20 conv=notrunc status=none
$bin/mailstage-upload verify || echo "(exit status $?)"

step "sha256sum agrees with the blob names (this one no longer does)"
sha256sum "$blob"; basename "$blob"

step "gc removes what no row names"
$bin/mailstage-extract gc
echo
echo "demo files are in $demo (remove with: rm -rf $demo)"

#!/usr/bin/env bash
# A guided tour of what works today, on a tiny private Dovecot:
# test-server (TLS, every login of a batch CSV), an endpoint and a batch that extracts two
# mailboxes into a stage, an incremental sync, batch status, verify, the maildir audit view,
# an upload into a second private Dovecot (dry run, run, a resumed run that sends nothing,
# status), a blob damaged on purpose that verify names by mailbox, folder and UID, and gc.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build -q -p mailstage-extract -p mailstage-upload
cargo build -q -p mailstage-tests --bin demo-dovecot --bin target-dovecot
bin=target/debug
demo=$(mktemp -d "${TMPDIR:-/tmp}/mailstage-demo.XXXXXX")
export MAILSTAGE_DIR="$demo/stage"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
extract() { echo "\$ mailstage-extract $*"; $bin/mailstage-extract "$@"; }
upload() { echo "\$ mailstage-upload $*"; $bin/mailstage-upload "$@"; }

step "a tiny private Dovecot: alice, bob (through master user mailadmin), carol (wrong password)"
# The server runs until this script's end closes its standard input.
exec 3> >($bin/demo-dovecot "$demo" > "$demo/dovecot.env")
for _ in $(seq 100); do grep -q '^CSV=' "$demo/dovecot.env" 2>/dev/null && break; sleep 0.1; done
# shellcheck disable=SC1091
. "$demo/dovecot.env"
cat "$CSV"

step "is the server usable? (Test-MigrationServerAvailability)"
extract test-server --server localhost --port "$PORT" --security tls --ca-file "$CA_FILE" --csv "$CSV" \
    || echo "(exit status $?: carol's row fails, as it should)"

step "without trusting the server's private CA"
extract test-server --server localhost --port "$TLS_PORT" --security ssl || echo "(exit status $?)"

step "an endpoint (New-MigrationEndpoint) and a batch of alice and bob (New-MigrationBatch -AutoStart)"
grep -v '^carol' "$CSV" > "$demo/batch.csv"
extract endpoint new --name lab --server localhost --port "$PORT" --security tls --ca-file "$CA_FILE" > /dev/null
extract endpoint show lab
extract batch new --name demo --endpoint lab --csv "$demo/batch.csv" > /dev/null
extract batch start demo

step "an incremental sync: nothing new, one EXAMINE per folder"
extract batch sync demo --quiet

step "batch status (Get-MigrationBatch)"
extract batch status demo --users

step "verify: re-hash every blob, check every row"
extract verify

step "the maildir audit view"
extract maildir --out "$demo/view"
find "$demo/view/alice@contoso.edu" -mindepth 1 -maxdepth 1 | sort

step "a second private Dovecot to upload into (alice and bob, master user admin)"
exec 4> >($bin/target-dovecot alice@contoso.edu bob@contoso.edu > "$demo/target.env")
for _ in $(seq 100); do grep -q '^MAIL_DIR=' "$demo/target.env" 2>/dev/null && break; sleep 0.1; done
target_port=$(sed -n 's/^PORT=//p' "$demo/target.env")
DEMO_TARGET_PASSWORD=$(sed -n 's/^ADMIN_PASSWORD=//p' "$demo/target.env")
export DEMO_TARGET_PASSWORD
upload target new --name lab2 --kind imap --server localhost --port "$target_port" --security none \
    --admin-user admin --password-env DEMO_TARGET_PASSWORD

step "what would go where (a dry run), then the upload, then a run that sends nothing"
upload run --batch demo --target lab2 --dry-run --quiet
upload run --batch demo --target lab2
upload run --batch demo --target lab2 --quiet
upload status --batch demo --target lab2

step "flip one byte in a blob, then verify again (exit status 1, message named)"
blob=$(find "$MAILSTAGE_DIR/blobs" -type f | sort | head -1)
chmod u+w "$blob"; printf 'X' | dd of="$blob" bs=1 seek=20 conv=notrunc status=none
$bin/mailstage-upload verify || echo "(exit status $?)"
echo "sha256sum agrees with verify:"; sha256sum "$blob" | cut -c1-64; basename "$blob"

step "gc removes what no row names"
extract gc
echo
echo "demo files are in $demo (remove with: rm -rf $demo)"

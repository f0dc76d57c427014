//! The index's schema, as an ordered list of forward migrations.
//!
//! `PRAGMA user_version` holds how many migrations a file has had; opening an index applies the
//! missing ones, each in its own transaction, so a crash mid-upgrade leaves the previous version.

/// Migration `i` (0-based) brings a file from version `i` to version `i + 1`.
pub(crate) const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5, V6, V7, V8, V9, V10, V11, V12];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Version 1: the whole model. Passwords are never a column: CSVs are read at run time.
const V1: &str = r#"
CREATE TABLE endpoints (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    server TEXT NOT NULL,
    port INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
    security TEXT NOT NULL CHECK (security IN ('none', 'ssl', 'tls')),
    max_concurrent_migrations INTEGER NOT NULL DEFAULT 20 CHECK (max_concurrent_migrations > 0),
    max_concurrent_incremental_syncs INTEGER NOT NULL DEFAULT 10
        CHECK (max_concurrent_incremental_syncs > 0),
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);

CREATE TABLE batches (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    endpoint_id INTEGER NOT NULL REFERENCES endpoints(id),
    state TEXT NOT NULL DEFAULT 'Created',
    max_message_size INTEGER NOT NULL DEFAULT 36700160,
    max_items INTEGER NOT NULL DEFAULT 500000,
    include_folders TEXT NOT NULL DEFAULT '[]',
    exclude_folders TEXT NOT NULL DEFAULT '[]',
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    last_sync_at TEXT
);

CREATE TABLE mailboxes (
    id INTEGER PRIMARY KEY,
    batch_id INTEGER NOT NULL REFERENCES batches(id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    login_name TEXT NOT NULL,
    user_root TEXT,
    state TEXT NOT NULL DEFAULT 'Queued',
    last_error TEXT,
    last_sync_at TEXT,
    UNIQUE (batch_id, email)
);

CREATE TABLE folders (
    id INTEGER PRIMARY KEY,
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    wire_name BLOB NOT NULL,
    name TEXT NOT NULL,
    delimiter TEXT,
    special_use TEXT,
    uidvalidity INTEGER,
    highest_uid INTEGER NOT NULL DEFAULT 0,
    highest_modseq INTEGER,
    state TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'gone', 'excluded')),
    UNIQUE (mailbox_id, wire_name)
);

CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    folder_id INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
    uidvalidity INTEGER NOT NULL,
    uid INTEGER NOT NULL CHECK (uid > 0),
    state TEXT NOT NULL CHECK (state IN
        ('staged', 'skipped_size', 'skipped_item_cap', 'failed', 'retired')),
    reason TEXT,
    blob TEXT CHECK (blob IS NULL OR length(blob) = 64),
    size INTEGER NOT NULL CHECK (size >= 0),
    internaldate TEXT,
    internaldate_unix INTEGER,
    flags TEXT NOT NULL DEFAULT '',
    message_id TEXT,
    staged_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    CHECK (state <> 'staged' OR blob IS NOT NULL),
    UNIQUE (folder_id, uidvalidity, uid)
);
CREATE INDEX messages_blob ON messages(blob);
CREATE INDEX messages_date ON messages(internaldate_unix);

CREATE TABLE uploads (
    id INTEGER PRIMARY KEY,
    message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    target TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'in_flight', 'done', 'failed')),
    target_id TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    UNIQUE (message_id, target)
);

-- pending -> in_flight -> done | failed; in_flight -> pending (found absent after a crash);
-- failed -> pending (retry). Anything else is a bug and is refused by the database itself.
CREATE TRIGGER uploads_state_machine BEFORE UPDATE OF state ON uploads
WHEN NEW.state <> OLD.state AND NOT (
       (OLD.state = 'pending'   AND NEW.state = 'in_flight')
    OR (OLD.state = 'in_flight' AND NEW.state IN ('done', 'failed', 'pending'))
    OR (OLD.state = 'failed'    AND NEW.state = 'pending'))
BEGIN
    SELECT RAISE(ABORT, 'invalid upload state transition');
END;

CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    batch TEXT,
    mailbox TEXT,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
"#;

/// Version 2: what `batch new` records beyond V1, and the allowed lifecycle states.
///
/// - `batches.csv_path`: the absolute path of the batch's CSV. Passwords are re-read from it at
///   each run and never stored.
/// - `batches.auth`: the `--auth` choice (`auto`, `login`, `plain`, `xoauth2`).
/// - Batch states: `Created`, `Syncing`, `Synced`, `SyncedWithErrors`, `Failed`, `Removing`.
///   Mailbox states: `Queued`, `Syncing`, `Synced`, `Failed`. SQLite cannot add a CHECK to an
///   existing column without rebuilding the table, so triggers refuse any other value (the
///   Rust side has enums, [`crate::stage::index::BatchState`] and
///   [`crate::stage::index::MailboxState`], and never writes another).
const V2: &str = r#"
ALTER TABLE batches ADD COLUMN csv_path TEXT;
ALTER TABLE batches ADD COLUMN auth TEXT NOT NULL DEFAULT 'auto'
    CHECK (auth IN ('auto', 'login', 'plain', 'xoauth2'));

CREATE TRIGGER batches_state_insert BEFORE INSERT ON batches
WHEN NEW.state NOT IN ('Created', 'Syncing', 'Synced', 'SyncedWithErrors', 'Failed', 'Removing')
BEGIN SELECT RAISE(ABORT, 'invalid batch state'); END;
CREATE TRIGGER batches_state_update BEFORE UPDATE OF state ON batches
WHEN NEW.state NOT IN ('Created', 'Syncing', 'Synced', 'SyncedWithErrors', 'Failed', 'Removing')
BEGIN SELECT RAISE(ABORT, 'invalid batch state'); END;

CREATE TRIGGER mailboxes_state_insert BEFORE INSERT ON mailboxes
WHEN NEW.state NOT IN ('Queued', 'Syncing', 'Synced', 'Failed')
BEGIN SELECT RAISE(ABORT, 'invalid mailbox state'); END;
CREATE TRIGGER mailboxes_state_update BEFORE UPDATE OF state ON mailboxes
WHEN NEW.state NOT IN ('Queued', 'Syncing', 'Synced', 'Failed')
BEGIN SELECT RAISE(ABORT, 'invalid mailbox state'); END;
"#;

/// Version 3: the upload half.
///
/// - `targets`: where `mailstage-upload` puts mail. `settings` is JSON (server, login URL,
///   tenant, client id, and *where* a secret is read from at run time — never a secret).
/// - `uploads.mailbox` / `uploads.folder`: the target mailbox and folder a message went to,
///   so a resumed run looks for an `in_flight` message where it was sent (by its resume
///   key, see `upload::key`).
/// - `upload_runs`: per source mailbox and target, the state of the last run and its error.
const V3: &str = r#"
CREATE TABLE targets (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('imap', 'm365-imap')),
    settings TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);

ALTER TABLE uploads ADD COLUMN mailbox TEXT;
ALTER TABLE uploads ADD COLUMN folder TEXT;
CREATE INDEX uploads_target_state ON uploads(target, state);

CREATE TABLE upload_runs (
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    target TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('Uploading', 'Uploaded', 'UploadedWithErrors', 'Failed')),
    last_error TEXT,
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    PRIMARY KEY (mailbox_id, target)
);
"#;

/// Version 4: target mailboxes that differ from the source address, and run rates.
///
/// - `mailboxes.target_user`: the CSV's optional `TargetUserName`, the mailbox to upload
///   into when it is not the `EmailAddress` (a renamed user, another domain). NULL means the
///   `EmailAddress`.
/// - `upload_runs.started_at` (to the millisecond), `run_messages`, `run_bytes`: when the
///   last run of a mailbox began and what it has confirmed since, so `status` shows its
///   rate.
/// - `uploads_destination` and `messages_message_id`: resuming after a crash counts, per
///   in-flight message, the confirmed uploads in its target folder with the same Message-ID
///   (or INTERNALDATE); without them each count scanned every upload to the target.
/// - `uploads.lost_sends`: how often the link broke while the message was being sent and it
///   was then not found on the target; after a few it is set aside as failed, so one message
///   the link never carries does not hold its mailbox up.
/// - `endpoints.ca_file`, `endpoints.insecure`: the TLS trust an endpoint was created with
///   (a private CA's PEM file, or no certificate check for a lab server), so `batch start`
///   and every `batch sync` use it without being told again.
/// - `uploads.mailbox` is lower-cased (the target mailbox as records name it), so `Alice@x`
///   and `alice@x` are one mailbox.
const V4: &str = r#"
ALTER TABLE mailboxes ADD COLUMN target_user TEXT;
ALTER TABLE upload_runs ADD COLUMN started_at TEXT;
ALTER TABLE upload_runs ADD COLUMN run_messages INTEGER NOT NULL DEFAULT 0;
ALTER TABLE upload_runs ADD COLUMN run_bytes INTEGER NOT NULL DEFAULT 0;
CREATE INDEX uploads_destination ON uploads(target, mailbox, folder, state);
CREATE INDEX messages_message_id ON messages(message_id);
UPDATE uploads SET mailbox = lower(mailbox);
ALTER TABLE uploads ADD COLUMN lost_sends INTEGER NOT NULL DEFAULT 0;
ALTER TABLE endpoints ADD COLUMN ca_file TEXT;
ALTER TABLE endpoints ADD COLUMN insecure INTEGER NOT NULL DEFAULT 0 CHECK (insecure IN (0, 1));
"#;

/// Version 5: messages expunged on the source after they were recorded.
///
/// - `messages.deleted_on_source`: when an incremental pass noticed that the source no longer
///   holds the message (UTC, `YYYY-MM-DDTHH:MM:SSZ`); NULL while it is there. The row and its
///   blob stay (the stage is an audit record); the uploader does not send it if it has not
///   sent it yet, and what it already sent stays on the target.
const V5: &str = r#"
ALTER TABLE messages ADD COLUMN deleted_on_source TEXT;
"#;

/// Version 6: what an upload could not finish for a message the target stored.
///
/// - `uploads.flag_pending`: the target stored the message (`done`) but `\Flagged`, which
///   Microsoft 365 sets only by a STORE after the APPEND, is not set yet (the SELECT or
///   STORE was throttled, the link broke, or the server refused it; a refusal's words are in
///   `last_error`). The next attempt sets it by the recorded APPENDUID without sending the
///   message again.
/// - `upload_left_out`: the source folders the last run to a target left out by its
///   mapping (`--exclude`, `\All` views …), so `status` counts their messages as excluded,
///   not pending.
const V6: &str = r#"
ALTER TABLE uploads ADD COLUMN flag_pending INTEGER NOT NULL DEFAULT 0
    CHECK (flag_pending IN (0, 1));
CREATE TABLE upload_left_out (
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    target TEXT NOT NULL,
    folder_id INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
    PRIMARY KEY (mailbox_id, target, folder_id)
);
"#;

/// Version 7: a pinned server certificate.
///
/// - `endpoints.tls_fingerprint`: the SHA-256 fingerprint (`sha256:` and 64 hex digits) of
///   the one certificate the endpoint's server may present (`endpoint new
///   --tls-fingerprint`), for servers with a self-signed certificate; NULL when none is
///   pinned. A fingerprint is public: it is not a secret.
const V7: &str = r#"
ALTER TABLE endpoints ADD COLUMN tls_fingerprint TEXT;
"#;

/// Version 8: what the migration report reconciles against.
///
/// - `folders.source_messages`, `folders.source_checked_at`: how many messages the source
///   reported in the folder at the last pass (EXAMINE's EXISTS for a folder that is read,
///   STATUS MESSAGES for one the batch's patterns leave out) and when (UTC). NULL before the
///   first pass that records it.
/// - `folders.note`: why a folder in state `excluded` is left out (the pattern), in words.
const V8: &str = r#"
ALTER TABLE folders ADD COLUMN source_messages INTEGER;
ALTER TABLE folders ADD COLUMN source_checked_at TEXT;
ALTER TABLE folders ADD COLUMN note TEXT;
"#;

/// Version 9: a batch split into shards (`batch plan B --shards N`).
///
/// - `batches.shards`: how many shards the batch is planned in; NULL before a plan.
/// - `mailboxes.shard`: the mailbox's shard (0 to `shards - 1`); set once and never moved, so
///   every shard, every later sync and every merged stage agree. NULL until planned.
/// - `mailboxes.planned_bytes`, `mailboxes.planned_messages`: what the source reported for the
///   mailbox when it was planned (NULL when the size was unknown and the shard came from a
///   hash of the address).
/// - `events_at`: merging stages (`stage merge`) looks events up by time to copy each once.
const V9: &str = r#"
ALTER TABLE batches ADD COLUMN shards INTEGER CHECK (shards IS NULL OR shards > 0);
ALTER TABLE mailboxes ADD COLUMN shard INTEGER CHECK (shard IS NULL OR shard >= 0);
ALTER TABLE mailboxes ADD COLUMN planned_bytes INTEGER;
ALTER TABLE mailboxes ADD COLUMN planned_messages INTEGER;
CREATE INDEX events_at ON events(at);
"#;

/// Version 10: other users' and shared namespaces.
///
/// - `batches.include_namespaces`: the namespaces besides the personal one a batch copies
///   (`batch new --include-namespace shared|other`), a JSON array of `other_users` /
///   `shared`; empty (the default) copies the personal namespace only.
/// - `namespace_folders`: the folders of other users' or shared namespaces the last pass of
///   a mailbox listed and left out (not the user's own mail), for `batch status`; replaced
///   by every pass.
const V10: &str = r#"
ALTER TABLE batches ADD COLUMN include_namespaces TEXT NOT NULL DEFAULT '[]';
CREATE TABLE namespace_folders (
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    namespace TEXT NOT NULL CHECK (namespace IN ('other_users', 'shared')),
    PRIMARY KEY (mailbox_id, name)
);
"#;

/// Version 11: `listed_messages`, the metadata a pass listed and has not yet stored (one row
/// per new message, written as the FETCH responses arrive), so that a pass holds no
/// mailbox-sized list in memory and decides the caps in SQL. Scratch space of one pass, not a
/// record: a pass clears its mailbox's rows when it starts and when it ends, nothing else reads
/// them (status, report, verify, upload and `stage merge` see `messages` only), and a crash
/// leaves rows the mailbox's next pass clears. `sort_date` is INTERNALDATE in seconds, the
/// smallest integer when unknown (oldest); `folder_pos` is the folder's place in the pass,
/// which breaks ties on date before the UID.
const V11: &str = r#"
CREATE TABLE listed_messages (
    id INTEGER PRIMARY KEY,
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    folder_id INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
    folder_pos INTEGER NOT NULL,
    uid INTEGER NOT NULL CHECK (uid > 0),
    size INTEGER NOT NULL CHECK (size >= 0),
    internaldate TEXT,
    internaldate_unix INTEGER,
    sort_date INTEGER NOT NULL,
    flags TEXT NOT NULL DEFAULT '',
    verdict TEXT NOT NULL DEFAULT 'fetch'
        CHECK (verdict IN ('fetch', 'skipped_size', 'skipped_item_cap')),
    UNIQUE (folder_id, uid)
);
CREATE INDEX listed_newest ON listed_messages(mailbox_id, sort_date DESC, folder_pos, uid);
"#;

/// Version 12: `stage_format.blob_levels`, the fan-out levels of the blob directory. A stage
/// upgraded to v12 still holds its blobs as `blobs/ab/cd/<sha256>` (2) until it is opened for
/// writing, which moves every blob to `blobs/ab/<sha256>` and then records 1
/// (`stage::layout`); readers look in both places while it is 2. A new stage records 2 here
/// and 1 as soon as it is opened for writing (its empty blob directory has nothing to move).
const V12: &str = r#"
CREATE TABLE stage_format (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    blob_levels INTEGER NOT NULL CHECK (blob_levels IN (1, 2))
);
INSERT INTO stage_format (id, blob_levels) VALUES (1, 2);
"#;

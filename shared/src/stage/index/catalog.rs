//! Endpoints, batches, mailboxes and folders: the rows every message hangs from.

use rusqlite::{OptionalExtension, Row};

use super::Index;
use crate::catalog::EndpointSettings;
use crate::stage::error::{Result, StageError};

const ENDPOINT_SELECT: &str = "SELECT name, server, port, security, max_concurrent_migrations,
    max_concurrent_incremental_syncs, ca_file, insecure, tls_fingerprint FROM endpoints";

fn endpoint_from_row(r: &Row<'_>) -> rusqlite::Result<EndpointSettings> {
    Ok(EndpointSettings {
        name: r.get(0)?,
        server: r.get(1)?,
        port: r.get(2)?,
        security: r.get::<_, String>(3)?.parse().map_err(|e: String| {
            rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, e.into())
        })?,
        max_concurrent_migrations: r.get(4)?,
        max_concurrent_incremental_syncs: r.get(5)?,
        tls: crate::catalog::TlsTrust {
            ca_file: r.get::<_, Option<String>>(6)?.map(std::path::PathBuf::from),
            insecure: r.get(7)?,
            fingerprint: r
                .get::<_, Option<String>>(8)?
                .map(|f| f.parse())
                .transpose()
                .map_err(|e: crate::imap::FingerprintError| {
                    rusqlite::Error::FromSqlConversionFailure(
                        8,
                        rusqlite::types::Type::Text,
                        e.into(),
                    )
                })?,
        },
    })
}

/// A mailbox (one CSV row, without its password) to add to a batch.
#[derive(Clone, Debug)]
pub struct NewMailbox {
    /// The Microsoft 365 address (`EmailAddress`).
    pub email: String,
    /// The login on the IMAP server (`UserName`).
    pub login_name: String,
    /// Where the user's tree starts for Courier-style admin logins (`UserRoot`).
    pub user_root: Option<String>,
    /// The mailbox to upload into when it is not `email` (`TargetUserName`).
    pub target_user: Option<String>,
}

/// A folder as the server lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FolderInfo {
    /// The name exactly as sent on the wire (modified UTF-7), used to select it again.
    pub wire_name: Vec<u8>,
    /// The decoded name, with the server's hierarchy delimiter.
    pub name: String,
    /// The hierarchy delimiter, if the server has one.
    pub delimiter: Option<char>,
    /// The SPECIAL-USE attribute (`\Sent`, `\Trash`, …), if any.
    pub special_use: Option<String>,
}

impl Index {
    /// Stores a new endpoint; refuses a name already in use.
    pub fn add_endpoint(&self, e: &EndpointSettings) -> Result<i64> {
        let exists = self.sql(
            self.conn
                .query_row("SELECT 1 FROM endpoints WHERE name = ?1", [&e.name], |_| {
                    Ok(())
                })
                .optional(),
        )?;
        if exists.is_some() {
            return Err(StageError::Refused(format!(
                "an endpoint named {:?} already exists",
                e.name
            )));
        }
        self.sql(
            self.conn.execute(
                "INSERT INTO endpoints (name, server, port, security, max_concurrent_migrations,
                 max_concurrent_incremental_syncs, ca_file, insecure, tls_fingerprint)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                (
                    &e.name,
                    &e.server,
                    e.port,
                    e.security.as_str(),
                    e.max_concurrent_migrations,
                    e.max_concurrent_incremental_syncs,
                    e.tls
                        .ca_file
                        .as_deref()
                        .map(|p| p.to_string_lossy().into_owned()),
                    e.tls.insecure,
                    e.tls.fingerprint.map(|f| f.to_string()),
                ),
            ),
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// The endpoint named `name`; [`StageError::NotFound`] when there is none.
    pub fn endpoint(&self, name: &str) -> Result<EndpointSettings> {
        let sql = format!("{ENDPOINT_SELECT} WHERE name = ?1");
        self.sql(
            self.conn
                .query_row(&sql, [name], endpoint_from_row)
                .optional(),
        )?
        .ok_or_else(|| StageError::NotFound {
            kind: "endpoint",
            name: name.to_owned(),
        })
    }

    /// Every endpoint, by name.
    pub fn endpoints(&self) -> Result<Vec<EndpointSettings>> {
        let mut stmt = self.sql(
            self.conn
                .prepare(&format!("{ENDPOINT_SELECT} ORDER BY name")),
        )?;
        let rows = stmt.query_map([], endpoint_from_row);
        self.sql(rows.and_then(Iterator::collect))
    }

    /// The names of the batches that read from the endpoint `name`, sorted.
    pub fn batches_using_endpoint(&self, name: &str) -> Result<Vec<String>> {
        let mut stmt = self.sql(self.conn.prepare(
            "SELECT b.name FROM batches b JOIN endpoints e ON e.id = b.endpoint_id
             WHERE e.name = ?1 ORDER BY b.name",
        ))?;
        let rows = stmt.query_map([name], |r| r.get(0));
        self.sql(rows.and_then(Iterator::collect))
    }

    /// Removes the endpoint `name` and records `endpoint.removed`.
    ///
    /// Refused ([`StageError::Refused`]) while a batch uses it, naming those batches: remove
    /// them first.
    pub fn remove_endpoint(&mut self, name: &str) -> Result<()> {
        self.endpoint(name)?;
        let users = self.batches_using_endpoint(name)?;
        if !users.is_empty() {
            return Err(StageError::Refused(format!(
                "endpoint {name:?} is used by batch(es) {}; remove them first",
                users.join(", ")
            )));
        }
        self.write_tx(|tx| {
            tx.execute("DELETE FROM endpoints WHERE name = ?1", [name])?;
            super::insert_event(tx, None, None, "endpoint.removed", name)
        })
    }

    /// The id of a batch by name.
    pub fn batch_id(&self, name: &str) -> Result<i64> {
        self.id_of("batch", "SELECT id FROM batches WHERE name = ?1", name)
    }

    /// Adds a mailbox to a batch, or returns the existing one with the same address.
    pub fn add_mailbox(&self, batch_id: i64, m: &NewMailbox) -> Result<i64> {
        self.sql(self.conn.query_row(
            "INSERT INTO mailboxes (batch_id, email, login_name, user_root, target_user)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (batch_id, email) DO UPDATE
                 SET login_name = excluded.login_name, user_root = excluded.user_root,
                     target_user = excluded.target_user
             RETURNING id",
            (
                batch_id,
                &m.email,
                &m.login_name,
                &m.user_root,
                &m.target_user,
            ),
            |r| r.get(0),
        ))
    }

    /// Records a folder (new or seen again) with its UIDVALIDITY and returns its id.
    ///
    /// A pass uses [`Index::open_folder`], which also handles a changed UIDVALIDITY.
    pub fn upsert_folder(&self, mailbox_id: i64, f: &FolderInfo, uidvalidity: u32) -> Result<i64> {
        self.sql(upsert_folder_on(&self.conn, mailbox_id, f, uidvalidity))
    }

    /// The highest UID recorded for a folder (0 when none).
    pub fn highest_uid(&self, folder_id: i64) -> Result<u32> {
        self.sql(self.conn.query_row(
            "SELECT highest_uid FROM folders WHERE id = ?1",
            [folder_id],
            |r| r.get(0),
        ))
    }
}

/// The folder row's upsert, inside or outside a transaction.
pub(super) fn upsert_folder_on(
    conn: &rusqlite::Connection,
    mailbox_id: i64,
    f: &FolderInfo,
    uidvalidity: u32,
) -> rusqlite::Result<i64> {
    conn.query_row(
        "INSERT INTO folders (mailbox_id, wire_name, name, delimiter, special_use, uidvalidity)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (mailbox_id, wire_name) DO UPDATE
             SET name = excluded.name, delimiter = excluded.delimiter,
                 special_use = excluded.special_use, uidvalidity = excluded.uidvalidity,
                 state = 'active'
         RETURNING id",
        (
            mailbox_id,
            &f.wire_name,
            &f.name,
            f.delimiter.map(String::from),
            &f.special_use,
            uidvalidity,
        ),
        |r| r.get(0),
    )
}

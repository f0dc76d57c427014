//! The lifecycle states of batches and mailboxes, as stored in the index, and the methods that
//! change them (each change commits with its `batch.state` / `mailbox.state` event).
//!
//! The names are Microsoft's (`Get-MigrationBatch` shows `Created`, `Syncing`, `Synced`,
//! `SyncedWithErrors`, `Failed`, `Removing`). Schema V2 has triggers that refuse any other value;
//! these enums are the only way Rust writes one.

use std::fmt;
use std::str::FromStr;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

use super::not_found_batch;
use super::{Index, insert_event};
use crate::login::AuthChoice;
use crate::stage::error::{Result as StageResult, StageError};

/// Declares a state enum with its stored names and the conversions every state needs.
macro_rules! state_enum {
    ($(#[$doc:meta])* $name:ident, $what:literal { $($(#[$vdoc:meta])* $variant:ident,)+ }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl $name {
            /// Every state, in lifecycle order.
            pub const ALL: &[$name] = &[$($name::$variant),+];

            /// The name stored in the index and shown to the admin.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => stringify!($variant),)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str().eq_ignore_ascii_case(s))
                    .ok_or_else(|| {
                        let names: Vec<_> = $name::ALL.iter().map(|v| v.as_str()).collect();
                        format!(concat!("unknown ", $what, " state {:?}: one of {}"), s, names.join(", "))
                    })
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        sql_as_word!($name);
    };
}

/// Stores an enum as its `as_str()` word and reads it back with its `FromStr`; a word it
/// does not know is a conversion error with the `FromStr` message.
macro_rules! sql_as_word {
    ($name:ty) => {
        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $name {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                value
                    .as_str()?
                    .parse()
                    .map_err(|e: String| FromSqlError::Other(e.into()))
            }
        }
    };
}

// `batches.auth` (`endpoints.security` is read and written by its word in `catalog.rs`:
// `Security` belongs to the IMAP crate).
sql_as_word!(AuthChoice);

state_enum!(
    /// Where a batch is in its life.
    BatchState, "batch" {
        /// Created by `batch new`; nothing copied yet.
        Created,
        /// A pass is running.
        Syncing,
        /// The last pass copied every mailbox.
        Synced,
        /// The last pass finished, but some items or mailboxes failed.
        SyncedWithErrors,
        /// The last pass could not run (e.g. the server was unreachable).
        Failed,
        /// `batch remove` has started; the rows are being deleted.
        Removing,
    }
);

state_enum!(
    /// Where one mailbox of a batch is.
    MailboxState, "mailbox" {
        /// Waiting for its first pass.
        Queued,
        /// Being copied.
        Syncing,
        /// Its last pass finished.
        Synced,
        /// Its last pass failed; `last_error` says why.
        Failed,
    }
);

impl Index {
    /// Sets a batch's state and records `batch.state`, in one transaction. `Synced` and
    /// `SyncedWithErrors` also set the batch's last sync time to now.
    pub fn set_batch_state(&mut self, name: &str, state: BatchState) -> StageResult<()> {
        let changed = self.write_tx(|tx| {
            let changed = tx.execute(
                "UPDATE batches SET state = ?2,
                     last_sync_at = CASE WHEN ?2 IN ('Synced', 'SyncedWithErrors')
                         THEN strftime('%Y-%m-%dT%H:%M:%SZ', 'now') ELSE last_sync_at END
                 WHERE name = ?1",
                (name, state),
            )?;
            if changed > 0 {
                insert_event(tx, Some(name), None, "batch.state", state.as_str())?;
            }
            Ok(changed)
        })?;
        match changed {
            0 => Err(not_found_batch(name)),
            _ => Ok(()),
        }
    }

    /// Sets a mailbox's state and last error (`None` clears it) and records `mailbox.state`,
    /// in one transaction. `Synced` also sets the mailbox's last sync time to now.
    pub fn set_mailbox_state(
        &mut self,
        batch: &str,
        email: &str,
        state: MailboxState,
        error: Option<&str>,
    ) -> StageResult<()> {
        self.change_mailbox_state(batch, email, state, error, None)
    }

    /// [`Index::set_mailbox_state`] and one more event about the mailbox (`kind`, `detail`),
    /// all in one transaction: how a pass records that a mailbox finished.
    pub fn set_mailbox_state_with_event(
        &mut self,
        batch: &str,
        email: &str,
        state: MailboxState,
        error: Option<&str>,
        kind: &str,
        detail: &str,
    ) -> StageResult<()> {
        self.change_mailbox_state(batch, email, state, error, Some((kind, detail)))
    }

    fn change_mailbox_state(
        &mut self,
        batch: &str,
        email: &str,
        state: MailboxState,
        error: Option<&str>,
        also: Option<(&str, &str)>,
    ) -> StageResult<()> {
        let detail = match error {
            Some(e) => format!("{state}: {e}"),
            None => state.to_string(),
        };
        let changed = self.write_tx(|tx| {
            let changed = tx.execute(
                "UPDATE mailboxes SET state = ?3, last_error = ?4,
                     last_sync_at = CASE WHEN ?3 = 'Synced'
                         THEN strftime('%Y-%m-%dT%H:%M:%SZ', 'now') ELSE last_sync_at END
                 WHERE batch_id = (SELECT id FROM batches WHERE name = ?1) AND email = ?2",
                (batch, email, state, error),
            )?;
            if changed > 0 {
                insert_event(tx, Some(batch), Some(email), "mailbox.state", &detail)?;
                if let Some((kind, more)) = also {
                    insert_event(tx, Some(batch), Some(email), kind, more)?;
                }
            }
            Ok(changed)
        })?;
        if changed > 0 {
            return Ok(());
        }
        // Nothing matched: name what is missing, the batch or the mailbox.
        self.batch_id(batch)?;
        Err(StageError::NotFound {
            kind: "mailbox",
            name: format!("{email} (batch {batch})"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_roundtrip_and_unknown_ones_are_named() {
        for s in BatchState::ALL {
            assert_eq!(s.as_str().parse::<BatchState>(), Ok(*s));
        }
        for s in MailboxState::ALL {
            assert_eq!(s.as_str().to_lowercase().parse::<MailboxState>(), Ok(*s));
        }
        let err = "Done".parse::<BatchState>().unwrap_err();
        assert!(err.contains("unknown batch state \"Done\""), "{err}");
        assert!(err.contains("SyncedWithErrors"), "{err}");
    }
}

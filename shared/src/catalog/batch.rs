//! A batch as `batch new` defines it (`New-MigrationBatch`): which endpoint it reads, where
//! its CSV is, how to log in, which folders and the caps. Never a password.

use std::path::PathBuf;

use crate::login::AuthChoice;

/// Microsoft's per-message limit, "35 MB", read as 35 MiB (36,700,160 bytes) as Exchange's
/// own size values are.
pub const DEFAULT_MAX_MESSAGE_SIZE: u64 = 35 * 1024 * 1024;

/// Microsoft's per-mailbox item limit: the newest 500,000 items move.
pub const DEFAULT_MAX_ITEMS: u64 = 500_000;

/// Everything `batch new` records about a batch (never a password).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct BatchSettings {
    /// The batch's name, unique in the stage.
    pub name: String,
    /// The name of the endpoint it reads from.
    pub endpoint: String,
    /// The absolute path of its CSV; passwords are read from it at each run. `None` when none
    /// was recorded (a pass then needs the CSV given to it).
    pub csv_path: Option<PathBuf>,
    /// How to log in to the IMAP server.
    pub auth: AuthChoice,
    /// Folder patterns to copy (empty: every mail folder).
    pub include_folders: Vec<String>,
    /// Folder patterns to leave behind.
    pub exclude_folders: Vec<String>,
    /// Namespaces copied besides the personal one (`--include-namespace`), each into its
    /// own subtree (`Shared/…`, `Other Users/alice/…`); empty: the user's own mail only.
    pub include_namespaces: Vec<crate::extract::namespaces::ForeignNamespace>,
    /// Messages larger than this many bytes are recorded and left behind.
    pub max_message_size: u64,
    /// At most this many items per mailbox (the newest are kept).
    pub max_items: u64,
}

impl BatchSettings {
    /// A batch with Microsoft's limits, `auto` login, every folder and no CSV path yet.
    pub fn new(name: &str, endpoint: &str) -> Self {
        Self {
            name: name.to_owned(),
            endpoint: endpoint.to_owned(),
            csv_path: None,
            auth: AuthChoice::Auto,
            include_folders: Vec::new(),
            exclude_folders: Vec::new(),
            include_namespaces: Vec::new(),
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_items: DEFAULT_MAX_ITEMS,
        }
    }
}

//! Listing one mailbox's folders: NAMESPACE when the server offers it, `LIST "" "*"`, and with
//! a `UserRoot` also the root's own subtree (Courier shows an administrator the users'
//! folders as `#shared.USER…`, outside what `*` lists), then [`select_folders`]. A listing in
//! which no folder is left to read is an error with a hint, not an empty success. Where the
//! server offers LIST-STATUS (RFC 5819), the `*` listing also returns each folder's STATUS,
//! which lets a pass leave unchanged folders closed ([`super::unchanged`]).

use tokio::io::{AsyncRead, AsyncWrite};

use super::folders::{FolderPlan, LeftOut, select_folders};
use super::namespaces::Ownership;
use super::{ExtractError, Limits, MailboxJob};
use crate::imap::mutf7;
use crate::imap::types::StatusResponse;
use crate::imap::{During as _, ImapStepError, ListEntry, Session};

/// What a mailbox's listing gave.
pub(crate) struct Listing {
    /// The folders to read.
    pub plans: Vec<FolderPlan>,
    /// The folders left out, and why.
    pub left_out: Vec<LeftOut>,
    /// The STATUS of the listed folders, when the server returned them with the listing
    /// (LIST-STATUS); `None` otherwise.
    pub statuses: Option<Vec<StatusResponse>>,
}

/// Lists and chooses the folders of `mb` on a logged-in session.
pub(crate) async fn list_folders<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut Session<S>,
    mb: &MailboxJob,
    limits: &Limits,
) -> Result<Listing, ExtractError> {
    let exchange = s.greeting().text.contains("Microsoft Exchange");
    // NAMESPACE and LIST go out together: one round trip for both.
    let items = s
        .has_capability("LIST-STATUS")
        .then(|| super::unchanged::status_items(s.has_capability("CONDSTORE")));
    let what = match items {
        Some(_) => "listing folders with their STATUS",
        None => "listing folders",
    };
    let (namespaces, (mut listed, statuses)) = if s.has_capability("NAMESPACE") {
        let (ns, reply) = s
            .namespace_and_list(b"", b"*", items)
            .await
            .during(|| what.into())?;
        (Some(ns), reply)
    } else {
        let reply = match items {
            Some(items) => s.list_with_status(b"", b"*", items).await,
            None => s.list(b"", b"*").await.map(|l| (l, Vec::new())),
        };
        (None, reply.during(|| what.into())?)
    };
    let statuses = items.map(|_| statuses);
    let ownership = match namespaces {
        None => Ownership::everything_own(),
        Some(Ok(ns)) => Ownership::from_namespaces(&ns),
        Some(Err(source)) if source.is_transient() => {
            return Err(ImapStepError {
                context: "asking for the namespaces".into(),
                source,
            }
            .into());
        }
        Some(Err(e)) => {
            tracing::warn!(mailbox = %mb.email, "NAMESPACE failed ({e}); every listed folder counts as the user's own");
            Ownership::everything_own()
        }
    };
    if let Some(root) = root_pattern(mb.user_root.as_deref(), &listed) {
        let under_root = s
            .list(b"", root.as_bytes())
            .await
            .during(|| format!("listing folders under UserRoot {root:?}"))?;
        for entry in under_root {
            if !listed.iter().any(|l| l.name == entry.name) {
                listed.push(entry);
            }
        }
    }
    let (plans, left_out) = select_folders(
        &listed,
        mb.user_root.as_deref(),
        &ownership,
        limits,
        exchange,
    );
    for l in &left_out {
        tracing::debug!(mailbox = %mb.email, folder = %l.name, "left out: {}", l.reason);
    }
    let foreign: Vec<&str> = left_out
        .iter()
        .filter(|l| l.namespace.is_some())
        .map(|l| l.name.as_str())
        .collect();
    if !foreign.is_empty() {
        tracing::info!(
            mailbox = %mb.email,
            "left out {} folder(s) of other users' or shared namespaces: {}",
            foreign.len(),
            foreign.join(", ")
        );
    }
    if plans.is_empty() && limits.include.is_empty() && limits.exclude.is_empty() {
        return Err(ExtractError::NothingToMigrate {
            mailbox: mb.email.clone(),
            hint: nothing_hint(mb),
        });
    }
    Ok(Listing {
        plans,
        left_out,
        statuses,
    })
}

/// Lists the folders a pass of this CSV row would read, on a logged-in session, with the
/// batch's default folder filters: `Ok(Some(hint))` when there is none (the pass would fail
/// the mailbox as having nothing to migrate), `Ok(None)` when there is one.
pub(crate) async fn nothing_to_migrate<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut Session<S>,
    row: &crate::catalog::BatchRow,
) -> Result<Option<String>, ExtractError> {
    let mb = MailboxJob {
        mailbox_id: 0,
        email: row.email.clone(),
        user_name: row.user_name.clone(),
        password: row.password.clone(),
        user_root: row.user_root.clone(),
    };
    let limits = Limits {
        max_message_size: u64::MAX,
        max_items: u64::MAX,
        include: Vec::new(),
        exclude: Vec::new(),
        include_namespaces: Vec::new(),
    };
    match list_folders(s, &mb, &limits).await {
        Ok(_) => Ok(None),
        Err(ExtractError::NothingToMigrate { hint, .. }) => Ok(Some(hint)),
        Err(e) => Err(e),
    }
}

/// `LIST` pattern for the `UserRoot` subtree (`#shared.alice*` for `/#shared/alice` on a
/// server whose delimiter is `.`), in modified UTF-7.
fn root_pattern(user_root: Option<&str>, listed: &[ListEntry]) -> Option<String> {
    let root = user_root?.trim_matches('/');
    if root.is_empty() {
        return None;
    }
    let d = listed
        .iter()
        .find_map(|l| l.delimiter.as_deref()?.chars().next())
        .unwrap_or('/');
    let root: String = root.chars().map(|c| if c == '/' { d } else { c }).collect();
    Some(format!("{}*", mutf7::encode(&root)))
}

/// Why a listing can come back without a folder to read, for the login at hand.
fn nothing_hint(mb: &MailboxJob) -> String {
    match &mb.user_root {
        Some(root) => format!(
            "no folder of login {:?} lies under UserRoot {root:?}: check the UserRoot column (the \
             user's folders must exist there and be readable by that login)",
            mb.user_name
        ),
        None => format!(
            "login {:?} sees no folder, not even INBOX: check the UserName column (an admin login \
             into a user that does not exist, e.g. on Cyrus, logs in to an empty mailbox)",
            mb.user_name
        ),
    }
}

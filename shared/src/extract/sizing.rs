//! How big each mailbox is, in one quick pass that fetches no body: log in, list the folders
//! a pass would read (the batch's patterns apply), and per folder EXAMINE and
//! `UID FETCH 1:* (UID RFC822.SIZE)`. Every IMAP server answers that (Dovecot, Cyrus and
//! Courier alike; STATUS=SIZE and QUOTA are not everywhere), and it costs a few dozen bytes
//! per message. `batch plan` balances shards with it.

use std::sync::Arc;

use super::listing::{Listing, list_folders};
use super::{ExtractError, Limits, MailboxJob};
use crate::imap::transport::{ConnectOptions, connect};
use crate::imap::{During as _, SequenceSet, SessionConfig};
use crate::login::AuthChoice;
use crate::parallel::run_bounded;
use crate::retry::RetryPolicy;

/// What the source reported for one mailbox.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct MailboxSize {
    /// Messages in the folders a pass would read.
    pub messages: u64,
    /// Their bytes (RFC822.SIZE).
    pub bytes: u64,
}

/// Measures each mailbox (at most `concurrency` at once); a mailbox that cannot be measured
/// gives its error in words, in `mailboxes`' order.
pub async fn measure_mailboxes(
    connect_to: &ConnectOptions,
    auth: AuthChoice,
    limits: &Limits,
    mailboxes: Vec<MailboxJob>,
    concurrency: usize,
) -> Vec<Result<MailboxSize, String>> {
    let shared = Arc::new((connect_to.clone(), limits.clone()));
    run_bounded(mailboxes, concurrency, move |mb| {
        let shared = shared.clone();
        async move {
            measure(&shared.0, auth, &shared.1, &mb)
                .await
                .map_err(|e| e.to_string())
        }
    })
    .await
    .into_iter()
    .map(|r| r.map_err(|lost| lost.0).and_then(|r| r))
    .collect()
}

async fn measure(
    connect_to: &ConnectOptions,
    auth: AuthChoice,
    limits: &Limits,
    mb: &MailboxJob,
) -> Result<MailboxSize, ExtractError> {
    let at = format!("{}:{}", connect_to.host, connect_to.port);
    // A server that stops answering fails the measurement instead of holding the plan.
    let config = SessionConfig {
        read_timeout: Some(RetryPolicy::default().read_timeout),
        ..SessionConfig::default()
    };
    let mut s = connect(connect_to, config)
        .await
        .during(|| format!("connecting to {at}"))?;
    crate::login::log_in(&mut s, &mb.user_name, &mb.password, auth)
        .await
        .during(|| format!("logging in as {}", mb.user_name))?;
    let Listing { plans, .. } = list_folders(&mut s, mb, limits).await?;
    let mut size = MailboxSize::default();
    for plan in plans {
        let info = s
            .examine(&plan.wire, false)
            .await
            .during(|| format!("EXAMINE {:?}", plan.name))?;
        if info.exists == 0 {
            continue;
        }
        let fetched = s
            .uid_fetch_meta(&SequenceSet::from_start(1), "(UID RFC822.SIZE)")
            .await
            .during(|| format!("sizes in {:?}", plan.name))?;
        size.messages += fetched.len() as u64;
        size.bytes += fetched
            .iter()
            .map(|f| u64::from(f.rfc822_size.unwrap_or(0)))
            .sum::<u64>();
    }
    let _ = s.logout().await;
    Ok(size)
}

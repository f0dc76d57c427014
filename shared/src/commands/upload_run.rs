//! `mailstage-upload run`: a batch's staged mail into a target, exactly once, resuming where
//! a previous run stopped. [`prepare_upload`] reads the target's secret, selects the
//! mailboxes and builds the job; [`PreparedUpload::run`] checks the target can be reached
//! (and a token had) before any mailbox starts, then runs it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::error::{CommandError, Result, runtime};
use crate::catalog::{TargetKind, TargetSettings, TlsTrust};
use crate::imap::Fingerprint;
use crate::imap::diagnose::check_server_reachable;
use crate::imap::transport::ConnectOptions;
use crate::oauth2::{OAuthConfig, TokenSource};
use crate::retry::RetryPolicy;
use crate::stage::{Access, Index, Stage};
use crate::upload::{
    Credentials, MailboxUpload, MappingRules, RateLimits, SharedProgress, UploadJob, UploadOutcome,
    run_upload,
};

/// What to run.
#[derive(Clone, Debug, Default)]
pub struct UploadRequest {
    /// The batch whose staged mail is uploaded.
    pub batch: String,
    /// The target (see `target new`).
    pub target: String,
    /// Only these mailboxes (EmailAddress); empty: all.
    pub users: Vec<String>,
    /// Plan and predict only; create and send nothing.
    pub dry_run: bool,
    /// Mailboxes at once.
    pub concurrency: usize,
    /// Connections per mailbox.
    pub connections_per_mailbox: usize,
    /// `Old/Path=New/Path` renames.
    pub maps: Vec<String>,
    /// Folder patterns left out.
    pub excludes: Vec<String>,
    /// Ceilings on messages and bytes per second.
    pub rates: RateLimits,
    /// A CA file for this run (wins over the target's).
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate for this run (adds to the target's trust).
    pub insecure: bool,
    /// Pin the target's certificate for this run (wins over the target's).
    pub tls_fingerprint: Option<Fingerprint>,
    /// Only the mailboxes of this shard of the batch's plan.
    pub shard: Option<crate::shard::ShardRequest>,
}

/// An upload ready to run.
pub struct PreparedUpload {
    stage: Stage,
    job: UploadJob,
}

/// How an upload run ended.
#[derive(Clone, Debug)]
pub struct UploadReport {
    /// Each mailbox's outcome, in the batch's order.
    pub mailboxes: Vec<UploadOutcome>,
    /// How long the run took.
    pub elapsed: Duration,
}

impl UploadReport {
    /// 0 every mailbox done, 2 messages were refused or set aside or flags are still to set,
    /// 1 a mailbox failed.
    pub fn exit_code(&self) -> u8 {
        let m = &self.mailboxes;
        if m.iter().any(|o| o.error.is_some()) {
            1
        } else if m
            .iter()
            .any(|o| o.counts.refused + o.counts.set_aside + o.counts.flags_pending > 0)
        {
            2
        } else {
            0
        }
    }
}

/// Opens the stage, reads the target and its secret, and builds the job for the batch's
/// mailboxes (or those named in `users`, each of which must be in the batch).
pub fn prepare_upload(stage_dir: &Path, req: &UploadRequest) -> Result<PreparedUpload> {
    let stage = Stage::open(stage_dir, Access::Write)?;
    let target = stage.index().target(&req.target)?;
    let mut mailboxes = select_mailboxes(stage.index(), &req.batch, &req.users)?;
    if let Some(shard) = req.shard {
        let (_, members) = super::shards::shard_members(stage.index(), &req.batch, shard)?;
        mailboxes.retain(|m| members.contains(&m.email.to_lowercase()));
    }
    let rules = MappingRules::from_args(&req.maps, &req.excludes).map_err(CommandError::Refused)?;
    let ca_file = req.ca_file.clone().or_else(|| target.tls.ca_file.clone());
    let (mut connect, credentials) = credentials(&target, ca_file.as_deref())?;
    let run_trust = TlsTrust::for_run(req.ca_file.as_deref(), req.insecure, req.tls_fingerprint);
    target.tls.apply(&run_trust, &mut connect);
    let job = UploadJob {
        batch: req.batch.clone(),
        target,
        connect,
        credentials,
        rules,
        concurrency: req.concurrency.max(1),
        connections: req.connections_per_mailbox.max(1),
        rates: req.rates,
        dry_run: req.dry_run,
        retry: RetryPolicy::default(),
        mailboxes,
    };
    Ok(PreparedUpload { stage, job })
}

/// The batch's mailboxes to upload, or those named in `users` (each of which must be in the
/// batch).
pub(crate) fn select_mailboxes(
    index: &Index,
    batch: &str,
    users: &[String],
) -> Result<Vec<MailboxUpload>> {
    let mut mailboxes: Vec<MailboxUpload> = index
        .mailboxes(batch)?
        .into_iter()
        .map(MailboxUpload::of)
        .collect();
    if let Some(u) = users
        .iter()
        .find(|u| !mailboxes.iter().any(|m| m.email.eq_ignore_ascii_case(u)))
    {
        return Err(CommandError::Refused(format!(
            "--users: {u} is not a mailbox of batch {batch:?}"
        )));
    }
    if !users.is_empty() {
        mailboxes.retain(|m| users.iter().any(|u| u.eq_ignore_ascii_case(&m.email)));
    }
    Ok(mailboxes)
}

/// Where the target is and how each mailbox logs in; the secret is read now (never stored).
fn credentials(
    t: &TargetSettings,
    ca_file: Option<&Path>,
) -> Result<(ConnectOptions, Credentials)> {
    t.check_security().map_err(CommandError::Refused)?;
    let secret_error = |source| CommandError::Secret {
        target: t.name.clone(),
        source,
    };
    match &t.kind {
        TargetKind::Imap {
            server,
            port,
            security,
            auth,
            admin_user,
            secret,
            user_root,
        } => Ok((
            ConnectOptions::new(server, *port, *security),
            Credentials::Password {
                admin: admin_user.clone(),
                user_root: user_root.clone(),
                secret: secret.read().map_err(secret_error)?,
                auth: *auth,
            },
        )),
        TargetKind::M365Imap {
            tenant,
            client_id,
            client_secret,
            imap_host,
            imap_port,
            security,
            login_url,
        } => {
            let secret = client_secret.read().map_err(secret_error)?;
            let mut config =
                OAuthConfig::new(tenant, client_id, secret, imap_host).with_login_base(login_url);
            config.ca_file = ca_file.map(Path::to_path_buf);
            let tokens = TokenSource::new(&config).map_err(|source| CommandError::Token {
                target: t.name.clone(),
                action: "setting up the token client",
                source,
            })?;
            Ok((
                ConnectOptions::new(imap_host, *imap_port, *security),
                Credentials::Bearer(tokens),
            ))
        }
    }
}

impl PreparedUpload {
    /// How many mailboxes the run covers.
    pub fn mailboxes(&self) -> usize {
        self.job.mailboxes.len()
    }

    /// Fails fast when the target cannot be reached or no token can be had (every mailbox
    /// would fail the same way); otherwise runs the upload.
    pub fn run(self, progress: SharedProgress) -> Result<UploadReport> {
        let Self { stage, job } = self;
        let started = Instant::now();
        let shared = stage.into_shared()?;
        let runtime = runtime()?;
        if let Some(f) = runtime
            .block_on(check_server_reachable(&job.connect))
            .failure
        {
            return Err(CommandError::Unreachable {
                what: format!(
                    "the target {:?} at {}",
                    job.target.name,
                    job.target.address()
                ),
                message: f.message,
                hint: f.hint,
            });
        }
        if let Credentials::Bearer(tokens) = &job.credentials {
            runtime
                .block_on(tokens.token())
                .map_err(|source| CommandError::Token {
                    target: job.target.name.clone(),
                    action: "getting an access token",
                    source,
                })?;
        }
        let mailboxes = runtime.block_on(run_upload(job, &shared, progress));
        Ok(UploadReport {
            mailboxes,
            elapsed: started.elapsed(),
        })
    }
}

//! `run`: upload a batch's staged mail into a target, exactly once, resuming where a
//! previous run stopped.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use mailstage::cli::{RunOutput, RunTls};
use mailstage::imap::diagnose::check_server;
use mailstage::imap::transport::ConnectOptions;
use mailstage::oauth2::{OAuthConfig, TokenSource};
use mailstage::report::print_json;
use mailstage::report::table::human_bytes;
use mailstage::retry::RetryPolicy;
use mailstage::stage::{Access, Stage};
use mailstage::upload::{
    Credentials, MailboxUpload, MappingRules, RateLimits, TargetKind, TargetSettings, UploadJob,
    UploadOutcome, run_upload,
};

use crate::predicted;
use crate::progress::{UploadBars, describe};

/// Arguments of `run`.
#[derive(Args)]
pub struct RunArgs {
    /// The batch whose staged mail is uploaded.
    #[arg(long)]
    batch: String,
    /// The target (see `target new`).
    #[arg(long)]
    target: String,
    /// Only these mailboxes (EmailAddress, comma-separated).
    #[arg(long, value_delimiter = ',')]
    users: Vec<String>,
    /// Show what would go where (folder plan, messages and bytes) and the predicted skips
    /// (over the target's size limit, lines Exchange refuses, refused last time) without
    /// creating or sending anything.
    #[arg(long)]
    dry_run: bool,
    /// Mailboxes uploaded at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=200))]
    concurrency: u32,
    /// Connections per mailbox, each sending from the mailbox's queue (hides the round trip
    /// of each APPEND; the most APPENDs in flight is concurrency × this).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=16))]
    connections_per_mailbox: u32,
    /// Rename a source folder (and its subfolders): 'Old/Path=New/Path' (levels separated
    /// by `/`). Repeatable.
    #[arg(long = "map", value_name = "OLD=NEW")]
    maps: Vec<String>,
    /// Leave out source folders matching a pattern (`*`, `?`; levels separated by `/`).
    /// Repeatable.
    #[arg(long = "exclude", value_name = "PATTERN")]
    excludes: Vec<String>,
    /// At most this many messages per second over all mailboxes.
    #[arg(long)]
    max_messages_per_second: Option<f64>,
    /// At most this many bytes per second over all mailboxes (e.g. 5000000 for ~40 Mbit/s).
    #[arg(long)]
    max_bytes_per_second: Option<f64>,
    #[command(flatten)]
    tls: RunTls,
    #[command(flatten)]
    output: RunOutput,
}

fn credentials(
    t: &TargetSettings,
    ca_file: Option<&Path>,
) -> anyhow::Result<(ConnectOptions, Credentials)> {
    match &t.kind {
        TargetKind::Imap {
            server,
            port,
            security,
            auth,
            admin_user,
            secret,
        } => {
            let secret = secret
                .read()
                .with_context(|| format!("target {:?}", t.name))?;
            Ok((
                ConnectOptions::new(server, *port, *security),
                Credentials::Password {
                    admin: admin_user.clone(),
                    secret,
                    auth: *auth,
                },
            ))
        }
        TargetKind::M365Imap {
            tenant,
            client_id,
            client_secret,
            imap_host,
            imap_port,
            security,
            login_url,
        } => {
            let secret = client_secret
                .read()
                .with_context(|| format!("target {:?}", t.name))?;
            let mut config =
                OAuthConfig::new(tenant, client_id, secret, imap_host).with_login_base(login_url);
            config.ca_file = ca_file.map(Path::to_path_buf);
            let tokens =
                TokenSource::new(&config).with_context(|| format!("target {:?}", t.name))?;
            Ok((
                ConnectOptions::new(imap_host, *imap_port, *security),
                Credentials::Bearer(tokens),
            ))
        }
    }
}

/// Runs `run`; the exit status is 0 when every mailbox is done, 2 when messages were
/// refused, 1 when a mailbox failed.
pub fn run(stage_dir: &Path, args: RunArgs, out: &mut dyn Write) -> anyhow::Result<u8> {
    let stage = Stage::open(stage_dir, Access::Write)?;
    let target = stage.index().target(&args.target)?;
    let mut mailboxes: Vec<MailboxUpload> = stage
        .index()
        .mailboxes(&args.batch)?
        .into_iter()
        .map(MailboxUpload::of)
        .collect();
    if !args.users.is_empty() {
        for u in &args.users {
            if !mailboxes.iter().any(|m| m.email.eq_ignore_ascii_case(u)) {
                bail!("--users: {u} is not a mailbox of batch {:?}", args.batch);
            }
        }
        mailboxes.retain(|m| args.users.iter().any(|u| u.eq_ignore_ascii_case(&m.email)));
    }
    let rules = MappingRules {
        renames: args
            .maps
            .iter()
            .map(|m| MappingRules::parse_rename(m))
            .collect::<Result<_, _>>()
            .map_err(anyhow::Error::msg)?,
        excludes: args.excludes.clone(),
    };
    let ca_file = args
        .tls
        .ca_file
        .clone()
        .or_else(|| target.tls.ca_file.clone());
    let (mut connect, credentials) = credentials(&target, ca_file.as_deref())?;
    target
        .tls
        .apply(args.tls.ca_file.as_deref(), args.tls.insecure, &mut connect);
    let total = mailboxes.len();
    let job = UploadJob {
        batch: args.batch.clone(),
        target: target.name.clone(),
        m365: target.is_m365(),
        connect,
        credentials,
        rules,
        concurrency: args.concurrency as usize,
        connections: args.connections_per_mailbox as usize,
        rates: RateLimits {
            messages_per_second: positive(
                args.max_messages_per_second,
                "--max-messages-per-second",
            )?,
            bytes_per_second: positive(args.max_bytes_per_second, "--max-bytes-per-second")?,
        },
        dry_run: args.dry_run,
        retry: RetryPolicy::default(),
        mailboxes,
    };
    let shared = stage.into_shared()?;
    let bars = Arc::new(UploadBars::new(args.output.show(), total, args.dry_run));
    let started = Instant::now();
    let runtime = tokio::runtime::Runtime::new()?;
    // Fail fast, with test-server's diagnosis, when the target cannot be reached at all.
    if let Some(f) = runtime.block_on(check_server(&job.connect)).failure {
        bail!(
            "cannot reach the target {:?} at {}: {}\n  hint: {}",
            target.name,
            target.address(),
            f.message,
            f.hint
        );
    }
    // Fail fast when no token can be had (wrong secret, unknown tenant …): every mailbox
    // would fail the same way.
    if let Credentials::Bearer(tokens) = &job.credentials {
        runtime
            .block_on(tokens.token())
            .with_context(|| format!("target {:?}: getting an access token", target.name))?;
    }
    let outcomes = runtime.block_on(run_upload(job, &shared, bars.clone()));
    bars.finish();
    let elapsed = started.elapsed();
    if args.output.json {
        print_json(out, &outcomes)?;
    } else {
        summary(out, &args, &outcomes, elapsed)?;
    }
    Ok(exit_code(&outcomes))
}

fn exit_code(outcomes: &[UploadOutcome]) -> u8 {
    if outcomes.iter().any(|o| o.error.is_some()) {
        1
    } else if outcomes
        .iter()
        .any(|o| o.counts.refused + o.counts.set_aside + o.counts.flags_pending > 0)
    {
        2
    } else {
        0
    }
}

fn summary(
    out: &mut dyn Write,
    args: &RunArgs,
    outcomes: &[UploadOutcome],
    elapsed: Duration,
) -> anyhow::Result<()> {
    for o in outcomes {
        writeln!(out, "{}", describe(o, args.dry_run))?;
        for f in &o.folders {
            let to = f
                .target
                .as_ref()
                .map_or_else(|| "(left out)".to_owned(), |t| t.join("/"));
            if args.dry_run || f.note.is_some() {
                let note = f
                    .note
                    .as_deref()
                    .map(|n| format!("  [{n}]"))
                    .unwrap_or_default();
                writeln!(out, "    {} -> {to}{note}", f.source)?;
            }
        }
        if args.dry_run {
            predicted::print(out, o)?;
        }
    }
    let (messages, bytes) = outcomes.iter().fold((0, 0), |(m, b), o| {
        (m + o.counts.uploaded, b + o.counts.uploaded_bytes)
    });
    let secs = elapsed.as_secs_f64().max(1e-3);
    if !args.dry_run {
        writeln!(
            out,
            "batch {:?} -> target {:?}: {messages} message(s), {} in {secs:.1} s ({:.1} msg/s, {}/s); {} of {} mailbox(es) failed",
            args.batch,
            args.target,
            human_bytes(bytes),
            messages as f64 / secs,
            human_bytes((bytes as f64 / secs) as u64),
            outcomes.iter().filter(|o| o.error.is_some()).count(),
            outcomes.len()
        )?;
    }
    Ok(())
}

fn positive(value: Option<f64>, name: &str) -> anyhow::Result<Option<f64>> {
    match value {
        Some(v) if !(v.is_finite() && v > 0.0) => bail!("{name} must be a positive number"),
        other => Ok(other),
    }
}

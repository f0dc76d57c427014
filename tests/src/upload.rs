//! Uploading a test stage into a second harness Dovecot, and reading both sides back as
//! comparable contents: per (mailbox, folder), the sorted (SHA-256, flags, INTERNALDATE) of
//! every message.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use mailstage::catalog::{SecretSource, Security, TargetKind, TargetSettings};
use mailstage::imap::datetime;
use mailstage::imap::mutf7;
use mailstage::imap::transport::ConnectOptions;
use mailstage::login::AuthChoice;
use mailstage::retry::RetryPolicy;
use mailstage::stage::index::UploadItem;
use mailstage::stage::{Access, BlobHash, Stage};
use mailstage::upload::{
    Credentials, MailboxUpload, MappingRules, RateLimits, UploadJob, UploadOutcome, run_upload,
};
use secrecy::SecretString;

use crate::probe::flag_set;
use crate::{Dovecot, DovecotBuilder};

/// The master user every target Dovecot of the tests has.
pub const ADMIN: (&str, &str) = ("admin", "admin-pw");

/// One message as compared: its bytes' SHA-256, its flags (without `\Recent`), INTERNALDATE
/// as seconds since the epoch.
pub type Seen = (BlobHash, BTreeSet<String>, Option<i64>);

/// (mailbox address, folder path with `/`) → its messages, sorted.
pub type Contents = BTreeMap<(String, String), Vec<Seen>>;

/// A target Dovecot with one user per address (random passwords) and the [`ADMIN`] master.
pub fn target_dovecot(emails: &[&str]) -> Result<Dovecot> {
    target_dovecot_with(emails, &[])
}

/// A target Dovecot as [`target_dovecot`] makes it, with `extra` lines at the end of its
/// configuration (e.g. `imap_capability = +APPENDLIMIT=200000`).
pub fn target_dovecot_with(emails: &[&str], extra: &[&str]) -> Result<Dovecot> {
    target_dovecot_from(Dovecot::builder(), emails, extra)
}

/// A target Dovecot as [`target_dovecot_with`] makes it, from `builder`'s options (e.g. its
/// mailbox format).
pub fn target_dovecot_from(
    builder: DovecotBuilder,
    emails: &[&str],
    extra: &[&str],
) -> Result<Dovecot> {
    let mut b = builder.master_user(ADMIN.0, ADMIN.1);
    for e in emails {
        b = b.user(e, &format!("pw-{}", e.len()));
    }
    for line in extra {
        b = b.extra_config(line);
    }
    b.start()
}

/// The job uploading batch `b1`'s mailboxes (all, or those in `only`) into `target` as
/// target `dst`, logging in as `mailbox*admin`.
pub fn job(
    dir: &Path,
    target: &Dovecot,
    only: Option<&[&str]>,
    rules: MappingRules,
) -> Result<UploadJob> {
    let credentials = Credentials::Password {
        admin: Some(ADMIN.0.into()),
        user_root: None,
        secret: SecretString::from(ADMIN.1.to_owned()),
        auth: AuthChoice::Auto,
    };
    job_to(dir, target.port(), credentials, only, rules)
}

/// The job uploading batch `b1`'s mailboxes (all, or those in `only`) into the server at
/// loopback `port` as target `dst`, logging in with `credentials`.
pub fn job_to(
    dir: &Path,
    port: u16,
    credentials: Credentials,
    only: Option<&[&str]>,
    rules: MappingRules,
) -> Result<UploadJob> {
    let stage = Stage::open(dir, Access::Read)?;
    let mailboxes = stage
        .index()
        .mailboxes("b1")?
        .into_iter()
        .filter(|m| only.is_none_or(|o| o.contains(&m.email.as_str())))
        .map(MailboxUpload::of)
        .collect();
    Ok(UploadJob {
        batch: "b1".into(),
        target: dst_target(port, "UNUSED_BY_THE_LIBRARY"),
        connect: ConnectOptions::new("127.0.0.1", port, Security::None),
        credentials,
        rules,
        concurrency: 4,
        connections: 2,
        rates: RateLimits::default(),
        dry_run: false,
        retry: RetryPolicy {
            first_backoff: Duration::from_millis(50),
            ..RetryPolicy::default()
        },
        mailboxes,
    })
}

/// Target `dst`: the IMAP server at loopback `port` without TLS, written as [`ADMIN`]
/// whose password the binaries read from the environment variable `secret_var`.
pub fn dst_target(port: u16, secret_var: &str) -> TargetSettings {
    TargetSettings {
        name: "dst".into(),
        kind: TargetKind::Imap {
            server: "127.0.0.1".into(),
            port,
            security: Security::None,
            auth: AuthChoice::Auto,
            admin_user: Some(ADMIN.0.into()),
            secret: SecretSource::Env(secret_var.into()),
            user_root: None,
        },
        tls: Default::default(),
    }
}

/// Simulates a crash in the middle of a group: every staged message of `email`'s source
/// folder `folder` (batch `b1`) marked in flight to target `dst`'s folder of the same name,
/// as the upload does before sending. Returns them, by UID.
pub fn mark_in_flight(dir: &Path, email: &str, folder: &str) -> Result<Vec<UploadItem>> {
    let mut stage = Stage::open(dir, Access::Write)?;
    let mailbox = stage
        .index()
        .mailboxes("b1")?
        .into_iter()
        .find(|m| m.email == email)
        .with_context(|| format!("no mailbox {email}"))?;
    let source = stage
        .index()
        .upload_folders(mailbox.id)?
        .into_iter()
        .find(|f| f.name == folder)
        .with_context(|| format!("no staged folder {folder}"))?;
    let items: Vec<UploadItem> = stage
        .index()
        .upload_queue("dst", mailbox.id, false)?
        .into_iter()
        .filter(|i| i.folder_id == source.id)
        .collect();
    let sent_to = serde_json::to_string(&[folder])?;
    let rows: Vec<i64> = items.iter().map(|i| i.message_row).collect();
    stage
        .index_mut()
        .begin_uploads("dst", email, &sent_to, &rows)?;
    Ok(items)
}

/// Runs an upload job against the stage at `dir`.
pub fn run(dir: &Path, job: UploadJob) -> Result<Vec<UploadOutcome>> {
    let stage = Stage::open(dir, Access::Write)?.into_shared()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    Ok(runtime.block_on(run_upload(job, &stage, Arc::new(mailstage::report::Silent))))
}

/// What the stage holds, as [`Contents`].
pub fn staged_contents(dir: &Path) -> Result<Contents> {
    let stage = Stage::open(dir, Access::Read)?;
    let mut out = Contents::new();
    for m in stage.index().staged_messages(None)? {
        let flags = m.flags.split_whitespace().filter(|f| *f != "\\Recent");
        out.entry((m.origin.email, m.origin.folder))
            .or_default()
            .push((
                m.origin.blob,
                flag_set(&flags.collect::<Vec<_>>()),
                m.internaldate_unix,
            ));
    }
    out.values_mut().for_each(|v| v.sort());
    Ok(out)
}

/// What a target mailbox holds, read over IMAP as the master user, as [`Contents`]
/// (folders without messages are left out).
pub fn target_contents(d: &Dovecot, email: &str) -> Result<Contents> {
    let mut p = d.connect()?;
    p.login(&format!("{email}*{}", ADMIN.0), ADMIN.1)?.ok()?;
    let mut out = Contents::new();
    for entry in p.list()? {
        if entry
            .flags
            .iter()
            .any(|a| a.eq_ignore_ascii_case("\\Noselect"))
        {
            continue;
        }
        let name = mutf7::decode(&entry.name).with_context(|| entry.name.clone())?;
        p.examine(&entry.name)?;
        let mut seen = Vec::new();
        for uid in p.uids()? {
            let body = p.fetch_body(uid)?;
            let (flags, date) = p.fetch_flags_date(uid)?;
            let flags: Vec<&String> = flags.iter().filter(|f| *f != "\\Recent").collect();
            seen.push((
                BlobHash::of(&body),
                flag_set(&flags),
                datetime::parse(&date).map(|(unix, _)| unix),
            ));
        }
        if !seen.is_empty() {
            seen.sort();
            out.insert((email.to_owned(), name), seen);
        }
    }
    Ok(out)
}

/// The job of [`job`] (every mailbox, the default mapping) into `target` as Microsoft 365
/// ([`as_m365`]), connecting through `proxy_port` (an Exchange emulator in front of it).
pub fn m365_job_via(dir: &Path, target: &Dovecot, proxy_port: u16) -> Result<UploadJob> {
    let mut job = job(dir, target, None, MappingRules::default())?;
    as_m365(&mut job);
    job.connect.port = proxy_port;
    Ok(job)
}

/// Makes `job`'s target a Microsoft 365 one (its folder names and quirks apply), keeping its
/// name and where it connects; the login stays the job's own credentials.
pub fn as_m365(job: &mut UploadJob) {
    job.target.kind = TargetKind::M365Imap {
        tenant: "contoso.onmicrosoft.com".into(),
        client_id: "11111111-2222-3333-4444-555555555555".into(),
        client_secret: SecretSource::Env("UNUSED_BY_THE_LIBRARY".into()),
        imap_host: job.connect.host.clone(),
        imap_port: job.connect.port,
        security: job.connect.security,
        login_url: mailstage::catalog::M365_LOGIN_URL.into(),
    };
}

/// A source Dovecot whose user `alice` holds `count` small messages in INBOX
/// ([`crate::fixtures::simple`]`(i)`, INTERNALDATE `t0 + i`, the flags `flags_of(i)`), staged
/// as `email` into `dir` as [`staged_behind_exchange`] does, with its target and emulator.
pub fn alice_behind_exchange(
    dir: &Path,
    email: &str,
    (count, t0): (u64, u64),
    flags_of: impl Fn(u64) -> &'static [&'static str],
    rules: crate::exchange_proxy::ExchangeRules,
) -> Result<(Dovecot, crate::exchange_proxy::ExchangeProxy)> {
    let source = Dovecot::builder().user("alice", "alice-pw").start()?;
    for i in 0..count {
        let message = crate::fixtures::simple(i);
        source.write_message_at("alice", "INBOX", flags_of(i), t0 + i, &message)?;
    }
    staged_behind_exchange(dir, &source, email, "alice", rules)
}

/// Stages `user`'s mailbox of `source` as `email` into `dir` (batch `b1`), starts a target
/// Dovecot holding that mailbox and an Exchange emulator with `rules` in front of it.
pub fn staged_behind_exchange(
    dir: &Path,
    source: &Dovecot,
    email: &str,
    user: &str,
    rules: crate::exchange_proxy::ExchangeRules,
) -> Result<(Dovecot, crate::exchange_proxy::ExchangeProxy)> {
    crate::extraction::stage_user(dir, source, email, user, mailstage::extract::Pass::Full)?;
    let target = target_dovecot(&[email])?;
    let proxy = crate::exchange_proxy::ExchangeProxy::start(target.port(), rules)?;
    Ok((target, proxy))
}

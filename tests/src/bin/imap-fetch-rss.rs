//! Measures what fetching one large message costs in memory:
//! `imap-fetch-rss PORT USER PASSWORD STAGE_DIR [multi|current]`.
//!
//! Connects to 127.0.0.1:PORT (plain), logs in, EXAMINEs INBOX, then reads `VmHWM` (peak
//! resident set) from /proc/self/status as the baseline. Fetches UID 1's `BODY.PEEK[]`
//! through the framing layer into a `BlobWriter` (via `WriterSink`), persists the blob,
//! reads `VmHWM` again and prints one JSON line:
//! `{"baseline_kb":…,"peak_kb":…,"bytes":…,"sha256":"…"}`.
//!
//! Options after STAGE_DIR: `--current-thread` runs a current-thread tokio runtime instead
//! of the default multi-threaded one (whose worker threads exist before the baseline is
//! taken); `--in-memory` fetches into a `MemorySink` instead, the negative control that
//! shows the measurement sees a message held whole in memory (nothing is stored then, and
//! `sha256` is the hash of the buffer).

use std::io;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail, ensure};
use mailstage::catalog::Security;
use mailstage::imap::transport::{self, ConnectOptions};
use mailstage::imap::{
    ImapError, LiteralStart, MemorySink, SequenceSet, SessionConfig, WriterSink,
};
use mailstage::stage::{BlobHash, BlobStore, PendingBlob};
use secrecy::SecretString;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("imap-fetch-rss: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [port, user, password, stage, options @ ..] = args.as_slice() else {
        bail!(
            "usage: imap-fetch-rss PORT USER PASSWORD STAGE_DIR [--current-thread] [--in-memory]"
        );
    };
    let port: u16 = port.parse().context("PORT")?;
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    let mut in_memory = false;
    for option in options {
        match option.as_str() {
            "--current-thread" => builder = tokio::runtime::Builder::new_current_thread(),
            "--in-memory" => in_memory = true,
            other => bail!("unknown option {other:?}"),
        }
    }
    let runtime = builder.enable_all().build()?;
    let password = SecretString::from(password.as_str());
    let line = runtime.block_on(measure(port, user, &password, Path::new(stage), in_memory))?;
    println!("{line}");
    Ok(())
}

/// VmHWM (peak resident set size) of this process in kB.
fn vm_hwm_kb() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .context("no VmHWM in /proc/self/status")?;
    let kb = line.trim().trim_end_matches("kB").trim();
    Ok(kb.parse()?)
}

async fn measure(
    port: u16,
    user: &str,
    password: &SecretString,
    stage: &Path,
    in_memory: bool,
) -> Result<serde_json::Value> {
    let store = BlobStore::open(stage)?;
    let opts = ConnectOptions::new("127.0.0.1", port, Security::None);
    let mut session = transport::connect(&opts, SessionConfig::default()).await?;
    session.login(user, password).await?;
    let info = session.examine(b"INBOX", false).await?;
    ensure!(info.exists >= 1, "INBOX is empty");
    let baseline_kb = vm_hwm_kb()?;
    if in_memory {
        let mut sink = MemorySink::new(usize::MAX);
        let mut body = Vec::new();
        session
            .uid_fetch(
                &[SequenceSet::from_uids([1])],
                "(UID BODY.PEEK[])",
                1,
                &mut sink,
                |m| {
                    body = m.body.map(|b| b.output).unwrap_or_default();
                    Ok(())
                },
            )
            .await?;
        let peak_kb = vm_hwm_kb()?;
        session.logout().await?;
        return Ok(serde_json::json!({
            "baseline_kb": baseline_kb,
            "peak_kb": peak_kb,
            "bytes": body.len(),
            "sha256": BlobHash::of(&body).to_hex(),
        }));
    }

    let mut sink = WriterSink::new(|_: &LiteralStart| store.writer().map_err(io::Error::other));
    let mut pending: Option<PendingBlob> = None;
    session
        .uid_fetch(
            &[SequenceSet::from_uids([1])],
            "(UID BODY.PEEK[])",
            1,
            &mut sink,
            |m| {
                let body = m
                    .body
                    .ok_or_else(|| ImapError::Protocol("FETCH without BODY[]".into()))?;
                let blob = body
                    .output
                    .finish()
                    .map_err(|e| ImapError::Sink(io::Error::other(e.to_string())))?;
                pending = Some(blob);
                Ok(())
            },
        )
        .await?;
    drop(sink);
    let pending = pending.context("no FETCH response for UID 1")?;
    let stored = store.persist(vec![pending])?;
    let blob = stored.first().context("persist returned nothing")?;
    let peak_kb = vm_hwm_kb()?;
    session.logout().await?;
    Ok(serde_json::json!({
        "baseline_kb": baseline_kb,
        "peak_kb": peak_kb,
        "bytes": blob.len,
        "sha256": blob.hash.to_hex(),
    }))
}

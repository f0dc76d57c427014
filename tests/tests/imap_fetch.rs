//! Fetching into the stage's blob store through mailstage's IMAP client, against a real
//! Dovecot: a pipelined `UID FETCH` of odd messages into `BlobWriter`s, and a server that
//! goes away in the middle of a large message.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use mailstage::catalog::Security;
use mailstage::imap::transport::{self, ConnectOptions, Transport};
use mailstage::imap::{
    FramingError, ImapError, LiteralSink, LiteralStart, SequenceSet, Session, SessionConfig,
    WriterSink,
};
use mailstage::stage::{BlobHash, BlobStore};
use mailstage_tests::probe::flag_set;
use mailstage_tests::{Dovecot, fixtures, served_form};
use secrecy::SecretString;

const ITEMS: &str = "(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])";

async fn login(d: &Dovecot, config: SessionConfig) -> Result<Session<Transport>> {
    let opts = ConnectOptions::new("127.0.0.1", d.port(), Security::None);
    let mut s = transport::connect(&opts, config).await?;
    let user = "alice";
    s.login(user, &SecretString::from(d.password_of(user)?))
        .await?;
    Ok(s)
}

/// Names of the files in `dir`.
/// The files in `dir`, leaving out `partial/` (the stage keeps that directory in `tmp/` for
/// bodies a broken link cut short).
fn entries(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("read {}", dir.display()))? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name != "partial" {
            names.push(name);
        }
    }
    Ok(names)
}

fn sink_error(e: impl std::fmt::Display) -> ImapError {
    ImapError::Sink(io::Error::other(e.to_string()))
}

#[tokio::test]
async fn pipelined_fetch_stores_every_odd_message_in_the_blob_store() -> Result<()> {
    let d = Dovecot::builder().user("alice", "alice-pw").start()?;
    let messages: Vec<(Vec<u8>, &[&str])> = vec![
        (fixtures::simple(1), &[]),
        (fixtures::no_message_id(), &["\\Seen"]),
        (fixtures::eight_bit_headers(), &["\\Seen", "\\Flagged"]),
        (fixtures::bare_lf(), &["\\Answered"]),
        (fixtures::nul_bytes(), &["\\Draft"]),
        (fixtures::long_line(300 * 1024), &["\\Seen", "\\Deleted"]),
        (fixtures::nested_multipart(), &["\\Flagged"]),
        (fixtures::message_of_size(700_000, 9), &["\\Seen"]),
        (fixtures::simple(2), &["\\Seen", "\\Answered", "\\Flagged"]),
        (fixtures::simple(3), &[]),
        // The same bytes again: stored once.
        (fixtures::simple(1), &["\\Seen"]),
    ];
    // Every message gets its own INTERNALDATE, which identifies it in the answer.
    let mut by_date = BTreeMap::new();
    for (i, (bytes, flags)) in messages.iter().enumerate() {
        let date = 1_500_000_000 + i as u64 * 86_400 + i as u64 * 37;
        d.write_message_at("alice", "Odd", flags, date, bytes)?;
        by_date.insert(date as i64, (served_form(bytes), flag_set(flags)));
    }

    let stage = tempfile::tempdir()?;
    let store = BlobStore::open(stage.path())?;
    let mut s = login(&d, SessionConfig::default()).await?;
    let info = s.examine(b"Odd", false).await?;
    assert_eq!(info.exists as usize, messages.len());
    let uids = s.uid_search("ALL").await?;
    assert_eq!(uids.len(), messages.len());
    let chunks = SequenceSet::from_uids(uids.iter().copied()).chunks(3);
    assert!(chunks.len() >= 3, "{chunks:?}");

    let mut sink = WriterSink::new(|_: &LiteralStart| store.writer().map_err(io::Error::other));
    let mut fetched = Vec::new();
    s.uid_fetch(&chunks, ITEMS, 3, &mut sink, |m| {
        let body = m
            .body
            .ok_or_else(|| ImapError::Protocol(format!("no body in {:?}", m.fetch)))?;
        let pending = body.output.finish().map_err(sink_error)?;
        fetched.push((m.fetch, body.len, pending));
        Ok(())
    })
    .await?;
    drop(sink);
    // Streamed, finished, not yet durable: every body waits in tmp/.
    assert_eq!(entries(store.tmp_dir())?.len(), messages.len());
    // The session is still in step after the pipelined chunks.
    assert_eq!(s.uid_search("ALL").await?, uids);
    s.logout().await?;

    let mut seen_uids = BTreeSet::new();
    let mut checks = Vec::new();
    for (fetch, len, pending) in &fetched {
        let uid = fetch.uid.context("UID")?;
        ensure!(seen_uids.insert(uid), "UID {uid} twice");
        let date = fetch
            .internal_date
            .as_ref()
            .and_then(|d| d.unix)
            .with_context(|| format!("UID {uid}: INTERNALDATE {:?}", fetch.internal_date))?;
        let (served, flags) = by_date
            .get(&date)
            .with_context(|| format!("UID {uid}: unexpected INTERNALDATE {date}"))?;
        let want = BlobHash::of(served);
        assert_eq!(
            pending.hash(),
            want,
            "UID {uid}: SHA-256 of the streamed body"
        );
        assert_eq!(pending.len(), served.len() as u64, "UID {uid}: length");
        assert_eq!(*len, pending.len(), "UID {uid}: literal length");
        assert_eq!(
            fetch.rfc822_size.map(u64::from),
            Some(pending.len()),
            "UID {uid}: RFC822.SIZE"
        );
        let got_flags = flag_set(fetch.flags.as_deref().context("FLAGS")?);
        assert_eq!(&got_flags, flags, "UID {uid}: FLAGS");
        checks.push((uid, want, served));
    }
    assert_eq!(seen_uids, uids.iter().copied().collect());

    let pending: Vec<_> = fetched.into_iter().map(|(_, _, p)| p).collect();
    let stored = store.persist(pending)?;
    assert_eq!(stored.iter().filter(|b| b.deduplicated).count(), 1);
    for ((uid, want, served), blob) in checks.iter().zip(&stored) {
        assert_eq!(blob.hash, *want, "UID {uid}");
        let on_disk = std::fs::read(store.path_of(want))?;
        assert!(on_disk == **served, "UID {uid}: stored blob differs");
    }
    let tmp_left = entries(store.tmp_dir())?;
    assert!(tmp_left.is_empty(), "left in tmp/: {tmp_left:?}");
    Ok(())
}

/// Passes everything to `inner`, but kills the server's whole process group when the
/// first chunk of a body arrives, and records what happened.
struct KillOnFirstChunk<K> {
    inner: K,
    pgid: libc::pid_t,
    killed: bool,
    bytes: u64,
    aborted: bool,
}

impl<K: LiteralSink> LiteralSink for KillOnFirstChunk<K> {
    type Output = K::Output;
    fn begin(&mut self, start: &LiteralStart) -> io::Result<()> {
        self.inner.begin(start)
    }
    fn chunk(&mut self, data: &[u8]) -> io::Result<()> {
        if !self.killed {
            // SAFETY: kill(2) on the process group the harness created for this Dovecot.
            let rc = unsafe { libc::kill(-self.pgid, libc::SIGKILL) };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
            self.killed = true;
        }
        self.bytes += data.len() as u64;
        self.inner.chunk(data)
    }
    fn finish(&mut self, len: u64) -> io::Result<K::Output> {
        self.inner.finish(len)
    }
    fn abort(&mut self) {
        self.aborted = true;
        self.inner.abort();
    }
}

#[tokio::test]
async fn server_gone_mid_message_is_transient_and_leaves_no_temp_file() -> Result<()> {
    const SIZE: usize = 20 << 20;
    let mut d = Dovecot::builder().user("alice", "alice-pw").start()?;
    let message = fixtures::message_of_size(SIZE, 20);
    d.write_message_at("alice", "INBOX", &["\\Seen"], 1_700_000_000, &message)?;
    drop(message);

    let stage = tempfile::tempdir()?;
    let store = BlobStore::open(stage.path())?;
    // A short read timeout: a hang (server not really gone) fails as Timeout, not forever.
    let config = SessionConfig {
        read_timeout: Some(Duration::from_secs(15)),
        ..SessionConfig::default()
    };
    let mut s = login(&d, config).await?;
    s.examine(b"INBOX", false).await?;

    let mut sink = KillOnFirstChunk {
        inner: WriterSink::new(|_: &LiteralStart| store.writer().map_err(io::Error::other)),
        pgid: libc::pid_t::try_from(d.pid())?,
        killed: false,
        bytes: 0,
        aborted: false,
    };
    let started = Instant::now();
    let mut delivered = 0;
    let res = s
        .uid_fetch(&[SequenceSet::from_start(1)], ITEMS, 1, &mut sink, |_| {
            delivered += 1;
            Ok(())
        })
        .await;
    let elapsed = started.elapsed();
    d.stop();

    let err = match res {
        Ok(()) => anyhow::bail!("the fetch succeeded although the server was killed"),
        Err(e) => e,
    };
    eprintln!(
        "link drop: {err} after {} of {SIZE} bytes, {elapsed:?}",
        sink.bytes
    );
    assert!(sink.killed, "no body chunk arrived");
    assert!(
        matches!(
            err,
            ImapError::Framing(FramingError::Truncated | FramingError::Io(_))
        ),
        "expected a truncated response, got {err:?}"
    );
    assert!(err.is_transient(), "{err}");
    assert!(sink.bytes < SIZE as u64, "all {} bytes arrived", sink.bytes);
    assert!(sink.aborted, "the sink was not told the body is incomplete");
    assert_eq!(delivered, 0, "an incomplete message was delivered");
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");

    let again = s.examine(b"INBOX", false).await;
    assert!(
        matches!(again, Err(ImapError::Unusable)),
        "session after the drop: {again:?}"
    );
    let tmp_left = entries(store.tmp_dir())?;
    assert!(
        tmp_left.is_empty(),
        "left in tmp/ after abort: {tmp_left:?}"
    );
    drop(sink);
    let tmp_left = entries(store.tmp_dir())?;
    assert!(tmp_left.is_empty(), "left in tmp/: {tmp_left:?}");
    assert!(
        entries(store.blobs_dir())?.is_empty(),
        "a partial blob was stored"
    );
    Ok(())
}

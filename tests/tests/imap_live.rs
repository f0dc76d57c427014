//! mailstage's IMAP client (`mailstage::imap`) against a real Dovecot: transports (plain,
//! STARTTLS, implicit TLS, untrusted and `insecure` certificates), logins (LOGIN, master user,
//! SASL PLAIN with authzid, and the failure codes), LIST with odd folder names, and APPEND.
//!
//! Each test starts its own Dovecot on free loopback ports. The blocking [`Probe`] is the
//! oracle where the client's answer needs checking against an independent reader.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, Result, ensure};
use mailstage::catalog::Security;
use mailstage::imap::datetime;
use mailstage::imap::transport::{self, ConnectOptions, Transport};
use mailstage::imap::{ImapError, MemorySink, SequenceSet, Session, SessionConfig};
use mailstage_tests::dovecot::SPECIAL_USE;
use mailstage_tests::fixtures::{self, NOSELECT_PARENTS, ODD_FOLDERS};
use mailstage_tests::probe::flag_set;
use mailstage_tests::{Dovecot, served_form};
use secrecy::SecretString;

/// alice and bob, master user mailadmin; TLS on request.
fn dovecot(tls: bool) -> Result<Dovecot> {
    Dovecot::builder()
        .user("alice", "alice-pw")
        .user("bob", "bob-pw")
        .master_user("mailadmin", "admin-pw")
        .tls(tls)
        .start()
}

fn secret(s: &str) -> SecretString {
    SecretString::from(s)
}

/// Options for the plain port of `d`.
fn plain(d: &Dovecot) -> ConnectOptions {
    ConnectOptions::new("127.0.0.1", d.port(), Security::None)
}

async fn connect(opts: &ConnectOptions) -> Result<Session<Transport>> {
    transport::connect(opts, SessionConfig::default())
        .await
        .with_context(|| format!("connect to port {} ({:?})", opts.port, opts.security))
}

/// EXAMINEs INBOX and returns every message body (by UID) through a `MemorySink`.
async fn inbox_bodies(s: &mut Session<Transport>) -> Result<BTreeMap<u32, Vec<u8>>> {
    let info = s.examine(b"INBOX", false).await?;
    let mut out = BTreeMap::new();
    if info.exists == 0 {
        return Ok(out);
    }
    let mut sink = MemorySink::new(1 << 20);
    s.uid_fetch(
        &[SequenceSet::from_start(1)],
        "(UID BODY.PEEK[])",
        1,
        &mut sink,
        |m| {
            let uid = m.fetch.uid.expect("UID was asked for");
            out.insert(uid, m.body.expect("BODY[] was asked for").output);
            Ok(())
        },
    )
    .await?;
    Ok(out)
}

/// Asserts that the session's INBOX holds exactly `marker` (as Dovecot serves it).
async fn assert_inbox_is(s: &mut Session<Transport>, marker: &[u8], who: &str) -> Result<()> {
    let bodies = inbox_bodies(s).await?;
    let got: Vec<&Vec<u8>> = bodies.values().collect();
    ensure!(
        got == [&served_form(marker)],
        "{who}: INBOX holds {} other message(s)",
        got.len()
    );
    Ok(())
}

/// Connecting without trusting the server's certificate must fail with a TLS error that
/// says so, and must not be classified as transient (a retry will not cure it).
async fn assert_untrusted(opts: &ConnectOptions, what: &str, detail: &str) -> Result<()> {
    let err = match transport::connect(opts, SessionConfig::default()).await {
        Ok(_) => anyhow::bail!("{what}: untrusted certificate accepted"),
        Err(e) => e,
    };
    let text = err.to_string();
    assert!(
        matches!(err, ImapError::Certificate { .. }),
        "{what}: {err:?}"
    );
    assert!(text.contains("not trusted"), "{what}: {text}");
    assert!(text.contains(detail), "{what}: no {detail} in {text}");
    assert!(!err.is_transient(), "{what}: transient? {text}");
    Ok(())
}

#[tokio::test]
async fn sessions_over_plain_starttls_and_implicit_tls() -> Result<()> {
    // The harness signs the server's certificate with a private CA of its own.
    let d = Dovecot::builder()
        .user("alice", "alice-pw")
        .tls(true)
        .start()?;
    let marker = fixtures::simple(11);
    d.write_message_at("alice", "INBOX", &[], 1_700_000_000, &marker)?;
    let ca = d.ca_pem_path().context("TLS is on")?.to_path_buf();
    let tls_port = d.tls_port().context("TLS is on")?;

    let cases = [
        ("plain", d.port(), Security::None),
        ("STARTTLS", d.port(), Security::Tls),
        ("implicit TLS", tls_port, Security::Ssl),
    ];
    for (what, port, security) in cases {
        let mut opts = ConnectOptions::new("localhost", port, security);
        opts.tls.ca_file = Some(ca.clone());
        let mut s = connect(&opts).await.context(what)?;
        let on_tls = matches!(s.stream(), Transport::Tls(_));
        assert_eq!(on_tls, security != Security::None, "{what}: transport");
        assert_eq!(
            s.has_capability("STARTTLS"),
            security == Security::None,
            "{what}: {:?}",
            s.capabilities()
        );
        s.login("alice", &secret("alice-pw")).await.context(what)?;
        assert!(
            s.has_capability("IMAP4rev1"),
            "{what}: {:?}",
            s.capabilities()
        );
        assert_inbox_is(&mut s, &marker, what).await?;
        s.logout().await.context(what)?;
    }

    for (what, port, security) in [
        ("STARTTLS", d.port(), Security::Tls),
        ("implicit TLS", tls_port, Security::Ssl),
    ] {
        // Signed by a CA that no system store holds.
        let opts = ConnectOptions::new("localhost", port, security);
        assert_untrusted(&opts, what, "UnknownIssuer").await?;

        let mut insecure = ConnectOptions::new("localhost", port, security);
        insecure.tls.insecure = true;
        let mut s = connect(&insecure).await.context(what)?;
        assert!(matches!(s.stream(), Transport::Tls(_)));
        s.login("alice", &secret("alice-pw")).await?;
        assert_inbox_is(&mut s, &marker, what).await?;
        s.logout().await?;
    }

    Ok(())
}

#[tokio::test]
async fn logins_as_user_master_user_and_sasl_plain() -> Result<()> {
    let d = dovecot(false)?;
    let marker = fixtures::simple(4242);
    d.write_message_at("bob", "INBOX", &["\\Seen"], 1_700_000_000, &marker)?;
    d.create_folder("alice", "INBOX")?;

    let mut alice = connect(&plain(&d)).await?;
    alice.login("alice", &secret("alice-pw")).await?;
    assert!(
        inbox_bodies(&mut alice).await?.is_empty(),
        "alice sees someone's mail"
    );
    alice.logout().await?;

    let mut master = connect(&plain(&d)).await?;
    master.login("bob*mailadmin", &secret("admin-pw")).await?;
    assert_inbox_is(&mut master, &marker, "bob*mailadmin").await?;
    master.logout().await?;

    let mut sasl = connect(&plain(&d)).await?;
    assert!(sasl.has_capability("AUTH=PLAIN") && sasl.has_capability("SASL-IR"));
    sasl.authenticate_plain(Some("bob"), "mailadmin", &secret("admin-pw"))
        .await?;
    assert_inbox_is(&mut sasl, &marker, "authzid bob, authcid mailadmin").await?;
    sasl.logout().await?;

    // Failures, each on its own connection and concurrently: Dovecot answers a failed
    // authentication on a 500 ms tick, so the three together cost one tick.
    let opts = plain(&d);
    let attempt = |user: &'static str, pass: &'static str| {
        let opts = opts.clone();
        async move {
            let mut s = connect(&opts).await?;
            let res = s.login(user, &secret(pass)).await;
            anyhow::Ok((s, res))
        }
    };
    let sasl_attempt = async {
        let mut s = connect(&opts).await?;
        let res = s
            .authenticate_plain(Some("bob"), "mailadmin", &secret("nope"))
            .await;
        anyhow::Ok((s, res))
    };
    let (wrong_pw, wrong_master, no_such_user, wrong_sasl) = tokio::join!(
        attempt("alice", "nope"),
        attempt("bob*mailadmin", "nope"),
        attempt("nobody*mailadmin", "admin-pw"),
        sasl_attempt,
    );
    let cases = [
        ("wrong password", wrong_pw?, "AUTHENTICATIONFAILED"),
        (
            "wrong master password",
            wrong_master?,
            "AUTHENTICATIONFAILED",
        ),
        // Dovecot 2.3.19: the master password is right, the mailbox does not exist.
        ("no such user", no_such_user?, "AUTHORIZATIONFAILED"),
        ("SASL wrong password", wrong_sasl?, "AUTHENTICATIONFAILED"),
    ];
    for (what, (mut s, res), code) in cases {
        let err = match res {
            Ok(()) => anyhow::bail!("{what}: login succeeded"),
            Err(e) => e,
        };
        assert_eq!(err.code_name().as_deref(), Some(code), "{what}: {err}");
        assert!(!err.is_transient(), "{what}: {err}");
        assert!(
            !err.to_string().contains("nope") && !err.to_string().contains("admin-pw"),
            "{what}: the error shows a password: {err}"
        );
        // The session survives a refused login: the right password works on it.
        s.login("alice", &secret("alice-pw"))
            .await
            .with_context(|| format!("{what}: login after the failure"))?;
        s.logout().await?;
    }
    Ok(())
}

#[tokio::test]
async fn list_reports_wire_names_special_use_and_noselect() -> Result<()> {
    let d = dovecot(false)?;
    for f in NOSELECT_PARENTS {
        d.create_noselect("alice", f.name)?;
    }
    for f in ODD_FOLDERS {
        d.create_folder("alice", f.name)?;
    }
    // One message in an odd folder, so its EXAMINE has something to count.
    d.write_message_at("alice", "R&D", &[], 1_700_000_000, &fixtures::simple(1))?;

    let mut s = connect(&plain(&d)).await?;
    s.login("alice", &secret("alice-pw")).await?;
    let list = s.list(b"", b"*").await?;
    let by_name: BTreeMap<&[u8], _> = list.iter().map(|e| (e.name.as_slice(), e)).collect();
    assert_eq!(by_name.len(), list.len(), "duplicate names in {list:#?}");

    let mut expected: BTreeSet<&[u8]> = BTreeSet::from([b"INBOX".as_slice()]);
    expected.extend(SPECIAL_USE.iter().map(|(n, _)| n.as_bytes()));
    expected.extend(ODD_FOLDERS.iter().map(|f| f.wire.as_bytes()));
    expected.extend(NOSELECT_PARENTS.iter().map(|f| f.wire.as_bytes()));
    let got: BTreeSet<&[u8]> = by_name.keys().copied().collect();
    assert_eq!(got, expected, "LIST names");
    assert!(
        list.iter().all(|e| e.delimiter.as_deref() == Some("/")),
        "{list:#?}"
    );

    for (name, attr) in SPECIAL_USE {
        let e = by_name[name.as_bytes()];
        assert_eq!(e.special_use(), Some(*attr), "{name}: {:?}", e.attributes);
        assert!(e.is_selectable());
    }
    for f in ODD_FOLDERS {
        let e = by_name[f.wire.as_bytes()];
        assert_eq!(e.decoded_name()?, f.name, "decoded name of {}", f.wire);
        assert_eq!(e.special_use(), None, "{}", f.name);
        assert!(e.is_selectable(), "{}: {:?}", f.name, e.attributes);
    }
    for f in NOSELECT_PARENTS {
        let e = by_name[f.wire.as_bytes()];
        assert!(!e.is_selectable(), "{}: {:?}", f.name, e.attributes);
        // LIST-EXTENDED: with `RETURN (SPECIAL-USE)` and no `CHILDREN`, Dovecot omits
        // \HasChildren, so only \Noselect is reported.
        assert!(e.has_attribute("\\Noselect"), "{:?}", e.attributes);
    }
    let inbox = by_name[b"INBOX".as_slice()];
    assert!(inbox.is_selectable() && inbox.special_use().is_none());

    let mut validities = BTreeSet::new();
    for e in list.iter().filter(|e| e.is_selectable()) {
        let shown = String::from_utf8_lossy(&e.name);
        let info = s
            .examine(&e.name, false)
            .await
            .with_context(|| format!("EXAMINE {shown}"))?;
        assert!(info.uid_validity != 0, "{shown}: no UIDVALIDITY");
        assert!(info.read_only, "{shown}: EXAMINE is read-only");
        let (want_exists, want_next) = if e.name == b"R&-D" { (1, 2) } else { (0, 1) };
        assert_eq!(info.exists, want_exists, "{shown}: EXISTS");
        assert_eq!(info.uid_next, Some(want_next), "{shown}: UIDNEXT");
        validities.insert(info.uid_validity);
    }
    assert!(!validities.is_empty());
    for f in NOSELECT_PARENTS {
        let err = s
            .examine(f.wire.as_bytes(), false)
            .await
            .err()
            .with_context(|| format!("EXAMINE of \\Noselect {} succeeded", f.wire))?;
        assert!(matches!(err, ImapError::Rejected { .. }), "{err:?}");
    }
    s.logout().await?;
    Ok(())
}

/// Writes `bytes` to a file under `dir` and opens it for async reading.
async fn file_reader(dir: &Path, bytes: &[u8]) -> Result<tokio::fs::File> {
    let path = dir.join("message.eml");
    std::fs::write(&path, bytes)?;
    Ok(tokio::fs::File::open(&path).await?)
}

#[tokio::test]
async fn append_streams_a_message_with_flags_and_date() -> Result<()> {
    let d = dovecot(false)?;
    d.create_folder("alice", "Imported")?;
    let scratch = tempfile::tempdir()?;
    // Larger than the 64 KiB copy buffer, so the literal goes out in several writes.
    let message = fixtures::message_of_size(300_000, 42);
    let date_unix = 1_600_000_000;
    let date = datetime::format(date_unix, 120);
    let flags = ["\\Seen", "\\Flagged", "$Forwarded"];

    let mut s = connect(&plain(&d)).await?;
    s.login("alice", &secret("alice-pw")).await?;
    let reader = file_reader(scratch.path(), &message).await?;
    let outcome = s
        .append(
            b"Imported",
            &flags,
            Some(&date),
            message.len() as u64,
            reader,
        )
        .await?;
    // A second message through the same session: the session stays in step after a literal.
    let small = fixtures::simple(5);
    let second = s
        .append(b"Imported", &[], None, small.len() as u64, small.as_slice())
        .await?;
    let info = s.examine(b"Imported", false).await?;
    s.logout().await?;

    assert!(
        outcome.uid.is_some() && outcome.uid_validity.is_some(),
        "Dovecot offers UIDPLUS, so APPENDUID is expected: {outcome:?}"
    );
    let uid = outcome.uid.context("APPENDUID")?;
    assert_eq!(outcome.uid_validity, Some(info.uid_validity));
    assert_eq!(second.uid, Some(uid + 1));
    assert_eq!(info.exists, 2);

    let mut probe = d.login("alice")?;
    probe.examine("Imported")?;
    assert_eq!(probe.uids()?, [uid, uid + 1]);
    let body = probe.fetch_body(uid)?;
    assert!(
        body == message,
        "appended message differs from what was sent"
    );
    let (got_flags, got_date) = probe.fetch_flags_date(uid)?;
    assert_eq!(flag_set(&got_flags), flag_set(&flags));
    assert_eq!(
        datetime::parse(&got_date).map(|(unix, _)| unix),
        Some(date_unix),
        "INTERNALDATE {got_date} (sent {date})"
    );
    assert_eq!(probe.fetch_body(uid + 1)?, small);
    probe.logout()?;
    Ok(())
}

//! Self-test of the Dovecot harness: every test starts its own Dovecot.

use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use mailstage_tests::dovecot::SPECIAL_USE;
use mailstage_tests::fixtures::{self, CAP_35_MB, NOSELECT_PARENTS, ODD_FOLDERS};
use mailstage_tests::{Dovecot, Probe, imap_date, served_form};

/// alice and bob, master user mailadmin.
fn dovecot() -> Result<Dovecot> {
    Dovecot::builder()
        .user("alice", "alice-pw")
        .user("bob", "bob-pw")
        .master_user("mailadmin", "admin-pw")
        .start()
}

/// Puts a marker message into bob's INBOX and returns it.
fn mark_bob(d: &Dovecot) -> Result<Vec<u8>> {
    let marker = fixtures::simple(4242);
    d.write_message("bob", "INBOX", &[], SystemTime::now(), &marker)?;
    Ok(marker)
}

/// Whether the session's INBOX holds exactly `expected` (one message).
fn inbox_is(p: &mut Probe, expected: &[u8]) -> Result<bool> {
    p.select("INBOX")?;
    let uids = p.uids()?;
    Ok(uids.len() == 1 && p.fetch_body(uids[0])? == expected)
}

#[test]
fn login_by_login_master_user_and_sasl_plain() -> Result<()> {
    let d = dovecot()?;
    let marker = mark_bob(&d)?;

    let mut alice = d.connect()?;
    alice.login("alice", "alice-pw")?.ok()?;
    alice.select("INBOX")?;
    assert!(alice.uids()?.is_empty(), "alice must not see bob's mail");
    alice.logout()?;

    let mut master = d.connect()?;
    master.login("bob*mailadmin", "admin-pw")?.ok()?;
    assert!(
        inbox_is(&mut master, &marker)?,
        "bob*mailadmin is not bob's mailbox"
    );

    let mut sasl = d.connect()?;
    assert!(sasl.greeting().contains("SASL-IR") && sasl.greeting().contains("AUTH=PLAIN"));
    sasl.authenticate_plain("bob", "mailadmin", "admin-pw")?
        .ok()?;
    assert!(
        inbox_is(&mut sasl, &marker)?,
        "authzid=bob authcid=mailadmin is not bob's mailbox"
    );

    let mut own = d.connect()?;
    own.authenticate_plain("", "bob", "bob-pw")?.ok()?;
    assert!(inbox_is(&mut own, &marker)?);
    Ok(())
}

#[test]
fn wrong_passwords_are_refused() -> Result<()> {
    let d = dovecot()?;
    let mut p = d.connect()?;
    let cases = [
        ("alice", "nope", "[AUTHENTICATIONFAILED]"),
        ("bob*mailadmin", "nope", "[AUTHENTICATIONFAILED]"),
        // The master password is right but the mailbox does not exist.
        ("nobody*mailadmin", "admin-pw", "[AUTHORIZATIONFAILED]"),
    ];
    for (user, pass, code) in cases {
        let r = p.login(user, pass)?;
        assert_eq!(r.status, "NO", "{user}: {r:?}");
        assert!(r.text.starts_with(code), "{user}: {r:?}");
    }
    assert_eq!(
        p.authenticate_plain("bob", "mailadmin", "nope")?.status,
        "NO"
    );
    assert_eq!(
        p.authenticate_plain("bob", "alice", "alice-pw")?.status,
        "NO",
        "alice is no master"
    );
    Ok(())
}

#[test]
fn list_shows_special_use_and_odd_folders() -> Result<()> {
    let d = dovecot()?;
    for f in ODD_FOLDERS {
        d.create_folder("alice", f.name)?;
    }
    let mut p = d.login("alice")?;
    p.create("Made/By/Create")?;
    let list = p.list()?;
    let flags_of = |wire: &str| {
        let entry = list.iter().find(|e| e.name == wire);
        entry
            .unwrap_or_else(|| panic!("{wire} not in {list:#?}"))
            .flags
            .clone()
    };
    assert!(list.iter().all(|e| e.delimiter.as_deref() == Some("/")));
    for (name, attr) in SPECIAL_USE {
        assert!(
            flags_of(name).iter().any(|f| f == attr),
            "{name} lacks {attr}"
        );
    }
    for f in ODD_FOLDERS {
        assert!(
            flags_of(f.wire).contains(&"\\HasNoChildren".into()),
            "{f:?}"
        );
        p.examine(f.wire)?;
    }
    for f in NOSELECT_PARENTS
        .iter()
        .map(|f| f.wire)
        .chain(["Made", "Made/By"])
    {
        assert_eq!(flags_of(f), ["\\Noselect", "\\HasChildren"], "{f}");
        assert_eq!(p.command(&format!("SELECT \"{f}\""))?.status, "NO");
    }
    assert!(flags_of("INBOX").iter().all(|f| f != "\\Noselect"));
    Ok(())
}

#[test]
fn fast_path_messages_read_back_as_written() -> Result<()> {
    let d = dovecot()?;
    let date = 1_700_000_000;
    let odd = [
        fixtures::simple(1),
        fixtures::no_message_id(),
        fixtures::eight_bit_headers(),
        fixtures::bare_lf(),
        fixtures::nul_bytes(),
        fixtures::long_line(200 * 1024),
        fixtures::nested_multipart(),
        fixtures::message_of_size(10_000, 3),
    ];
    let mut paths = Vec::new();
    for (i, m) in odd.iter().enumerate() {
        paths.push(d.write_message_at(
            "alice",
            "Entwürfe",
            &["\\Seen", "\\Flagged"],
            date + i as u64,
            m,
        )?);
    }
    let server = d.server_messages("alice", "Entwürfe")?;
    assert_eq!(server.len(), odd.len());

    let mut p = d.login("alice")?;
    p.examine("Entw&APw-rfe")?;
    let uids = p.uids()?;
    assert_eq!(uids.len(), odd.len());
    for (i, uid) in uids.into_iter().enumerate() {
        let file = std::fs::read(&paths[i])?;
        assert_eq!(file, odd[i]);
        let served = p.fetch_body(uid)?;
        assert_eq!(served, served_form(&file), "message {i}");
        // Only the bare-LF and NUL fixtures differ from the file on the wire.
        assert_eq!(served == file, ![3, 4].contains(&i), "message {i}");
        let (mut flags, internal) = p.fetch_flags_date(uid)?;
        flags.retain(|f| f != "\\Recent");
        assert_eq!(flags, ["\\Flagged", "\\Seen"]);
        assert_eq!(internal, imap_date(date as i64 + i as i64));
    }
    Ok(())
}

#[test]
fn append_keeps_flags_and_date() -> Result<()> {
    let d = dovecot()?;
    let msg = fixtures::nested_multipart();
    let date = 1_614_935_472; // 05-Mar-2021 09:11:12 +0000
    let uid = d.append(
        "bob",
        "INBOX",
        &["\\Seen", "\\Answered", "$Label1"],
        Some(date),
        &msg,
    )?;
    let mut p = d.login("bob")?;
    p.select("INBOX")?;
    let (flags, internal) = p.fetch_flags_date(uid)?;
    for f in ["\\Seen", "\\Answered", "$Label1"] {
        assert!(flags.iter().any(|g| g == f), "{f} missing from {flags:?}");
    }
    assert_eq!(internal, "05-Mar-2021 09:11:12 +0000");
    assert_eq!(p.fetch_body(uid)?, msg);
    let server = d.server_messages("bob", "INBOX")?;
    assert_eq!(server.len(), 1);
    assert_eq!(server[0].1, msg, "mail_save_crlf keeps the appended bytes");
    let modified = std::fs::metadata(&server[0].0)?.modified()?;
    assert_eq!(modified.duration_since(UNIX_EPOCH)?.as_secs(), date as u64);
    Ok(())
}

#[test]
fn message_exactly_at_cap_is_served_byte_exact() -> Result<()> {
    let d = dovecot()?;
    let big = fixtures::message_of_size(CAP_35_MB, 35);
    assert_eq!(big.len(), CAP_35_MB);
    d.write_message("alice", "INBOX", &[], SystemTime::now(), &big)?;
    let mut p = d.login("alice")?;
    p.examine("INBOX")?;
    let uids = p.uids()?;
    assert_eq!(p.fetch_body(uids[0])?, big);
    Ok(())
}

/// Runs `openssl s_client` against a port, sending LOGOUT; returns (success, output).
fn s_client(d: &Dovecot, port: u16, starttls: bool) -> Result<(bool, String)> {
    let mut cmd = Command::new("timeout");
    cmd.args([
        "10",
        "openssl",
        "s_client",
        "-connect",
        &format!("127.0.0.1:{port}"),
    ])
    .arg("-CAfile")
    .arg(d.ca_pem_path().expect("tls on"))
    .args([
        "-verify_return_error",
        "-verify_ip",
        "127.0.0.1",
        "-ign_eof",
    ]);
    if starttls {
        cmd.args(["-starttls", "imap"]);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    std::io::Write::write_all(child.stdin.as_mut().expect("piped"), b"a LOGOUT\r\n")?;
    let out = child.wait_with_output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.success(), text))
}

#[test]
fn tls_listeners_verify_against_the_harness_ca() -> Result<()> {
    let d = Dovecot::builder()
        .user("alice", "alice-pw")
        .tls(true)
        .start()?;
    let ca = d.ca_pem_path().expect("tls on");
    assert!(std::fs::read_to_string(ca)?.starts_with("-----BEGIN CERTIFICATE-----"));
    let tls_port = d.tls_port().expect("tls on");
    assert_ne!(tls_port, d.port());
    assert!(d.connect()?.greeting().contains("STARTTLS"));

    let (ok, out) = s_client(&d, tls_port, false)?;
    assert!(
        ok && out.contains("* OK") && out.contains("* BYE"),
        "implicit TLS:\n{out}"
    );
    assert!(out.contains("Verify return code: 0 (ok)"), "{out}");
    let (ok, out) = s_client(&d, d.port(), true)?;
    assert!(
        ok && out.contains("Verify return code: 0 (ok)") && out.contains("* BYE"),
        "STARTTLS:\n{out}"
    );

    let plain = Dovecot::builder().user("alice", "alice-pw").start()?;
    assert!(plain.tls_port().is_none() && plain.ca_pem_path().is_none());
    assert!(!plain.connect()?.greeting().contains("STARTTLS"));
    Ok(())
}

/// Whether any process has `needle` in its command line.
fn pgrep(needle: &str) -> bool {
    Command::new("pgrep")
        .args(["-f", needle])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn drop_stops_every_process() -> Result<()> {
    let d = dovecot()?;
    let conf = d.config_path().display().to_string();
    let (pid, dir) = (d.pid() as libc::pid_t, d.dir().to_path_buf());
    let mut p = d.login("alice")?; // an imap process and a login process are alive
    p.select("INBOX")?;
    assert!(pgrep(&conf), "master not found by its config path");
    drop(d);
    assert!(!pgrep(&conf), "dovecot master survived drop");
    // Zombies waiting for init to reap them do not count (they hold nothing).
    assert!(
        !mailstage_tests::process::group_alive(pid),
        "a process of dovecot's group survived"
    );
    assert!(!dir.exists(), "temp dir left behind");
    assert!(p.command("NOOP").is_err(), "connection outlived the server");
    Ok(())
}

#[test]
fn instances_are_independent_and_logged() -> Result<()> {
    let (a, b) = (dovecot()?, dovecot()?);
    assert_ne!(a.port(), b.port());
    assert_ne!(a.config_path(), b.config_path());
    a.write_message(
        "alice",
        "INBOX",
        &[],
        SystemTime::now(),
        &fixtures::simple(1),
    )?;
    let mut p = b.login("alice")?;
    p.select("INBOX")?;
    assert!(p.uids()?.is_empty());
    p.logout()?;
    std::thread::sleep(Duration::from_millis(100));
    assert!(b.log().contains("Login: user=<alice>"), "{}", b.log());
    assert!(b.maildir_of("alice").join("cur").is_dir());
    Ok(())
}

//! Trusting a server whose certificate is self-signed the usual way (`openssl req -x509`,
//! `CA:TRUE`) without turning checks off, against a real Dovecot: the certificate itself as
//! `--ca-file`, or its fingerprint with `--tls-fingerprint`; any other certificate is refused
//! naming both fingerprints. And what a server sends reaches the terminal escaped.

mod cli_support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};

use anyhow::{Context, Result};
use cli_support::{Cli, text};
use mailstage::imap::Fingerprint;
use mailstage_tests::{Dovecot, bins, make_self_signed};

fn test_server(args: &[&str]) -> Output {
    Command::new(bins::mailstage_extract())
        .arg("test-server")
        .args(args)
        .output()
        .expect("mailstage-extract runs")
}

/// The certificate's fingerprint as OpenSSL prints it (`sha256 Fingerprint=AB:CD:…`), read
/// by the same parser `--tls-fingerprint` uses.
fn openssl_fingerprint(cert: &Path) -> Result<Fingerprint> {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(cert)
        .output()
        .context("run openssl")?;
    let shown = String::from_utf8(out.stdout)?;
    Ok(shown.trim().parse()?)
}

#[test]
fn a_self_signed_dovecot_is_trusted_by_its_certificate_or_fingerprint() -> Result<()> {
    let d = Dovecot::builder()
        .user("alice", "alice-pw")
        .self_signed_tls()
        .start()?;
    let cert = d.ca_pem_path().context("TLS is on")?.to_path_buf();
    let ours = openssl_fingerprint(&cert)?;
    let port = d.tls_port().context("TLS port")?.to_string();
    let server = [
        "--server",
        "localhost",
        "--port",
        &port,
        "--security",
        "ssl",
    ];
    let with = |extra: &[&str]| test_server(&[&server[..], extra].concat());
    let cert_path = cert.to_str().context("UTF-8 path")?;
    let ours_text = ours.to_string();

    // Nothing given: refused, with its fingerprint and a pin suggested over --insecure.
    let out = with(&[]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("FAILED [tls]")
            && shown.contains(&ours_text)
            && shown.contains(&format!("--tls-fingerprint {ours}")),
        "{shown}"
    );

    // The certificate itself as the CA file, then its fingerprint: both pass.
    for extra in [["--ca-file", cert_path], ["--tls-fingerprint", &ours_text]] {
        let out = with(&extra);
        let shown = text(&out);
        assert_eq!(out.status.code(), Some(0), "{extra:?}: {shown}");
        assert!(
            shown.contains(&format!("fingerprint   {ours}, self-signed"))
                && shown.contains("result: passed"),
            "{shown}"
        );
    }

    // Another self-signed certificate: refused either way, naming both fingerprints.
    let other_dir = tempfile::tempdir()?;
    let other = make_self_signed(other_dir.path(), "localhost")?;
    let theirs = openssl_fingerprint(&other)?;
    let other_path = other.to_str().context("UTF-8 path")?;
    let theirs_text = theirs.to_string();
    for extra in [
        ["--ca-file", other_path],
        ["--tls-fingerprint", &theirs_text],
    ] {
        let out = with(&extra);
        let shown = text(&out);
        assert_eq!(out.status.code(), Some(1), "{extra:?}: {shown}");
        assert!(
            shown.contains(&ours_text) && shown.contains(&theirs_text),
            "{extra:?}: {shown}"
        );
    }

    // --insecure still works, and says to pin instead.
    let out = with(&["--insecure"]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    assert!(
        shown.contains(&format!("pin it instead: --tls-fingerprint {ours}")),
        "{shown}"
    );

    // A pin stored with the endpoint serves every pass.
    let cli = Cli::new();
    cli.ok(&[
        "endpoint",
        "new",
        "--name",
        "legacy",
        "--server",
        "localhost",
        "--port",
        &port,
        "--security",
        "ssl",
        "--tls-fingerprint",
        &ours_text,
    ]);
    let shown = cli.ok(&["endpoint", "show", "legacy"]);
    assert!(shown.contains(&ours_text), "{shown}");
    cli.batch("b", "legacy", &["alice@contoso.edu,alice,alice-pw"]);
    let out = cli.run(&["batch", "start", "b", "--quiet"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // A run's own fingerprint wins: the wrong one fails the pass, naming both.
    let out = cli.run(&[
        "batch",
        "sync",
        "b",
        "--quiet",
        "--tls-fingerprint",
        &theirs_text,
    ]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains(&ours_text) && shown.contains(&theirs_text),
        "{shown}"
    );
    Ok(())
}

/// A plain IMAP server whose greeting and ID answer carry terminal escape sequences.
fn hostile_greeter() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        let Ok((tcp, _)) = listener.accept() else {
            return;
        };
        let mut w = tcp.try_clone().expect("clone the socket");
        let _ = w.write_all(
            b"* OK [CAPABILITY IMAP4rev1 ID] Ready\x1b[2J\x1b]0;owned\x07 \x1b[31mred\r\n",
        );
        for line in BufReader::new(tcp).lines() {
            let Ok(line) = line else { return };
            let tag = line.split(' ').next().unwrap_or("*").to_owned();
            let reply = if line.contains(" ID ") {
                format!("* ID (\"name\" \"Evil\x1b[5mIMAP\")\r\n{tag} OK ID done\r\n")
            } else if line.contains("LOGOUT") {
                format!("* BYE bye\r\n{tag} OK LOGOUT done\r\n")
            } else {
                format!("{tag} OK done\r\n")
            };
            if w.write_all(reply.as_bytes()).is_err() {
                return;
            }
        }
    });
    Ok(port)
}

#[test]
fn what_a_server_sends_reaches_the_terminal_escaped() -> Result<()> {
    let port = hostile_greeter()?.to_string();
    let out = test_server(&[
        "--server",
        "127.0.0.1",
        "--port",
        &port,
        "--security",
        "none",
    ]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    for control in [0x1b_u8, 0x07] {
        assert!(
            !out.stdout.contains(&control) && !out.stderr.contains(&control),
            "a raw {control:#x} reached the terminal: {shown:?}"
        );
    }
    assert!(
        shown.contains("Ready\\u{1b}[2J\\u{1b}]0;owned\\u{7} \\u{1b}[31mred"),
        "{shown}"
    );
    assert!(shown.contains("name=Evil\\u{1b}[5mIMAP"), "{shown}");
    Ok(())
}

#[test]
fn a_microsoft_365_target_without_tls_is_refused() {
    let cli = Cli::new();
    let out = cli.upload(
        &[
            "target",
            "new",
            "--name",
            "m365",
            "--kind",
            "m365-imap",
            "--tenant",
            "contoso.onmicrosoft.com",
            "--client-id",
            "app",
            "--client-secret-env",
            "MS_SECRET",
            "--security",
            "none",
        ],
        &[],
    );
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("bearer token") && shown.contains("--security ssl or tls"),
        "{shown}"
    );
    // Refused before anything was stored: not even the stage was created.
    assert!(!cli.stage().join("index.sqlite").exists());
}

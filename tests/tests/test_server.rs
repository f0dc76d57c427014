//! `mailstage-extract test-server` against a real Dovecot, run as an admin runs it.

mod cli_support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use anyhow::Result;
use cli_support::text;
use mailstage_tests::{Dovecot, bins};

const ALICE_PW: &str = "alice-secret-1";
const BOB_PW: &str = "bob-secret-2";
const MASTER_PW: &str = "master-secret-3";

fn dovecot() -> Result<Dovecot> {
    Dovecot::builder()
        .user("alice", ALICE_PW)
        .user("bob", BOB_PW)
        .user("carol", "carol-secret-4")
        .master_user("mailadmin", MASTER_PW)
        .tls(true)
        .start()
}

fn test_server(args: &[&str]) -> Output {
    Command::new(bins::mailstage_extract())
        .arg("test-server")
        .args(args)
        .output()
        .expect("mailstage-extract runs")
}

fn write_csv(dir: &Path) -> Result<std::path::PathBuf> {
    let path = dir.join("users.csv");
    std::fs::write(
        &path,
        format!(
            "EmailAddress,UserName,Password\n\
             alice@contoso.edu,alice,{ALICE_PW}\n\
             bob@contoso.edu,bob*mailadmin,{MASTER_PW}\n\
             carol@contoso.edu,carol,not-carols-password\n\
             dave@contoso.edu,alice*mailadmin,not-the-master-password\n"
        ),
    )?;
    Ok(path)
}

#[test]
fn every_login_format_and_the_right_diagnosis_for_each_failure() -> Result<()> {
    let d = dovecot()?;
    let dir = tempfile::tempdir()?;
    let csv = write_csv(dir.path())?;
    let port = d.port().to_string();
    let out = test_server(&[
        "--server",
        "127.0.0.1",
        "--port",
        &port,
        "--security",
        "none",
        "--csv",
        csv.to_str().unwrap(),
    ]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    for expected in [
        "IMAP server 127.0.0.1 port",
        "security none: plain, unencrypted",
        "capabilities  IMAP4rev1",
        "server ID     name=Dovecot",
        "round trip",
        "ok (LOGIN as alice,",
        "ok (SASL PLAIN as mailadmin for bob,",
        "row 4    carol@contoso.edu                FAILED [bad_credentials]",
        "check the UserName and Password columns",
        "row 5    dave@contoso.edu                 FAILED [admin_refused]",
        "check mailadmin's password",
        "after login",
        "result: FAILED: 2 of 4 logins failed",
    ] {
        assert!(
            shown.contains(expected),
            "missing {expected:?} in:\n{shown}"
        );
    }
    for secret in [
        ALICE_PW,
        MASTER_PW,
        "not-carols-password",
        "not-the-master-password",
    ] {
        assert!(!shown.contains(secret), "a password was printed:\n{shown}");
    }

    let out = test_server(&[
        "--server",
        "127.0.0.1",
        "--port",
        &port,
        "--security",
        "none",
        "--csv",
        csv.to_str().unwrap(),
        "--auth",
        "login",
        "--json",
    ]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let logins = json["logins"].as_array().expect("logins listed");
    let kinds: Vec<&str> = logins
        .iter()
        .map(|l| l["failure"]["kind"].as_str().unwrap_or("ok"))
        .collect();
    assert_eq!(kinds, ["ok", "ok", "bad_credentials", "admin_refused"]);
    assert_eq!(
        logins[1]["method"], "LOGIN as bob*mailadmin",
        "--auth login forces LOGIN"
    );
    assert_eq!(json["passed"], false);
    Ok(())
}

#[test]
fn starttls_and_implicit_tls_with_the_ca_and_refused_without() -> Result<()> {
    let d = dovecot()?;
    let ca = d
        .ca_pem_path()
        .expect("TLS is on")
        .to_str()
        .unwrap()
        .to_owned();
    let port = d.port().to_string();
    let tls_port = d.tls_port().expect("TLS is on").to_string();

    let out = test_server(&[
        "--server",
        "localhost",
        "--port",
        &port,
        "--security",
        "tls",
        "--ca-file",
        &ca,
    ]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    assert!(
        shown.contains("security tls: STARTTLS") && shown.contains("TLSv1_3"),
        "{shown}"
    );
    assert!(shown.contains("CN=localhost"), "{shown}");
    assert!(
        shown.contains("days left") && shown.contains("result: passed"),
        "{shown}"
    );

    let out = test_server(&[
        "--server",
        "localhost",
        "--port",
        &tls_port,
        "--security",
        "ssl",
        "--ca-file",
        &ca,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let out = test_server(&[
        "--server",
        "localhost",
        "--port",
        &tls_port,
        "--security",
        "ssl",
    ]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("FAILED [tls]") && shown.contains("--ca-file"),
        "{shown}"
    );

    let out = test_server(&[
        "--server",
        "localhost",
        "--port",
        &tls_port,
        "--security",
        "ssl",
        "--insecure",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    Ok(())
}

#[test]
fn unreachable_servers_fail_fast_with_the_cause() -> Result<()> {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port()
        .to_string();
    let started = Instant::now();
    let out = test_server(&[
        "--server",
        "127.0.0.1",
        "--port",
        &closed,
        "--security",
        "none",
    ]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("FAILED [refused]") && shown.contains("check the port"),
        "{shown}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );

    let out = test_server(&["--server", "no-such-host.invalid", "--security", "ssl"]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("FAILED [dns]") && shown.contains("cannot resolve no-such-host.invalid"),
        "{shown}"
    );

    let dir = tempfile::tempdir()?;
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "EmailAddress,UserName\nx@y.z,u\n")?;
    let out = test_server(&[
        "--server",
        "127.0.0.1",
        "--port",
        &closed,
        "--csv",
        bad.to_str().unwrap(),
    ]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("row 1, column Password: missing column"),
        "{shown}"
    );
    Ok(())
}

//! Uploading into a target that accepts only app-only OAuth2 (XOAUTH2), as Microsoft 365
//! does: tokens from the emulated Entra ID endpoint, checked by the target Dovecot. A run
//! that outlives several token lifetimes completes; a wrong secret or tenant stops the run
//! at once with Entra ID's words and a hint.

mod cli_support;

use std::time::Duration;

use anyhow::Result;
use cli_support::{Cli, SECRET_VAR, contains, index_bytes, text};
use mailstage::extract::Pass;
use mailstage_tests::extraction::{TestMailbox, default_limits};
use mailstage_tests::fixtures::simple;
use mailstage_tests::token_endpoint::{CLIENT_SECRET, TENANT};
use mailstage_tests::upload::{Contents, staged_contents, target_contents};
use mailstage_tests::{Dovecot, TokenEndpoint};

const EMAILS: [&str; 3] = ["a@contoso.edu", "b@contoso.edu", "c@contoso.edu"];

/// Three mailboxes of 12 messages each, staged into the CLI's stage as batch `b1`.
fn staged(cli: &Cli) -> Result<Dovecot> {
    let mut b = Dovecot::builder();
    for (k, _) in EMAILS.iter().enumerate() {
        b = b.user(&format!("u{k}"), "pw");
    }
    let d = b.start()?;
    let logins: Vec<String> = (0..EMAILS.len()).map(|k| format!("u{k}")).collect();
    for (k, login) in logins.iter().enumerate() {
        for i in 0..12u64 {
            d.write_message_at(
                login,
                "INBOX",
                &["\\Seen"],
                1_700_000_000 + i,
                &simple(k as u64 * 100 + i),
            )?;
        }
    }
    let mailboxes: Vec<TestMailbox> = EMAILS
        .iter()
        .zip(&logins)
        .map(|(email, login)| TestMailbox {
            email,
            login,
            password: "pw",
            user_root: None,
        })
        .collect();
    let outcomes = mailstage_tests::extraction::run(
        &cli.stage(),
        &d,
        &mailboxes,
        default_limits(),
        Pass::Full,
    )?;
    assert!(outcomes.iter().all(|o| o.error.is_none()), "{outcomes:?}");
    Ok(d)
}

#[test]
fn a_run_outliving_several_token_lifetimes_completes() -> Result<()> {
    let cli = Cli::new();
    let _source = staged(&cli)?;
    let endpoint = TokenEndpoint::builder()
        .scope("https://127.0.0.1/.default")
        .lifetime(Duration::from_secs(2))
        .start()?;
    let mut b = Dovecot::builder().xoauth2_introspection(&endpoint.introspection_url());
    for e in EMAILS {
        b = b.user(e, "unused-password");
    }
    let target = b.master_user("admin", "admin-pw").start()?;
    cli.m365_target("m365", TENANT, target.port(), &endpoint);

    // One mailbox at a time, 8 messages a second: about 4.5 s, so later mailboxes log in
    // with tokens issued after the first expired.
    let out = cli.upload(
        &[
            "run",
            "--batch",
            "b1",
            "--target",
            "m365",
            "--quiet",
            "--concurrency",
            "1",
            "--max-messages-per-second",
            "8",
        ],
        &[(SECRET_VAR, CLIENT_SECRET)],
    );
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(0), "{shown}\n{}", target.log());
    for e in EMAILS {
        assert!(shown.contains(&format!("{e}: 12 uploaded")), "{shown}");
    }
    let issued = endpoint.counters().tokens_issued;
    assert!(
        issued >= 2,
        "{issued} token(s) issued over a run longer than two lifetimes"
    );
    let mut uploaded = Contents::new();
    for e in EMAILS {
        uploaded.extend(target_contents(&target, e)?);
    }
    assert_eq!(uploaded, staged_contents(&cli.stage())?);
    assert!(
        !contains(&index_bytes(&cli.stage()), CLIENT_SECRET),
        "the secret reached the index"
    );
    Ok(())
}

#[test]
fn a_wrong_secret_or_tenant_stops_the_run_with_entra_ids_words() -> Result<()> {
    let cli = Cli::new();
    let _source = staged(&cli)?;
    let endpoint = TokenEndpoint::builder()
        .scope("https://127.0.0.1/.default")
        .start()?;
    let target = Dovecot::builder()
        .xoauth2_introspection(&endpoint.introspection_url())
        .user(EMAILS[0], "x")
        .start()?;
    cli.m365_target("m365", TENANT, target.port(), &endpoint);
    cli.m365_target(
        "elsewhere",
        "fabrikam.onmicrosoft.com",
        target.port(),
        &endpoint,
    );

    let out = cli.upload(
        &["run", "--batch", "b1", "--target", "m365", "--quiet"],
        &[(SECRET_VAR, "wrong")],
    );
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("target \"m365\": getting an access token")
            && shown.contains("AADSTS7000215"),
        "{shown}"
    );
    assert!(!shown.contains("wrong\""), "the secret was echoed: {shown}");

    let out = cli.upload(
        &["run", "--batch", "b1", "--target", "elsewhere", "--quiet"],
        &[(SECRET_VAR, CLIENT_SECRET)],
    );
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(shown.contains("AADSTS90002"), "{shown}");

    let out = cli.upload(
        &["run", "--batch", "b1", "--target", "m365", "--quiet"],
        &[],
    );
    assert!(text(&out).contains(SECRET_VAR), "{}", text(&out));
    Ok(())
}

#[test]
fn a_throttled_authenticate_waits_and_keeps_its_token() -> Result<()> {
    use mailstage_tests::exchange_proxy::{ExchangeProxy, ExchangeRules};
    let cli = Cli::new();
    let _source = staged(&cli)?;
    let endpoint = TokenEndpoint::builder()
        .scope("https://127.0.0.1/.default")
        .start()?;
    let mut b = Dovecot::builder().xoauth2_introspection(&endpoint.introspection_url());
    for e in EMAILS {
        b = b.user(e, "unused-password");
    }
    let target = b.master_user("admin", "admin-pw").start()?;
    // Every second AUTHENTICATE is throttled, as Exchange throttles any command.
    let proxy = ExchangeProxy::start(
        target.port(),
        ExchangeRules {
            throttle_every: Some(2),
            throttle_commands: vec!["AUTHENTICATE".into()],
            backoff: Duration::from_millis(50),
            ..ExchangeRules::default()
        },
    )?;
    cli.m365_target("m365", TENANT, proxy.port(), &endpoint);
    let out = cli.upload(
        &["run", "--batch", "b1", "--target", "m365", "--quiet"],
        &[(SECRET_VAR, CLIENT_SECRET)],
    );
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    let throttled = proxy.stats().throttled_kinds();
    assert!(
        throttled.get("AUTHENTICATE").is_some_and(|&n| n >= 1),
        "{throttled:?}"
    );
    // A throttle says nothing about the token: the one token serves the whole run.
    assert_eq!(endpoint.counters().tokens_issued, 1, "{shown}");
    let mut uploaded = Contents::new();
    for e in EMAILS {
        uploaded.extend(target_contents(&target, e)?);
    }
    assert_eq!(uploaded, staged_contents(&cli.stage())?);
    Ok(())
}

#[test]
fn a_token_endpoint_outage_mid_run_is_waited_out_not_a_failed_mailbox() -> Result<()> {
    use mailstage::oauth2::{OAuthConfig, TokenRetry, TokenSource};
    use mailstage::upload::{Credentials, MappingRules};
    use mailstage_tests::Fault;
    use mailstage_tests::token_endpoint::CLIENT_ID;
    const ALICE: &str = "alice@contoso.edu";
    let source = Dovecot::builder().user("alice", "alice-pw").start()?;
    for i in 0..4 {
        source.write_message_at("alice", "INBOX", &[], 1_700_000_000 + i, &simple(i))?;
    }
    let dir = tempfile::tempdir()?;
    mailstage_tests::extraction::stage_user(dir.path(), &source, ALICE, "alice", Pass::Full)?;
    let endpoint = TokenEndpoint::builder()
        .scope("https://127.0.0.1/.default")
        .start()?;
    let target = Dovecot::builder()
        .xoauth2_introspection(&endpoint.introspection_url())
        .user(ALICE, "unused-password")
        .master_user("admin", "admin-pw")
        .start()?;
    let mut config = OAuthConfig::new(TENANT, CLIENT_ID, CLIENT_SECRET.into(), "127.0.0.1")
        .with_login_base(&endpoint.login_base());
    // The client's own retries are spent at once: the mailbox meets the outage.
    config.retry = TokenRetry {
        max_attempts: 1,
        ..TokenRetry::default()
    };
    endpoint.fail_next(2, Fault::ServerError);
    let credentials = Credentials::Bearer(TokenSource::new(&config)?);
    let mut job = mailstage_tests::upload::job_to(
        dir.path(),
        target.port(),
        credentials,
        None,
        MappingRules::default(),
    )?;
    mailstage_tests::upload::as_m365(&mut job);
    job.connections = 1;
    let o = mailstage_tests::upload::run(dir.path(), job)?.remove(0);
    assert!(o.error.is_none(), "{o:?}");
    assert_eq!(o.counts.uploaded, 4, "{:?}", o.counts);
    assert_eq!(endpoint.counters().faults, 2);
    Ok(())
}

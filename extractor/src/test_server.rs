//! `test-server`: the counterpart of Test-MigrationServerAvailability — can this machine
//! reach the IMAP server, is TLS right, and (given the batch CSV) does every row log in?

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use mailstage::commands::test_server::{TestServerReport, TestServerRequest, test_server};
use mailstage::imap::diagnose::Failure;
use mailstage::imap::{Fingerprint, Security};
use mailstage::login::AuthChoice;
use mailstage::report::print_json;
use mailstage::report::terminal::printable;

/// Arguments of `test-server`.
#[derive(Args)]
pub struct TestServerArgs {
    /// The IMAP server's name (FQDN) or address.
    #[arg(long)]
    server: String,
    /// The port [default: 993 for ssl, 143 otherwise].
    #[arg(long)]
    port: Option<u16>,
    /// none (plain), ssl (implicit TLS) or tls (STARTTLS).
    #[arg(long, default_value = "ssl")]
    security: Security,
    /// A PEM file of CA certificates to trust besides the system's (a private CA).
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// Accept any certificate. Only for a lab server: the connection can be intercepted.
    /// For a self-signed certificate, pin it instead (--tls-fingerprint or --ca-file).
    #[arg(long)]
    insecure: bool,
    /// Accept exactly the certificate with this SHA-256 fingerprint (`sha256:` and 64 hex
    /// digits; test-server prints it), e.g. a server's self-signed certificate.
    #[arg(long, value_name = "sha256:HEX")]
    tls_fingerprint: Option<Fingerprint>,
    /// A batch CSV (EmailAddress,UserName,Password[,UserRoot][,TargetUserName]): try every row's login.
    #[arg(long)]
    csv: Option<PathBuf>,
    /// How to log in: auto, login, plain or xoauth2.
    #[arg(long, default_value = "auto")]
    auth: AuthChoice,
    /// How many logins to try at once.
    #[arg(long, default_value_t = 8)]
    parallel: usize,
    /// Seconds to wait for the connection (and TLS) before giving up.
    #[arg(long, default_value_t = 15)]
    timeout: u64,
    /// Print the results as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs the checks and prints them; returns the exit status (0 only if every check passed).
pub fn run(args: TestServerArgs, out: &mut dyn Write) -> anyhow::Result<u8> {
    let results = test_server(&TestServerRequest {
        server: args.server,
        port: args.port,
        security: args.security,
        ca_file: args.ca_file,
        insecure: args.insecure,
        tls_fingerprint: args.tls_fingerprint,
        csv: args.csv.clone(),
        auth: args.auth,
        parallel: args.parallel,
        timeout: Duration::from_secs(args.timeout),
    })?;
    if args.json {
        print_json(out, &results)?;
    } else {
        render(&results, args.csv.as_ref(), out)?;
    }
    Ok(if results.passed { 0 } else { 1 })
}

fn render(r: &TestServerReport, csv: Option<&PathBuf>, out: &mut dyn Write) -> std::io::Result<()> {
    let s = &r.server;
    let how = match s.security.as_str() {
        "ssl" => "implicit TLS",
        "tls" => "STARTTLS",
        _ => "plain, unencrypted",
    };
    writeln!(
        out,
        "IMAP server {} port {} (security {}: {how})",
        s.server, s.port, s.security
    )?;
    if let Some(ms) = s.dns_ms {
        writeln!(
            out,
            "  DNS           {} ({ms:.1} ms)",
            s.addresses.join(", ")
        )?;
    }
    if let (Some(to), Some(ms)) = (&s.connected_to, s.connect_ms) {
        writeln!(out, "  TCP           connected to {to} in {ms:.1} ms")?;
    }
    if let Some(t) = &s.tls {
        writeln!(out, "  TLS           {} {}", t.version, t.cipher)?;
        writeln!(
            out,
            "  certificate   {}, issued by {}",
            printable(&t.subject),
            printable(&t.issuer)
        )?;
        writeln!(
            out,
            "                valid until {} ({} days left)",
            t.not_after, t.days_left
        )?;
        if let Some(f) = t.fingerprint {
            let signed = if t.self_signed { ", self-signed" } else { "" };
            writeln!(out, "  fingerprint   {f}{signed}")?;
            if t.self_signed && !t.checked {
                writeln!(
                    out,
                    "     hint: the certificate was not checked (--insecure); if this is the \
                     server's own, pin it instead: --tls-fingerprint {f}"
                )?;
            }
        }
    }
    if let Some(g) = &s.greeting {
        writeln!(
            out,
            "  greeting      {} ({:.1} ms)",
            printable(g),
            s.session_ms.unwrap_or_default()
        )?;
    }
    if !s.capabilities.is_empty() {
        writeln!(
            out,
            "  capabilities  {}",
            printable(&s.capabilities.join(" "))
        )?;
    }
    if !s.server_id.is_empty() {
        let id: Vec<String> = s
            .server_id
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        writeln!(out, "  server ID     {}", printable(&id.join(" ")))?;
    }
    if let Some(rtt) = s.round_trip_ms {
        writeln!(out, "  round trip    {rtt:.2} ms (NOOP, median of 3)")?;
    }
    if let Some(f) = &s.failure {
        write_failure(out, "  FAILED", f)?;
    }
    if let Some(path) = csv {
        writeln!(out, "logins from {}:", path.display())?;
        for l in &r.logins {
            let method = l.method.as_deref().unwrap_or("-");
            if l.ok {
                writeln!(
                    out,
                    "  row {:<4} {:<32} ok ({method}, {:.0} ms)",
                    l.row, l.email, l.ms
                )?;
            } else if let Some(f) = &l.failure {
                write_failure(
                    out,
                    &format!("  row {:<4} {:<32} FAILED", l.row, l.email),
                    f,
                )?;
            }
        }
        if let Some(first) = r.logins.iter().find(|l| l.ok) {
            writeln!(
                out,
                "  after login   {} (row {})",
                printable(&first.capabilities.join(" ")),
                first.row
            )?;
        }
    }
    let failed = r.logins.iter().filter(|l| !l.ok).count();
    let verdict = match (&s.failure, failed) {
        (Some(_), _) => "FAILED: the server cannot be used as it is".to_owned(),
        (None, 0) => "passed".to_owned(),
        (None, n) => format!("FAILED: {n} of {} logins failed", r.logins.len()),
    };
    writeln!(out, "result: {verdict}")
}

fn write_failure(out: &mut dyn Write, lead: &str, f: &Failure) -> std::io::Result<()> {
    let kind = serde_json::to_value(f.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    writeln!(out, "{lead} [{kind}] {}", printable(&f.message))?;
    writeln!(
        out,
        "{:width$}   hint: {}",
        "",
        printable(&f.hint),
        width = 2
    )
}

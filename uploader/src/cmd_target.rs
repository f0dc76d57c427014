//! `target new | show | list | remove`: where `mailstage-upload run` puts mail. Secrets are
//! never stored: a target records the environment variable or file they are read from.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use mailstage::catalog::{
    M365_IMAP_HOST, M365_LOGIN_URL, SecretSource, TargetKind, TargetSettings,
};
use mailstage::catalog::{Security, TlsTrust};
use mailstage::imap::Fingerprint;
use mailstage::login::AuthChoice;
use mailstage::report::print_json;
use mailstage::report::table::{Align, Table, write_list};
use mailstage::stage::{Access, Stage};

/// The `target` subcommands.
#[derive(Subcommand)]
pub enum TargetCommand {
    /// Create a target: Microsoft 365 (app-only OAuth2) or any IMAP server.
    New(Box<NewTargetArgs>),
    /// Show one target.
    Show {
        /// The target's name.
        name: String,
        /// Print it as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List every target.
    List {
        /// Print them as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a target (refused while uploads to it are recorded, unless --force).
    Remove {
        /// The target's name.
        name: String,
        /// Forget its upload records too: a later run to the same mailboxes sends
        /// everything again.
        #[arg(long)]
        force: bool,
        /// Print what was removed as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// The kinds of target.
#[derive(Clone, Copy, ValueEnum)]
enum Kind {
    /// Microsoft 365 over IMAP with app-only OAuth2 (XOAUTH2).
    M365Imap,
    /// Any IMAP server with a password login.
    Imap,
}

/// Arguments of `target new`.
#[derive(Args)]
pub struct NewTargetArgs {
    /// The target's name, unique in the stage.
    #[arg(long)]
    name: String,
    /// m365-imap or imap.
    #[arg(long, value_enum)]
    kind: Kind,
    /// m365-imap: the tenant (GUID or contoso.onmicrosoft.com).
    #[arg(long)]
    tenant: Option<String>,
    /// m365-imap: the app registration's client id.
    #[arg(long)]
    client_id: Option<String>,
    /// m365-imap: the environment variable holding the client secret at run time.
    #[arg(long, conflicts_with = "client_secret_file")]
    client_secret_env: Option<String>,
    /// m365-imap: a file holding the client secret (read at run time).
    #[arg(long)]
    client_secret_file: Option<PathBuf>,
    /// m365-imap: the IMAP host (also the token's scope).
    #[arg(long, default_value = M365_IMAP_HOST)]
    imap_host: String,
    /// m365-imap: the login base URL (national clouds).
    #[arg(long, default_value = M365_LOGIN_URL)]
    login_url: String,
    /// imap: the server's name or address.
    #[arg(long)]
    server: Option<String>,
    /// The IMAP port [default: 993 for ssl, 143 otherwise].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    port: Option<u16>,
    /// none, ssl (implicit TLS) or tls (STARTTLS) [default: ssl].
    #[arg(long)]
    security: Option<Security>,
    /// imap: auto, login or plain.
    #[arg(long, default_value = "auto")]
    auth: AuthChoice,
    /// imap: an admin (master user) that logs in for each mailbox as `mailbox*admin`;
    /// without one, each mailbox logs in with the same password.
    #[arg(long)]
    admin_user: Option<String>,
    /// imap: for an admin that cannot log in as another user (Courier-IMAP): where each
    /// mailbox is, levels separated by `/`, `{user}` standing for the target mailbox, e.g.
    /// `/#shared/{user}`. The admin logs in as itself; the root is the mailbox's INBOX.
    #[arg(long, requires = "admin_user")]
    user_root: Option<String>,
    /// imap: the environment variable holding the password at run time.
    #[arg(long, conflicts_with = "password_file")]
    password_env: Option<String>,
    /// imap: a file holding the password (read at run time).
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// A PEM file of CA certificates to trust besides the system's (a private CA), kept
    /// with the target (its absolute path) for every run.
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// Accept any server certificate on every run (a lab server only).
    #[arg(long)]
    insecure: bool,
    /// Accept exactly the server certificate with this SHA-256 fingerprint on every run
    /// (`sha256:` and 64 hex digits, as `mailstage-extract test-server` shows it).
    #[arg(long, value_name = "sha256:HEX")]
    tls_fingerprint: Option<Fingerprint>,
    /// Print the new target as JSON.
    #[arg(long)]
    json: bool,
}

fn secret_source(
    env: Option<String>,
    file: Option<PathBuf>,
    what: &str,
) -> anyhow::Result<SecretSource> {
    match (env, file) {
        (Some(var), None) if !var.is_empty() => Ok(SecretSource::Env(var)),
        (None, Some(path)) => Ok(SecretSource::File(path).absolute()?),
        _ => bail!(
            "give exactly one of {what}-env VAR or {what}-file FILE (the secret itself is never stored)"
        ),
    }
}

fn settings(a: NewTargetArgs) -> anyhow::Result<TargetSettings> {
    if a.name.trim().is_empty() {
        bail!("--name must not be empty");
    }
    let security = a.security.unwrap_or(Security::Ssl);
    let port = a.port.unwrap_or(security.default_port());
    let kind = match a.kind {
        Kind::M365Imap => TargetKind::M365Imap {
            tenant: a
                .tenant
                .filter(|t| !t.is_empty())
                .context("--kind m365-imap needs --tenant")?,
            client_id: a
                .client_id
                .filter(|t| !t.is_empty())
                .context("--kind m365-imap needs --client-id")?,
            client_secret: secret_source(
                a.client_secret_env,
                a.client_secret_file,
                "--client-secret",
            )?,
            imap_host: a.imap_host,
            imap_port: port,
            security,
            login_url: a.login_url.trim_end_matches('/').to_owned(),
        },
        Kind::Imap => TargetKind::Imap {
            server: a
                .server
                .filter(|s| !s.is_empty())
                .context("--kind imap needs --server")?,
            port,
            security,
            auth: a.auth,
            admin_user: a.admin_user,
            secret: secret_source(a.password_env, a.password_file, "--password")?,
            user_root: a.user_root.filter(|r| !r.trim_matches('/').is_empty()),
        },
    };
    let tls = TlsTrust::to_store(a.ca_file.as_deref(), a.insecure, a.tls_fingerprint)?;
    let target = TargetSettings {
        name: a.name,
        kind,
        tls,
    };
    target.check_security().map_err(anyhow::Error::msg)?;
    Ok(target)
}

/// `Key : value` lines of a target.
fn write_target(out: &mut dyn Write, t: &TargetSettings) -> std::io::Result<()> {
    let mut items = vec![
        ("Identity", t.name.clone()),
        ("Kind", t.kind_name().into()),
        ("Server", t.address()),
    ];
    match &t.kind {
        TargetKind::M365Imap {
            tenant,
            client_id,
            client_secret,
            login_url,
            security,
            ..
        } => {
            items.push(("Security", security.to_string()));
            items.push(("Tenant", tenant.clone()));
            items.push(("ClientId", client_id.clone()));
            items.push(("ClientSecretFrom", client_secret.to_string()));
            items.push(("LoginUrl", login_url.clone()));
        }
        TargetKind::Imap {
            security,
            auth,
            admin_user,
            secret,
            user_root,
            ..
        } => {
            items.push(("Security", security.to_string()));
            items.push(("Auth", auth.as_str().into()));
            items.push((
                "AdminUser",
                admin_user
                    .clone()
                    .unwrap_or_else(|| "(each mailbox logs in itself)".into()),
            ));
            if let Some(root) = user_root {
                items.push(("UserRoot", root.clone()));
            }
            items.push(("PasswordFrom", secret.to_string()));
        }
    }
    items.push(("TrustedCaFile", t.tls.ca_file_text()));
    items.push(("PinnedCertificate", t.tls.fingerprint_text()));
    items.push(("CertificateCheck", t.tls.check_text().into()));
    write_list(out, &items)
}

/// Runs a `target` subcommand on the stage at `stage_dir`.
pub fn run(stage_dir: &Path, cmd: TargetCommand, out: &mut dyn Write) -> anyhow::Result<u8> {
    match cmd {
        TargetCommand::New(a) => {
            let json = a.json;
            let t = settings(*a)?;
            Stage::open(stage_dir, Access::Write)?
                .index()
                .add_target(&t)?;
            if json {
                print_json(out, &t)?;
            } else {
                writeln!(out, "target {:?} created\n", t.name)?;
                write_target(out, &t)?;
            }
        }
        TargetCommand::Show { name, json } => {
            let t = Stage::open(stage_dir, Access::Read)?
                .index()
                .target(&name)?;
            if json {
                print_json(out, &t)?;
            } else {
                write_target(out, &t)?;
            }
        }
        TargetCommand::List { json } => {
            let targets = Stage::open(stage_dir, Access::Read)?.index().targets()?;
            if json {
                print_json(out, &targets)?;
            } else if targets.is_empty() {
                writeln!(
                    out,
                    "no targets in this stage (create one with: mailstage-upload target new)"
                )?;
            } else {
                let mut table = Table::new(&[
                    ("NAME", Align::Left),
                    ("KIND", Align::Left),
                    ("SERVER", Align::Left),
                ]);
                for t in &targets {
                    table.row(vec![t.name.clone(), t.kind_name().into(), t.address()]);
                }
                table.write(out)?;
            }
        }
        TargetCommand::Remove { name, force, json } => {
            let forgotten = Stage::open(stage_dir, Access::Write)?
                .index_mut()
                .remove_target(&name, force)?;
            if json {
                let removed = serde_json::json!({
                    "removed": "target",
                    "name": name,
                    "upload_records_forgotten": forgotten,
                });
                print_json(out, &removed)?;
            } else if forgotten > 0 {
                writeln!(
                    out,
                    "target {name:?} removed, with its {forgotten} upload record(s)"
                )?;
            } else {
                writeln!(out, "target {name:?} removed")?;
            }
        }
    }
    Ok(0)
}

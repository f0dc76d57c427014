//! `endpoint new | show | list | remove`: the counterparts of New-MigrationEndpoint -IMAP,
//! Get-MigrationEndpoint and Remove-MigrationEndpoint, stored in the stage's index.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use mailstage::catalog::{EndpointSettings, Security, TlsTrust};
use mailstage::imap::Fingerprint;
use mailstage::report::print_json;
use mailstage::stage::{Access, Index, Stage};
use serde::Serialize;

use mailstage::report::table::{Align, Table, write_list};

/// The `endpoint` subcommands.
#[derive(Subcommand)]
pub enum EndpointCommand {
    /// Create an endpoint: the source IMAP server and how many mailboxes copy at once
    /// (New-MigrationEndpoint -IMAP).
    New(NewEndpointArgs),
    /// Show one endpoint (Get-MigrationEndpoint E | Format-List).
    Show {
        /// The endpoint's name.
        name: String,
        /// Print it as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List every endpoint and the batches that use it.
    List {
        /// Print them as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove an endpoint no batch uses.
    Remove {
        /// The endpoint's name.
        name: String,
        /// Print what was removed as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Arguments of `endpoint new`.
#[derive(Args)]
pub struct NewEndpointArgs {
    /// The endpoint's name, unique in the stage.
    #[arg(long)]
    name: String,
    /// The IMAP server's name (FQDN) or address.
    #[arg(long)]
    server: String,
    /// The port [default: 993 for ssl, 143 otherwise].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    port: Option<u16>,
    /// none (plain), ssl (implicit TLS) or tls (STARTTLS).
    #[arg(long)]
    security: Security,
    /// Mailboxes copied at once in a first pass.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    max_concurrent_migrations: u32,
    /// Mailboxes copied at once in incremental passes.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    max_concurrent_incremental_syncs: u32,
    /// A PEM file of CA certificates to trust besides the system's (a private CA); kept
    /// with the endpoint (its absolute path) for every pass.
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// Accept any server certificate on every pass (a lab server only).
    #[arg(long)]
    insecure: bool,
    /// Accept exactly the server certificate with this SHA-256 fingerprint on every pass
    /// (`sha256:` and 64 hex digits, as test-server shows it): a self-signed server.
    #[arg(long, value_name = "sha256:HEX")]
    tls_fingerprint: Option<Fingerprint>,
    /// Print the new endpoint as JSON.
    #[arg(long)]
    json: bool,
}

/// An endpoint as `show`, `list` and `--json` present it.
#[derive(Serialize)]
struct EndpointView {
    name: String,
    endpoint_type: &'static str,
    server: String,
    port: u16,
    security: &'static str,
    max_concurrent_migrations: u32,
    max_concurrent_incremental_syncs: u32,
    #[serde(flatten)]
    tls: TlsTrust,
    batches: Vec<String>,
}

impl EndpointView {
    fn load(index: &Index, e: EndpointSettings) -> anyhow::Result<Self> {
        Ok(Self {
            batches: index.batches_using_endpoint(&e.name)?,
            endpoint_type: "IMAP",
            security: e.security.as_str(),
            name: e.name,
            server: e.server,
            port: e.port,
            max_concurrent_migrations: e.max_concurrent_migrations,
            max_concurrent_incremental_syncs: e.max_concurrent_incremental_syncs,
            tls: e.tls,
        })
    }

    /// `Format-List` of the fields Microsoft's procedure checks, plus the batches using it.
    fn write(&self, out: &mut dyn Write) -> std::io::Result<()> {
        write_list(
            out,
            &[
                ("Identity", self.name.clone()),
                ("EndpointType", self.endpoint_type.into()),
                ("RemoteServer", self.server.clone()),
                ("Port", self.port.to_string()),
                ("Security", self.security.into()),
                (
                    "MaxConcurrentMigrations",
                    self.max_concurrent_migrations.to_string(),
                ),
                (
                    "MaxConcurrentIncrementalSyncs",
                    self.max_concurrent_incremental_syncs.to_string(),
                ),
                ("TrustedCaFile", self.tls.ca_file_text()),
                ("PinnedCertificate", self.tls.fingerprint_text()),
                ("CertificateCheck", self.tls.check_text().into()),
                ("UsedByBatches", batch_list(&self.batches)),
            ],
        )
    }
}

fn batch_list(names: &[String]) -> String {
    if names.is_empty() {
        "(none)".into()
    } else {
        names.join(", ")
    }
}

/// Runs an `endpoint` subcommand on the stage at `stage_dir`; returns the exit status.
pub fn run(stage_dir: &Path, cmd: EndpointCommand, out: &mut dyn Write) -> anyhow::Result<u8> {
    match cmd {
        EndpointCommand::New(a) => {
            if a.name.trim().is_empty() || a.server.trim().is_empty() {
                anyhow::bail!("--name and --server must not be empty");
            }
            let mut settings = EndpointSettings::new(
                &a.name,
                &a.server,
                a.port.unwrap_or(a.security.default_port()),
                a.security,
            );
            settings.max_concurrent_migrations = a.max_concurrent_migrations;
            settings.max_concurrent_incremental_syncs = a.max_concurrent_incremental_syncs;
            settings.tls = TlsTrust::to_store(a.ca_file.as_deref(), a.insecure, a.tls_fingerprint)?;
            let stage = Stage::open(stage_dir, Access::Write)?;
            let index = stage.index();
            index.add_endpoint(&settings)?;
            let detail = format!(
                "{}:{} ({})",
                settings.server, settings.port, settings.security
            );
            index.record_event(None, None, "endpoint.created", &detail)?;
            let view = EndpointView::load(index, settings)?;
            if a.json {
                print_json(out, &view)?;
            } else {
                writeln!(out, "endpoint {:?} created\n", view.name)?;
                view.write(out)?;
            }
        }
        EndpointCommand::Show { name, json } => {
            let stage = Stage::open(stage_dir, Access::Read)?;
            let view = EndpointView::load(stage.index(), stage.index().endpoint(&name)?)?;
            if json {
                print_json(out, &view)?;
            } else {
                view.write(out)?;
            }
        }
        EndpointCommand::List { json } => {
            let stage = Stage::open(stage_dir, Access::Read)?;
            let index = stage.index();
            let views = index
                .endpoints()?
                .into_iter()
                .map(|e| EndpointView::load(index, e))
                .collect::<anyhow::Result<Vec<_>>>()?;
            if json {
                print_json(out, &views)?;
            } else if views.is_empty() {
                writeln!(
                    out,
                    "no endpoints in this stage (create one with: mailstage-extract endpoint new)"
                )?;
            } else {
                list_table(&views).write(out)?;
            }
        }
        EndpointCommand::Remove { name, json } => {
            let mut stage = Stage::open(stage_dir, Access::Write)?;
            stage.index_mut().remove_endpoint(&name)?;
            if json {
                print_json(
                    out,
                    &serde_json::json!({"removed": "endpoint", "name": name}),
                )?;
            } else {
                writeln!(out, "endpoint {name:?} removed")?;
            }
        }
    }
    Ok(0)
}

fn list_table(views: &[EndpointView]) -> Table {
    let mut t = Table::new(&[
        ("NAME", Align::Left),
        ("TYPE", Align::Left),
        ("SERVER", Align::Left),
        ("PORT", Align::Right),
        ("SECURITY", Align::Left),
        ("MIGRATIONS", Align::Right),
        ("INCREMENTAL", Align::Right),
        ("BATCHES", Align::Left),
    ]);
    for v in views {
        t.row(vec![
            v.name.clone(),
            v.endpoint_type.into(),
            v.server.clone(),
            v.port.to_string(),
            v.security.into(),
            v.max_concurrent_migrations.to_string(),
            v.max_concurrent_incremental_syncs.to_string(),
            batch_list(&v.batches),
        ]);
    }
    t
}

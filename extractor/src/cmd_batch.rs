//! `batch new | status | remove`: the counterparts of New-MigrationBatch, Get-MigrationBatch
//! and Remove-MigrationBatch. (`batch start` and `batch sync` run the extraction.)

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use mailstage::catalog::{BatchSettings, DEFAULT_MAX_ITEMS};
use mailstage::commands::merge::StageView;
use mailstage::extract::namespaces::ForeignNamespace;
use mailstage::login::AuthChoice;
use mailstage::report::print_json;
use mailstage::report::reconcile::ReportRequest;
use mailstage::stage::index::{BatchInfo, BatchStatus, ItemCounts, MailboxState};
use mailstage::stage::{Access, Stage};
use serde::Serialize;

use mailstage::report::table::{Align, Table, grouped, human_bytes, or_dash, write_list};

/// The `batch` subcommands.
#[derive(Subcommand)]
pub enum BatchCommand {
    /// Create a batch from a CSV file of mailboxes (New-MigrationBatch). The CSV is checked
    /// whole first; its passwords are never stored, they are read from it at each run.
    New(NewBatchArgs),
    /// Show batches (Get-MigrationBatch): all of them, or one with its totals; --users adds a
    /// line per mailbox. --json always includes the mailboxes.
    Status(StatusArgs),
    /// Remove a batch's rows and free the blobs no other batch uses (Remove-MigrationBatch).
    /// Refused while staged messages are not uploaded, unless --force.
    Remove(RemoveArgs),
    /// Run the first pass of a batch (Start-MigrationBatch): every mail folder of every
    /// mailbox into the stage. Exit status 0 all done, 1 failed, 2 done with skips or errors.
    Start(crate::cmd_pass::RunArgs),
    /// Run an incremental pass: only what is new or changed since the last one; --every 24h
    /// keeps doing it. Exit status as for start.
    Sync(crate::cmd_pass::SyncArgs),
    /// The extraction report of a batch (Get-MigrationUserStatistics -IncludeReport): per
    /// mailbox and folder, what the source reported, staged, skipped and why, failed,
    /// excluded, reconciled, with a data consistency grade. Exit status 0 Perfect or Good,
    /// 2 Investigate or Poor.
    Report(ReportArgs),
    /// Split the batch into N shards that run on different machines (a Slurm array, a
    /// Kubernetes Indexed Job): sizes from one quick pass over the source (no bodies),
    /// largest mailboxes first onto the lightest shard, stored in the batch. Mailboxes already
    /// planned keep their shard; CSV rows the batch lacks are added and placed.
    /// --export DIR seeds DIR/shard-I, a stage per shard, with the catalog (no secrets).
    Plan(crate::cmd_shards::PlanArgs),
    /// Record that an admin approved the batch's skipped items (Set-MigrationBatch
    /// -ApproveSkippedItems); the report shows it.
    ApproveSkipped(ApproveArgs),
}

/// Arguments of `batch report`.
#[derive(Args)]
pub struct ReportArgs {
    /// The batch.
    name: String,
    #[command(flatten)]
    output: mailstage::cli::ReportOutput,
}

/// Arguments of `batch approve-skipped`.
#[derive(Args)]
pub struct ApproveArgs {
    /// The batch.
    name: String,
    /// Print what was approved as JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `batch new`.
#[derive(Args)]
pub struct NewBatchArgs {
    /// The batch's name, unique in the stage.
    #[arg(long)]
    name: String,
    /// The endpoint (source IMAP server) to read from.
    #[arg(long)]
    endpoint: String,
    /// The batch file: EmailAddress,UserName,Password[,UserRoot][,TargetUserName], one row per mailbox.
    #[arg(long)]
    csv: PathBuf,
    /// Copy only folders matching this pattern (repeatable; default: every mail folder).
    #[arg(long = "include-folder", value_name = "PATTERN")]
    include_folders: Vec<String>,
    /// Leave folders matching this pattern behind (repeatable).
    #[arg(long = "exclude-folder", value_name = "PATTERN")]
    exclude_folders: Vec<String>,
    /// Also copy the folders of another namespace than the user's own (repeatable):
    /// `shared` (shared or public folders, staged under `Shared/`) or `other` (other users'
    /// folders shared with the user, under `Other Users/`). By default only the user's own.
    #[arg(long = "include-namespace", value_name = "shared|other", value_parser = parse_namespace)]
    include_namespaces: Vec<ForeignNamespace>,
    /// Leave messages larger than this behind, recorded as skipped (bytes, or with a unit:
    /// 500KB, 35MB, 35MiB; KB/MB/GB are binary, as in Exchange).
    #[arg(long, default_value = "35MB", value_parser = mailstage::cli::parse_size)]
    max_message_size: u64,
    /// Copy at most this many items per mailbox, the newest first.
    #[arg(long, default_value_t = DEFAULT_MAX_ITEMS, value_parser = clap::value_parser!(u64).range(1..))]
    max_items: u64,
    /// How to log in: auto, login, plain or xoauth2.
    #[arg(long, default_value = "auto")]
    auth: AuthChoice,
    /// Start the first pass right away (New-MigrationBatch -AutoStart).
    #[arg(long)]
    autostart: bool,
    /// Print the new batch as JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `batch status`.
#[derive(Args)]
pub struct StatusArgs {
    /// The batch (default: every batch).
    name: Option<String>,
    /// Add a line per mailbox.
    #[arg(long)]
    users: bool,
    /// Print the status as JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `batch remove`.
#[derive(Args)]
pub struct RemoveArgs {
    /// The batch.
    name: String,
    /// Remove it even though staged messages were never uploaded.
    #[arg(long)]
    force: bool,
    /// Print what was removed as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs a `batch` subcommand on the stage given (`status` and `report` read several
/// stages as one); returns the exit status.
pub fn run(stages: &[PathBuf], cmd: BatchCommand, out: &mut dyn Write) -> anyhow::Result<u8> {
    let view = match &cmd {
        BatchCommand::Status(_) | BatchCommand::Report(_) => Some(StageView::of(stages)?),
        _ => None,
    };
    let stage_dir = match &view {
        Some(v) => v.dir(),
        None => mailstage::cli::single_stage(stages).map_err(anyhow::Error::msg)?,
    };
    match cmd {
        BatchCommand::New(args) => {
            let autostart = args.autostart.then(|| args.name.clone());
            new_batch(stage_dir, args, out)?;
            match autostart {
                Some(name) => {
                    crate::cmd_pass::start(stage_dir, &crate::cmd_pass::RunArgs::named(name), out)
                }
                None => Ok(0),
            }
        }
        BatchCommand::Status(args) => status(stage_dir, args, out).map(|()| 0),
        BatchCommand::Remove(args) => remove(stage_dir, args, out).map(|()| 0),
        BatchCommand::Start(args) => crate::cmd_pass::start(stage_dir, &args, out),
        BatchCommand::Sync(args) => crate::cmd_pass::sync(stage_dir, &args, out),
        BatchCommand::Plan(args) => crate::cmd_shards::plan(stage_dir, args, out),
        BatchCommand::Report(args) => {
            let req = ReportRequest {
                batch: args.name,
                target: None,
                all: args.output.all,
            };
            let rendered =
                mailstage::commands::report::report(stage_dir, &req, args.output.format)?;
            Ok(args.output.write(&rendered, out)?)
        }
        BatchCommand::ApproveSkipped(args) => {
            let a = mailstage::commands::approve_skipped::approve_skipped(stage_dir, &args.name)?;
            if args.json {
                print_json(out, &a)?;
            } else {
                writeln!(out, "batch {:?}: approved {}", a.batch, a.detail)?;
            }
            Ok(0)
        }
    }
}

fn new_batch(stage_dir: &Path, a: NewBatchArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let settings = BatchSettings {
        auth: a.auth,
        include_folders: a.include_folders,
        exclude_folders: a.exclude_folders,
        include_namespaces: a.include_namespaces,
        max_message_size: a.max_message_size,
        max_items: a.max_items,
        ..BatchSettings::new(&a.name, &a.endpoint)
    };
    let info = mailstage::commands::new_batch::new_batch(stage_dir, &a.csv, settings)?;
    if a.json {
        return Ok(print_json(out, &info)?);
    }
    writeln!(
        out,
        "batch {:?} created with {} mailbox(es); start it with: mailstage-extract batch start {}\n",
        a.name, info.mailboxes, a.name
    )?;
    write_list(out, &settings_list(&info))?;
    writeln!(
        out,
        "\nPasswords are not stored: each run reads them from the CSV, so keep it at that path."
    )?;
    Ok(())
}

/// A batch's settings and state as `Key : value` lines.
fn settings_list(b: &BatchInfo) -> Vec<(&'static str, String)> {
    let s = &b.settings;
    let patterns = |p: &[String], none: &str| {
        if p.is_empty() {
            none.to_owned()
        } else {
            p.join(", ")
        }
    };
    vec![
        ("Identity", s.name.clone()),
        ("Status", b.state.to_string()),
        ("SourceEndpoint", s.endpoint.clone()),
        (
            "CsvFile",
            s.csv_path
                .as_ref()
                .map_or("-".into(), |p| p.display().to_string()),
        ),
        ("Auth", s.auth.as_str().into()),
        (
            "MaxMessageSize",
            format!(
                "{} bytes ({})",
                grouped(s.max_message_size),
                human_bytes(s.max_message_size)
            ),
        ),
        ("MaxItems", grouped(s.max_items)),
        ("IncludeFolders", patterns(&s.include_folders, "(all)")),
        ("ExcludeFolders", patterns(&s.exclude_folders, "(none)")),
        ("Namespaces", namespaces(&s.include_namespaces)),
        ("Created", b.created_at.clone()),
        ("LastSync", b.last_sync_at.clone().unwrap_or("never".into())),
        ("Mailboxes", grouped(b.mailboxes)),
    ]
}

fn status(stage_dir: &Path, a: StatusArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let stage = Stage::open(stage_dir, Access::Read)?;
    let index = stage.index();
    let Some(name) = a.name else {
        let all = index.batch_statuses()?;
        if a.json {
            return Ok(print_json(out, &all)?);
        }
        if all.is_empty() {
            writeln!(
                out,
                "no batches in this stage (create one with: mailstage-extract batch new)"
            )?;
            return Ok(());
        }
        batches_table(&all).write(out)?;
        if a.users {
            for s in &all {
                writeln!(out, "\nbatch {}:", s.batch.settings.name)?;
                users_table(s).write(out)?;
            }
        }
        return Ok(());
    };
    let s = index.batch_status(&name)?;
    if a.json {
        return Ok(print_json(out, &s)?);
    }
    let t = &s.totals;
    let c = &t.counts;
    let states: Vec<String> = t
        .mailbox_states
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(state, n)| format!("{state} {n}"))
        .collect();
    let mut items = settings_list(&s.batch);
    items.pop(); // "Mailboxes" again, with the states this time
    items.extend([
        (
            "Mailboxes",
            format!("{} ({})", grouped(t.mailboxes), states.join(", ")),
        ),
        ("Folders", folders_line(c)),
        (
            "ItemsStaged",
            format!("{} ({})", grouped(c.staged), human_bytes(c.staged_bytes)),
        ),
        (
            "ItemsSkipped",
            format!(
                "{} ({} over the size cap, {} over the item cap)",
                grouped(c.skipped()),
                grouped(c.skipped_size),
                grouped(c.skipped_item_cap)
            ),
        ),
        ("ItemsFailed", grouped(c.failed)),
        ("SourceDeleted", grouped(c.deleted_on_source)),
    ]);
    write_list(out, &items)?;
    let left_out: Vec<_> = s
        .mailboxes
        .iter()
        .filter(|m| !m.left_out_namespaces.is_empty())
        .collect();
    if !left_out.is_empty() {
        writeln!(
            out,
            "\nleft out (other users' or shared namespaces, not the user's own mail; \
             batch new --include-namespace copies them):"
        )?;
        for m in left_out {
            writeln!(out, "  {}: {}", m.email, m.left_out_namespaces.join(", "))?;
        }
    }
    if a.users {
        writeln!(out)?;
        users_table(&s).write(out)?;
    }
    Ok(())
}

/// `--include-namespace shared|other`.
fn parse_namespace(s: &str) -> Result<ForeignNamespace, String> {
    s.parse()
}

/// The namespaces a batch copies besides the user's own.
fn namespaces(list: &[ForeignNamespace]) -> String {
    let names = list
        .iter()
        .map(|n| format!("{} (under {}/)", n.describe(), n.subtree()));
    std::iter::once("personal".to_owned())
        .chain(names)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The folder count, with those whose server name is not modified UTF-7.
fn folders_line(c: &ItemCounts) -> String {
    match c.folders_not_mutf7 {
        0 => grouped(c.folders),
        n => format!(
            "{} ({} named outside modified UTF-7: read by their bytes, shown as UTF-8)",
            grouped(c.folders),
            grouped(n)
        ),
    }
}

fn batches_table(all: &[BatchStatus]) -> Table {
    let mut t = Table::new(&[
        ("BATCH", Align::Left),
        ("STATE", Align::Left),
        ("ENDPOINT", Align::Left),
        ("MAILBOXES", Align::Right),
        ("SYNCED", Align::Right),
        ("FAILED", Align::Right),
        ("ITEMS STAGED", Align::Right),
        ("BYTES", Align::Right),
        ("SKIPPED", Align::Right),
        ("ITEM ERRORS", Align::Right),
        ("LAST SYNC", Align::Left),
    ]);
    for s in all {
        let (b, t_, c) = (&s.batch, &s.totals, &s.totals.counts);
        let in_state = |state| grouped(t_.mailbox_states.get(&state).copied().unwrap_or(0));
        t.row(vec![
            b.settings.name.clone(),
            b.state.to_string(),
            b.settings.endpoint.clone(),
            grouped(t_.mailboxes),
            in_state(MailboxState::Synced),
            in_state(MailboxState::Failed),
            grouped(c.staged),
            human_bytes(c.staged_bytes),
            grouped(c.skipped()),
            grouped(c.failed),
            or_dash(b.last_sync_at.as_deref()),
        ]);
    }
    t
}

fn users_table(s: &BatchStatus) -> Table {
    let mut t = Table::new(&[
        ("EMAIL", Align::Left),
        ("STATE", Align::Left),
        ("FOLDERS", Align::Right),
        ("STAGED", Align::Right),
        ("BYTES", Align::Right),
        ("SKIP SIZE", Align::Right),
        ("SKIP CAP", Align::Right),
        ("FAILED", Align::Right),
        ("LAST SYNC", Align::Left),
        ("LAST ERROR", Align::Left),
    ]);
    for m in &s.mailboxes {
        let c = &m.counts;
        t.row(vec![
            m.email.clone(),
            m.state.to_string(),
            grouped(c.folders),
            grouped(c.staged),
            human_bytes(c.staged_bytes),
            grouped(c.skipped_size),
            grouped(c.skipped_item_cap),
            grouped(c.failed),
            or_dash(m.last_sync_at.as_deref()),
            or_dash(m.last_error.as_deref()),
        ]);
    }
    t
}

fn remove(stage_dir: &Path, a: RemoveArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut stage = Stage::open(stage_dir, Access::Write)?;
    let removed = stage.index_mut().remove_batch(&a.name, a.force)?;
    let gc = stage
        .gc()
        .context("the batch is removed, but freeing its blobs failed (run gc again)")?;
    if a.json {
        #[derive(Serialize)]
        struct Removal<'a> {
            removed: &'a mailstage::stage::index::RemovedBatch,
            gc: &'a mailstage::stage::GcReport,
        }
        return Ok(print_json(
            out,
            &Removal {
                removed: &removed,
                gc: &gc,
            },
        )?);
    }
    writeln!(
        out,
        "batch {:?} removed: {} mailbox(es), {} folder(s), {} message row(s){}",
        removed.name,
        grouped(removed.mailboxes),
        grouped(removed.folders),
        grouped(removed.messages),
        match removed.not_uploaded {
            0 => String::new(),
            n => format!(" ({} staged but never uploaded, forced)", grouped(n)),
        }
    )?;
    writeln!(
        out,
        "freed {} blob(s), {}; blobs other batches still use were kept",
        grouped(gc.orphan_blobs),
        human_bytes(gc.orphan_bytes)
    )?;
    Ok(())
}

//! The Slurm recipe (`deploy/slurm/mailstage-shard.sbatch`) run for real on a private
//! single-node Slurm ([`mailstage_tests::slurm`]) against a harness Dovecot: a batch planned
//! in 4 shards is staged by an array job, one task is killed mid-extraction and resubmitted
//! alone, and the merged stage equals, message for message, what one machine stages.

mod cli_support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use cli_support::Cli;
use mailstage_tests::Dovecot;
use mailstage_tests::bins;
use mailstage_tests::fault_proxy::{FaultProxy, Faults};
use mailstage_tests::fixtures::message_of_size;
use mailstage_tests::slurm::Slurm;
use mailstage_tests::stage_check::{check_completed, message_rows};

const USERS: usize = 8;
const SHARDS: usize = 4;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/slurm/mailstage-shard.sbatch")
}

fn source() -> Result<Dovecot> {
    let mut b = Dovecot::builder();
    for i in 0..USERS {
        b = b.user(&format!("u{i}"), &format!("pw{i}"));
    }
    let d = b.start()?;
    for i in 0..USERS {
        for k in 0..10 {
            let body = message_of_size(60_000, (i * 100 + k) as u64);
            d.write_message_at(
                &format!("u{i}"),
                "INBOX",
                &[],
                1_700_000_000 + k as u64,
                &body,
            )?;
        }
    }
    Ok(d)
}

fn rows() -> Vec<String> {
    (0..USERS)
        .map(|i| format!("u{i}@contoso.edu,u{i},pw{i}"))
        .collect()
}

/// Waits until task `job_task` (`JOB_I`) has been running for `after`.
fn running_for(slurm: &Slurm, job: &str, task: usize, after: Duration) -> Result<()> {
    let name = format!("{job}_{task} RUNNING");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !slurm.task_states(job)?.contains(&name) {
        ensure!(
            Instant::now() < deadline,
            "task {task} never ran: {:?}",
            slurm.task_states(job)?
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(after);
    Ok(())
}

#[test]
fn a_slurm_array_stages_the_shards_and_a_killed_task_resubmitted_completes() -> Result<()> {
    let slurm = Slurm::start()?;
    let d = source()?;
    let csv_rows = rows();
    let csv_rows: Vec<&str> = csv_rows.iter().map(String::as_str).collect();

    // One machine, straight from the server.
    let whole = Cli::new();
    whole.endpoint_on("src", d.port());
    whole.batch("b", "src", &csv_rows);
    whole.ok(&["batch", "start", "b", "--quiet"]);
    let expected = check_completed(&whole.stage())?;
    assert_eq!(expected.len(), USERS * 10);

    // The shards read through a slow link (150 kB/s a connection), so a task takes seconds
    // and can be killed part-way.
    let slow = FaultProxy::start(
        d.port(),
        Faults {
            rate: Some(150_000),
            ..Faults::default()
        },
    )?;
    let planner = Cli::new();
    planner.endpoint_on("src", slow.port());
    let csv = planner.batch("b", "src", &csv_rows);
    let shards_dir = planner.stage().with_file_name("shards");
    let shards_arg = shards_dir.to_str().expect("UTF-8");
    let plan = planner.json(&[
        "batch", "plan", "b", "--shards", "4", "--export", shards_arg,
    ]);
    let victim = 1;
    assert!(
        plan["totals"][victim]["mailboxes"].as_u64() > Some(0),
        "every shard has work: {plan}"
    );

    let extract = bins::mailstage_extract();
    let logs = shards_dir.join("task-%a.log");
    let csv_arg = csv.to_str().expect("UTF-8");
    let script_args = ["start", "b", shards_arg, "--csv", csv_arg];
    let submit = |array: &str| {
        slurm.submit(
            &[
                &format!("--array={array}"),
                &format!("--output={}", logs.display()),
            ],
            // The job script finds the binary under test through MAILSTAGE_EXTRACT.
            &[("MAILSTAGE_EXTRACT", extract.to_str().expect("UTF-8"))],
            &script(),
            &script_args,
        )
    };
    let job = submit(&format!("0-{}", SHARDS - 1))?;
    running_for(&slurm, &job, victim, Duration::from_millis(1500))?;
    let killed = slurm.client(
        "scancel",
        &["--signal=KILL", "--full", &format!("{job}_{victim}")],
    )?;
    assert!(killed.status.success(), "{killed:?}");
    let states = slurm.wait(&job, Duration::from_secs(180))?;
    let victim_state = format!("{job}_{victim} ");
    for s in &states {
        if s.starts_with(&victim_state) {
            assert!(
                !s.ends_with("COMPLETED"),
                "the victim was killed: {states:?}"
            );
        } else {
            assert!(s.ends_with("COMPLETED"), "{states:?}\n{}", slurm.logs());
        }
    }
    let victim_stage = shards_dir.join(format!("shard-{victim}"));
    let planned = plan["totals"][victim]["messages"].as_u64().unwrap_or(0) as usize;
    let staged_before = message_rows(&victim_stage)?.len();
    assert!(
        staged_before < planned,
        "killed part-way: {staged_before} of {planned} staged"
    );

    // Resubmitted alone (SLURM_ARRAY_TASK_COUNT is then 1; the count comes from the plan).
    let again = submit(&victim.to_string())?;
    let states = slurm.wait(&again, Duration::from_secs(180))?;
    assert_eq!(
        states,
        vec![format!("{again}_{victim} COMPLETED")],
        "{}",
        slurm.logs()
    );

    let merged = planner.stage().with_file_name("merged");
    let mut args = vec!["stage", "merge", "--into", merged.to_str().expect("UTF-8")];
    let stages: Vec<String> = (0..SHARDS)
        .map(|i| shards_dir.join(format!("shard-{i}")).display().to_string())
        .collect();
    args.extend(stages.iter().map(String::as_str));
    let out = std::process::Command::new(&extract)
        .env_remove("MAILSTAGE_DIR")
        .args(&args)
        .output()?;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        check_completed(&merged)?,
        expected,
        "every message once, as one machine stages them"
    );
    Ok(())
}

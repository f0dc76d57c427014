//! The Kubernetes recipe (`deploy/kubernetes/`), checked as far as this machine allows: no
//! cluster runs here and no image can be pulled, so the manifests are validated offline
//! against the Kubernetes API schemas (`kubernetes-validate --strict`), the Job's shape and
//! secret handling are asserted, the Dockerfile's build command is run with the same flags
//! (in the test profile), and the image's entry point (the shard script) is run as an
//! Indexed Job runs it, with `JOB_COMPLETION_INDEX`, against a harness Dovecot.

mod cli_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, ensure};
use cli_support::{Cli, text};
use mailstage_tests::Dovecot;
use mailstage_tests::bins;
use mailstage_tests::fixtures::simple;
use mailstage_tests::stage_check::check_completed;
use serde_json::Value;

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// The YAML documents of a file, as JSON (PyYAML, which kubernetes-validate brings).
fn yaml(path: &Path) -> Result<Vec<Value>> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys, json, yaml; json.dump(list(yaml.safe_load_all(open(sys.argv[1]))), sys.stdout)",
        ])
        .arg(path)
        .output()
        .context("python3 runs")?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

#[test]
fn the_manifests_pass_the_kubernetes_schemas_and_keep_secrets_out() -> Result<()> {
    let dir = deploy().join("kubernetes");
    let manifests: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    ensure!(manifests.len() >= 2, "{manifests:?}");
    let checked = Command::new("kubernetes-validate")
        .args(["--strict", "--quiet"])
        .args(&manifests)
        .output()
        .context("kubernetes-validate (scripts/setup.sh installs it)")?;
    assert!(checked.status.success(), "{checked:?}");

    let job = &yaml(&dir.join("job-start.yaml"))?[0];
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    assert_eq!(
        spec["completions"], spec["parallelism"],
        "one pod per shard"
    );
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    let container = &pod["containers"][0];
    let args: Vec<&str> = container["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(args[0], "start");
    assert!(args.contains(&"/secrets/batch.csv"), "{args:?}");
    for env in container["env"].as_array().expect("env") {
        assert!(
            env.get("value").is_none() && env["valueFrom"]["secretKeyRef"].is_object(),
            "secrets come from a Secret, never from the manifest: {env}"
        );
    }
    let secret = pod["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .find(|v| v["secret"].is_object())
        .expect("a Secret volume");
    let mount = container["volumeMounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .find(|m| m["name"] == secret["name"])
        .expect("the Secret is mounted");
    assert_eq!(mount["readOnly"], true);
    Ok(())
}

#[test]
fn the_dockerfile_builds_the_binaries_with_its_own_command() -> Result<()> {
    let dockerfile = std::fs::read_to_string(deploy().join("kubernetes/Dockerfile"))?;
    let build = dockerfile
        .lines()
        .find_map(|l| l.trim().strip_prefix("RUN cargo build"))
        .expect("a RUN cargo build line");
    let flags: Vec<&str> = build.split_whitespace().collect();
    assert!(
        flags.contains(&"--locked") && flags.contains(&"--release"),
        "{flags:?}"
    );
    // The same flags, from the workspace root as in the image, but the profile: the test's.
    let mut args = vec!["build", "--quiet"];
    args.extend(flags.iter().filter(|f| **f != "--release"));
    let status = bins::cargo(&args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .status()?;
    assert!(status.success(), "cargo {args:?}");
    for bin in ["mailstage-extract", "mailstage-upload"] {
        assert!(build.contains(bin), "the image builds {bin}");
        assert!(dockerfile.contains(&format!("target/release/{bin}")));
    }
    // No secret or CSV is copied into the image; its entry point is the shard script.
    for l in dockerfile.lines().filter(|l| l.starts_with("COPY")) {
        assert!(
            !l.contains(".csv") && !l.to_lowercase().contains("secret"),
            "{l}"
        );
    }
    let entry = "COPY deploy/slurm/mailstage-shard.sbatch /usr/local/bin/mailstage-shard";
    assert!(dockerfile.contains(entry));
    assert!(deploy().join("slurm/mailstage-shard.sbatch").is_file());
    Ok(())
}

#[test]
fn the_image_entry_point_runs_a_shard_by_its_job_completion_index() -> Result<()> {
    let d = Dovecot::builder()
        .user("u0", "pw0")
        .user("u1", "pw1")
        .user("u2", "pw2")
        .start()?;
    for (i, user) in ["u0", "u1", "u2"].iter().enumerate() {
        d.write_message_at(user, "INBOX", &[], 1_700_000_000, &simple(i as u64))?;
    }
    let cli = Cli::new();
    cli.endpoint_on("src", d.port());
    let csv = cli.batch(
        "b",
        "src",
        &["u0@x.edu,u0,pw0", "u1@x.edu,u1,pw1", "u2@x.edu,u2,pw2"],
    );
    let stages = cli.stage().with_file_name("stages");
    let stages_arg = stages.to_str().expect("UTF-8");
    cli.ok(&[
        "batch",
        "plan",
        "b",
        "--shards",
        "2",
        "--no-sizes",
        "--export",
        stages_arg,
    ]);
    let extract = bins::mailstage_extract();
    for index in ["0", "1"] {
        // As the pod runs it: the entry point with the Job's args and JOB_COMPLETION_INDEX.
        let out = Command::new(deploy().join("slurm/mailstage-shard.sbatch"))
            .args([
                "start",
                "b",
                stages_arg,
                "--csv",
                csv.to_str().expect("UTF-8"),
            ])
            .env_remove("SLURM_ARRAY_TASK_ID")
            .env("JOB_COMPLETION_INDEX", index)
            .env("MAILSTAGE_EXTRACT", &extract)
            .output()?;
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    }
    let merged = cli.stage().with_file_name("merged");
    let out = Command::new(&extract)
        .args(["stage", "merge", "--into"])
        .arg(&merged)
        .arg(stages.join("shard-0"))
        .arg(stages.join("shard-1"))
        .output()?;
    assert!(out.status.success(), "{}", text(&out));
    let rows = check_completed(&merged)?;
    let mut mailboxes: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    mailboxes.dedup();
    assert_eq!(mailboxes, ["u0@x.edu", "u1@x.edu", "u2@x.edu"]);
    assert_eq!(rows.len(), 3);
    Ok(())
}

//! A private single-node Slurm for tests: munged, slurmctld and slurmd (Debian's packages,
//! `scripts/setup.sh` installs them) with a configuration, state, spool, logs and munge key
//! in a temporary directory, on free loopback ports. Nothing under /etc is read: every
//! daemon and client gets `SLURM_CONF`. Dropping it stops the three daemons it started.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use crate::process::{free_port, stop_group};

/// The programs a private Slurm needs.
const PROGRAMS: [&str; 5] = [
    "/usr/sbin/munged",
    "/usr/sbin/mungekey",
    "/usr/sbin/slurmctld",
    "/usr/sbin/slurmd",
    "/usr/bin/sbatch",
];

/// A running single-node Slurm.
pub struct Slurm {
    dir: tempfile::TempDir,
    daemons: Vec<Child>,
}

/// Whether Slurm and munge are installed (run `scripts/setup.sh`).
pub fn installed() -> bool {
    PROGRAMS.iter().all(|p| Path::new(p).is_file())
}

impl Slurm {
    /// Starts munged, slurmctld and slurmd (as root, which Slurm's `SlurmUser=root` and
    /// slurmd need) and waits until the node is idle.
    pub fn start() -> Result<Self> {
        ensure!(installed(), "Slurm is not installed: run scripts/setup.sh");
        ensure!(crate::process::is_root(), "a private Slurm needs root");
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        for sub in ["munge", "state", "spool", "log"] {
            std::fs::create_dir_all(d.join(sub))?;
        }
        // munged refuses a socket directory others cannot search.
        std::fs::set_permissions(
            d.join("munge"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )?;
        let key = d.join("munge.key");
        let made = Command::new("/usr/sbin/mungekey")
            .arg("-c")
            .arg("-k")
            .arg(&key)
            .output()?;
        ensure!(made.status.success(), "mungekey: {made:?}");
        let mut slurm = Self {
            dir,
            daemons: Vec::new(),
        };
        let d = slurm.dir.path().to_path_buf();
        let socket = d.join("munge/munge.socket");
        slurm.spawn(
            Command::new("/usr/sbin/munged")
                .arg("-F")
                .arg(format!("--key-file={}", key.display()))
                .arg(format!("--socket={}", socket.display()))
                .arg(format!("--pid-file={}", d.join("munge.pid").display()))
                .arg(format!("--seed-file={}", d.join("munge.seed").display()))
                .arg(format!("--log-file={}", d.join("log/munge.log").display())),
            "munged",
        )?;
        wait_for(|| socket.exists(), "munged's socket", || slurm.logs())?;
        std::fs::write(slurm.conf(), config(&d, &socket)?)?;
        slurm.spawn(Command::new("/usr/sbin/slurmctld").arg("-D"), "slurmctld")?;
        slurm.spawn(
            Command::new("/usr/sbin/slurmd").args(["-D", "-N", "localhost"]),
            "slurmd",
        )?;
        wait_for(
            || {
                slurm
                    .client("sinfo", &["-h", "-o", "%t"])
                    .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "idle")
            },
            "the node to be idle",
            || slurm.logs(),
        )?;
        Ok(slurm)
    }

    /// The configuration file every client needs as `SLURM_CONF`.
    pub fn conf(&self) -> PathBuf {
        self.dir.path().join("slurm.conf")
    }

    /// A Slurm client command (`sbatch`, `squeue`, `scancel` …) for this cluster.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("SLURM_CONF", self.conf());
        cmd
    }

    /// Runs a client command and returns its output (whatever its status).
    pub fn client(&self, program: &str, args: &[&str]) -> Result<Output> {
        self.command(program)
            .args(args)
            .output()
            .with_context(|| format!("running {program}"))
    }

    /// Submits `script` with `sbatch_args` (e.g. `--array=0-3`) and `script_args`; the
    /// tasks get this process's environment and `env`. Returns the job id.
    pub fn submit(
        &self,
        sbatch_args: &[&str],
        env: &[(&str, &str)],
        script: &Path,
        script_args: &[&str],
    ) -> Result<String> {
        let out = self
            .command("sbatch")
            .envs(env.iter().copied())
            .arg("--parsable")
            .args(sbatch_args)
            .arg(script)
            .args(script_args)
            .output()?;
        ensure!(
            out.status.success(),
            "sbatch failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// The states of a job's tasks, e.g. `["1_0 COMPLETED", "1_1 RUNNING"]` (`squeue -t all`).
    pub fn task_states(&self, job: &str) -> Result<Vec<String>> {
        let out = self.client("squeue", &["-h", "-t", "all", "-j", job, "-o", "%i %T"])?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect())
    }

    /// Waits until no task of `job` is pending, running or completing; returns their final
    /// states.
    pub fn wait(&self, job: &str, timeout: Duration) -> Result<Vec<String>> {
        let deadline = Instant::now() + timeout;
        loop {
            let states = self.task_states(job)?;
            let busy = states.iter().any(|s| {
                ["PENDING", "RUNNING", "COMPLETING", "CONFIGURING"]
                    .iter()
                    .any(|b| s.ends_with(b))
            });
            if !busy && !states.is_empty() {
                return Ok(states);
            }
            if Instant::now() > deadline {
                bail!(
                    "job {job} still busy after {timeout:?}: {states:?}\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The daemons' logs, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for name in ["munge.log", "slurmctld.log", "slurmd.log"] {
            let text =
                std::fs::read_to_string(self.dir.path().join("log").join(name)).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            out.push_str(&format!("--- {name}\n"));
            for line in tail.into_iter().rev() {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    fn spawn(&mut self, cmd: &mut Command, what: &str) -> Result<()> {
        let child = cmd
            .env("SLURM_CONF", self.conf())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {what}"))?;
        self.daemons.push(child);
        Ok(())
    }
}

impl Drop for Slurm {
    fn drop(&mut self) {
        // slurmd first (it runs the tasks), munged last (the others talk through it).
        for child in self.daemons.iter_mut().rev() {
            stop_group(child);
        }
    }
}

/// The private configuration: this host as controller and only node, with the CPUs and
/// memory `slurmd -C` reports.
fn config(d: &Path, socket: &Path) -> Result<String> {
    let detected = Command::new("/usr/sbin/slurmd").arg("-C").output()?;
    let line = String::from_utf8_lossy(&detected.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    let node: Vec<&str> = line
        .split_whitespace()
        .filter(|f| !f.starts_with("NodeName=") && !f.starts_with("RealMemory="))
        .collect();
    let (ctld, slurmd) = (free_port()?, free_port()?);
    let p = |name: &str| d.join(name).display().to_string();
    Ok(format!(
        "ClusterName=mailstage\n\
         SlurmctldHost=localhost\n\
         SlurmUser=root\n\
         AuthType=auth/munge\n\
         AuthInfo=socket={socket}\n\
         SlurmctldPort={ctld}\n\
         SlurmdPort={slurmd}\n\
         StateSaveLocation={state}\n\
         SlurmdSpoolDir={spool}\n\
         SlurmctldPidFile={ctld_pid}\n\
         SlurmdPidFile={d_pid}\n\
         SlurmctldLogFile={ctld_log}\n\
         SlurmdLogFile={d_log}\n\
         MailProg=/bin/true\n\
         ProctrackType=proctrack/linuxproc\n\
         TaskPlugin=task/none\n\
         JobAcctGatherType=jobacct_gather/none\n\
         AccountingStorageType=accounting_storage/none\n\
         JobCompType=jobcomp/filetxt\n\
         JobCompLoc={jobcomp}\n\
         SelectType=select/cons_tres\n\
         SelectTypeParameters=CR_Core\n\
         ReturnToService=2\n\
         MinJobAge=3600\n\
         NodeName=localhost {node} RealMemory=1000\n\
         PartitionName=main Nodes=localhost Default=YES MaxTime=INFINITE State=UP\n",
        socket = socket.display(),
        state = p("state"),
        spool = p("spool"),
        ctld_pid = p("slurmctld.pid"),
        d_pid = p("slurmd.pid"),
        ctld_log = p("log/slurmctld.log"),
        d_log = p("log/slurmd.log"),
        jobcomp = p("log/jobcomp.txt"),
        node = node.join(" "),
    ))
}

/// Polls `ready` every 50 ms for up to 20 s.
fn wait_for(ready: impl Fn() -> bool, what: &str, logs: impl Fn() -> String) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready() {
        if Instant::now() > deadline {
            bail!("waiting for {what}:\n{}", logs());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

//! Invariants 1 and 2 under SIGKILL: a child process writes blobs and rows exactly as the
//! extractor does and is killed at random instants; after each kill the stage must have no
//! row naming a missing or damaged blob, and a re-run must finish with every message staged
//! once with the right bytes.
//!
//! SIGKILL tests process crashes (the page cache survives); power-loss durability rests on
//! the write order (fsync blob, rename, fsync directory, then commit with synchronous=FULL).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mailstage::stage::verify::verify;
use mailstage::stage::{Access, BlobHash, Stage};
use mailstage_tests::workload::{UIDVALIDITY, message_bytes};

const MESSAGES: u32 = 300;
const TRIALS: u32 = 40;

/// xorshift64*, seeded from the clock; the seed is printed so a failure can be replayed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn workload(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stage-workload"));
    cmd.arg(dir)
        .arg(MESSAGES.to_string())
        .stderr(Stdio::piped());
    cmd
}

/// Invariant 1 and "no duplicates": every staged row names an intact blob with its UID's bytes.
fn check_invariants(dir: &Path, context: &str) -> usize {
    if !dir.join("index.sqlite").exists() {
        return 0; // killed before the index was created: nothing to check yet
    }
    let stage = Stage::open(dir, Access::Read).unwrap_or_else(|e| panic!("{context}: reopen: {e}"));
    let report = verify(&stage).unwrap();
    assert!(
        report.damaged.is_empty(),
        "{context}: {}",
        report.render_text()
    );
    let rows = stage.index().staged_messages(None).unwrap();
    let mut uids: Vec<u32> = rows.iter().map(|r| r.origin.uid).collect();
    uids.dedup();
    assert_eq!(uids.len(), rows.len(), "{context}: duplicate rows");
    for r in &rows {
        assert_eq!(r.origin.uidvalidity, UIDVALIDITY);
        assert_eq!(
            r.origin.blob,
            BlobHash::of(&message_bytes(r.origin.uid)),
            "{context}: UID {} has wrong bytes",
            r.origin.uid
        );
    }
    rows.len()
}

#[test]
fn sigkill_at_random_instants_never_breaks_the_stage() {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("crash test seed {seed}");
    let mut rng = Rng(seed);
    let root = tempfile::tempdir().unwrap();

    // A full uninterrupted run gives the time scale to kill within.
    let reference = root.path().join("reference");
    let started = Instant::now();
    let out = workload(&reference).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let full = started.elapsed();
    assert_eq!(check_invariants(&reference, "reference"), MESSAGES as usize);

    let mut stage_no = 0;
    let mut dir = root.path().join("s0");
    let mut interrupted = 0;
    let mut staged = 0;
    eprintln!("uninterrupted run: {full:?}");
    for trial in 0..TRIALS {
        if trial % 5 == 4 {
            // A fresh stage now and then, so kills also land in schema creation.
            stage_no += 1;
            dir = root.path().join(format!("s{stage_no}"));
            staged = 0;
        }
        // Kill somewhere within the work that is left, so most kills land mid-way.
        let left = full.as_micros() as u64 * (MESSAGES as u64 - staged as u64) / MESSAGES as u64;
        let delay = Duration::from_micros(rng.next() % (left + 1));
        let mut child = workload(&dir).spawn().unwrap();
        std::thread::sleep(delay);
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        let status = child.wait().unwrap();
        if status.code().is_none() {
            interrupted += 1;
        }
        staged = check_invariants(&dir, &format!("seed {seed} trial {trial} after {delay:?}"));
    }
    assert!(
        interrupted >= TRIALS / 2,
        "only {interrupted} of {TRIALS} runs were actually killed mid-way"
    );

    // Every stage, run to completion, equals the reference; gc then leaves it spotless.
    for n in 0..=stage_no {
        let dir = root.path().join(format!("s{n}"));
        let out = workload(&dir).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(check_invariants(&dir, "completed"), MESSAGES as usize);
        let stage = Stage::open(&dir, Access::Write).unwrap();
        stage.gc().unwrap();
        let report = verify(&stage).unwrap();
        assert!(report.is_clean(), "{}", report.render_text());
        assert_eq!(
            report.blobs_checked,
            u64::from(MESSAGES - MESSAGES / 5),
            "duplicates stored once"
        );
    }
}

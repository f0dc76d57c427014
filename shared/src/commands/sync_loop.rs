//! `batch sync B --every X`: incremental passes on a schedule that outlives outages.
//!
//! A cycle that fails (the source unreachable, a login refused, a mailbox failing, the stage
//! busy) is logged and recorded in the events, then retried sooner, with a doubling backoff
//! that never goes past the next scheduled cycle; a cycle that succeeds waits for the next
//! tick. Ticks are `start + k × every`: retries and long cycles do not shift them. Only a
//! signal (SIGINT or SIGTERM) or `--max-failed-cycles N` failed cycles in a row end the loop;
//! the exit status is then the last cycle's. One loop per batch: a lock file
//! (`STAGE/sync-<batch>.lock`) refuses a second `--every` on the same batch while one runs.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read as _, Seek as _, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::error::{CommandError, Result};
use crate::stage::{Access, Stage, StageError, safe_component};

/// How often the loop looks at the stop flag while it waits.
const TICK: Duration = Duration::from_millis(100);

/// What one cycle came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CycleReport {
    /// The pass's exit status (0 all done, 2 done with skips or errors, 1 failed).
    pub code: u8,
    /// Mailboxes whose pass failed.
    pub failed_mailboxes: usize,
}

/// The loop's settings.
#[derive(Clone, Copy, Debug)]
pub struct LoopSettings {
    /// The interval between scheduled cycles.
    pub every: Duration,
    /// Stop after this many failed cycles in a row (never when `None`).
    pub max_failed_cycles: Option<u32>,
}

impl LoopSettings {
    /// The first wait after a failed cycle: a sixteenth of the interval, between 1 s and
    /// 5 min; it doubles with each failed cycle in a row.
    fn first_retry(&self) -> Duration {
        (self.every / 16).clamp(Duration::from_secs(1), Duration::from_secs(300))
    }

    /// When the next cycle starts, after one that ended at `now` with `failed_in_row`
    /// failed cycles in a row (0 when it succeeded); `tick` is the next scheduled start.
    fn next_start(&self, now: Instant, tick: Instant, failed_in_row: u32) -> Instant {
        if failed_in_row == 0 {
            return tick;
        }
        let doublings = (failed_in_row - 1).min(16);
        let backoff = self.first_retry().saturating_mul(1 << doublings);
        (now + backoff).min(tick)
    }
}

/// The first scheduled start after `now`: `tick` moved on by whole intervals.
fn next_tick(mut tick: Instant, now: Instant, every: Duration) -> Instant {
    while tick <= now {
        tick += every;
    }
    tick
}

/// Where the loop reports a failed cycle and its end (the stage's events).
pub trait Journal {
    /// Records one event of the batch (`kind`, `detail`); a failure to record is logged.
    fn record(&mut self, kind: &str, detail: &str);
}

/// The stage's event log as the loop's journal (opened for each entry: between cycles the
/// loop holds no stage lock, so uploads and status run meanwhile).
pub struct StageJournal<'a> {
    stage_dir: &'a Path,
    batch: &'a str,
}

impl<'a> StageJournal<'a> {
    /// Events of `batch` in the stage at `stage_dir`.
    pub fn new(stage_dir: &'a Path, batch: &'a str) -> Self {
        Self { stage_dir, batch }
    }
}

impl Journal for StageJournal<'_> {
    fn record(&mut self, kind: &str, detail: &str) {
        let recorded = Stage::open(self.stage_dir, Access::Write).and_then(|stage| {
            stage
                .index()
                .record_event(Some(self.batch), None, kind, detail)
        });
        if let Err(e) = recorded {
            tracing::warn!("recording {kind} in the stage's events: {e}");
        }
    }
}

/// Runs `cycle` on the schedule until a signal sets `stop`, or until
/// `max_failed_cycles` failed in a row; returns the last cycle's exit status.
pub fn run_loop(
    settings: LoopSettings,
    stop: &AtomicBool,
    out: &mut dyn Write,
    journal: &mut dyn Journal,
    mut cycle: impl FnMut(&mut dyn Write) -> Result<CycleReport>,
) -> Result<u8> {
    let every = settings.every;
    let mut tick = Instant::now();
    let mut failed_in_row = 0u32;
    let mut cycles = 0u64;
    loop {
        cycles += 1;
        let result = cycle(out);
        tick = next_tick(tick, Instant::now(), every);
        let (code, failure) = match result {
            Ok(r) if r.failed_mailboxes == 0 => (r.code, None),
            Ok(r) => (
                r.code,
                Some(format!("{} mailbox(es) failed", r.failed_mailboxes)),
            ),
            Err(e) if is_fatal(&e) => return Err(e),
            Err(e) => (1, Some(chain(&e))),
        };
        let why_stop = match &failure {
            None => {
                failed_in_row = 0;
                None
            }
            Some(why) => {
                failed_in_row += 1;
                let limit = settings.max_failed_cycles;
                let give_up = limit.is_some_and(|n| failed_in_row >= n);
                let detail = format!("cycle {cycles} failed ({failed_in_row} in a row): {why}");
                tracing::warn!("{detail}");
                writeln!(out, "sync cycle {cycles} failed: {why}").map_err(CommandError::Output)?;
                journal.record("sync.cycle_failed", &detail);
                give_up.then(|| format!("{failed_in_row} failed cycles in a row"))
            }
        };
        let why_stop = why_stop.or_else(|| signalled(stop));
        if let Some(why) = why_stop {
            return stopped(out, journal, &why, cycles, code).map_err(CommandError::Output);
        }
        let start = settings.next_start(Instant::now(), tick, failed_in_row);
        let wait = start.saturating_duration_since(Instant::now());
        let next = if failed_in_row > 0 {
            "retrying in"
        } else {
            "next sync in"
        };
        writeln!(out, "{next} {}", show_wait(wait)).map_err(CommandError::Output)?;
        out.flush().map_err(CommandError::Output)?;
        if !sleep_until(start, stop) {
            let why = signalled(stop).unwrap_or_default();
            return stopped(out, journal, &why, cycles, code).map_err(CommandError::Output);
        }
    }
}

/// Errors no retry can mend: the batch is gone from the index.
fn is_fatal(e: &CommandError) -> bool {
    matches!(e, CommandError::Stage(StageError::NotFound { .. }))
}

/// An error with its causes, as one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

fn signalled(stop: &AtomicBool) -> Option<String> {
    stop.load(Ordering::SeqCst)
        .then(|| "stopped by a signal".to_owned())
}

fn stopped(
    out: &mut dyn Write,
    journal: &mut dyn Journal,
    why: &str,
    cycles: u64,
    code: u8,
) -> std::io::Result<u8> {
    let detail = format!("{why} after {cycles} cycle(s); the last one's exit status: {code}");
    journal.record("sync.loop_stopped", &detail);
    writeln!(out, "sync loop {detail}")?;
    Ok(code)
}

/// Sleeps until `start`; false when `stop` was set first.
fn sleep_until(start: Instant, stop: &AtomicBool) -> bool {
    loop {
        if stop.load(Ordering::SeqCst) {
            return false;
        }
        let left = start.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(TICK));
    }
}

fn show_wait(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 60.0 {
        format!("{s:.1}s")
    } else if s < 3600.0 {
        format!("{:.1}m", s / 60.0)
    } else {
        format!("{:.1}h", s / 3600.0)
    }
}

/// A flag that SIGINT and SIGTERM set; a second signal ends the process at once (the stage
/// survives a kill at any instant, so that is safe).
pub fn stop_on_signals() -> Result<Arc<AtomicBool>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM] {
        // The order matters: the exit is armed only once the flag is already set.
        let installed = signal_hook::flag::register_conditional_shutdown(signal, 1, stop.clone())
            .and_then(|_| signal_hook::flag::register(signal, stop.clone()));
        installed.map_err(|source| CommandError::File {
            action: "installing a signal handler for",
            path: "the sync loop".into(),
            source,
        })?;
    }
    Ok(stop)
}

/// The lock that makes one `--every` loop per batch: held for as long as the value lives.
#[derive(Debug)]
pub struct LoopLock {
    _file: File,
}

impl LoopLock {
    /// Takes `STAGE/sync-<batch>.lock` (the batch name escaped into one file name) or says
    /// which process holds it.
    pub fn acquire(stage_dir: &Path, batch: &str) -> Result<Self> {
        let path = lock_path(stage_dir, batch);
        let failed = |action: &'static str| {
            let path = path.clone();
            move |source| CommandError::File {
                action,
                path,
                source,
            }
        };
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(failed("opening"))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                return Err(CommandError::Refused(format!(
                    "batch {batch:?} is already synced on a schedule by another `batch sync --every` ({}); \
                     stop that one first (SIGINT or SIGTERM), or run `batch sync {batch}` once without --every",
                    holder.trim()
                )));
            }
            Err(TryLockError::Error(e)) => return Err(failed("locking")(e)),
        }
        file.set_len(0).map_err(failed("writing"))?;
        file.rewind().map_err(failed("writing"))?;
        write!(file, "pid {}", std::process::id()).map_err(failed("writing"))?;
        Ok(Self { _file: file })
    }
}

fn lock_path(stage_dir: &Path, batch: &str) -> PathBuf {
    stage_dir.join(format!("sync-{}.lock", safe_component(batch)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    #[derive(Default)]
    struct Events(Vec<(String, String)>);

    impl Journal for Events {
        fn record(&mut self, kind: &str, detail: &str) {
            self.0.push((kind.into(), detail.into()));
        }
    }

    fn ok(code: u8) -> Result<CycleReport> {
        Ok(CycleReport {
            code,
            failed_mailboxes: 0,
        })
    }

    #[test]
    fn a_failed_cycle_is_retried_sooner_but_never_past_the_next_tick() {
        let s = LoopSettings {
            every: Duration::from_secs(160),
            max_failed_cycles: None,
        };
        let now = Instant::now();
        let tick = now + Duration::from_secs(100);
        assert_eq!(
            s.next_start(now, tick, 0),
            tick,
            "success keeps the schedule"
        );
        let waits: Vec<u64> = (1..=5)
            .map(|n| (s.next_start(now, tick, n) - now).as_secs())
            .collect();
        assert_eq!(waits, [10, 20, 40, 80, 100]);
        let day = LoopSettings {
            every: Duration::from_secs(86_400),
            max_failed_cycles: None,
        };
        assert_eq!(day.first_retry(), Duration::from_secs(300));
        assert_eq!(
            next_tick(now, now + Duration::from_secs(350), s.every),
            now + Duration::from_secs(480),
            "a long cycle skips the ticks it overran"
        );
    }

    #[test]
    fn the_loop_rides_out_failures_until_the_limit_and_exits_with_the_last_status() {
        let s = LoopSettings {
            every: Duration::from_millis(50),
            max_failed_cycles: Some(3),
        };
        let stop = AtomicBool::new(false);
        let mut script: VecDeque<Result<CycleReport>> = VecDeque::from([
            ok(0),
            Err(CommandError::Refused(
                "cannot reach the source server".into(),
            )),
            Ok(CycleReport {
                code: 2,
                failed_mailboxes: 1,
            }),
            ok(2),
            Err(CommandError::Refused("down".into())),
            Err(CommandError::Refused("down".into())),
            Err(CommandError::Refused("still down".into())),
        ]);
        let (mut out, mut events) = (Vec::new(), Events::default());
        let code = run_loop(s, &stop, &mut out, &mut events, |_| {
            script.pop_front().expect("the loop stops in time")
        })
        .unwrap();
        assert_eq!(code, 1);
        assert!(script.is_empty());
        let kinds: Vec<&str> = events.0.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "sync.cycle_failed",
                "sync.cycle_failed",
                "sync.cycle_failed",
                "sync.cycle_failed",
                "sync.cycle_failed",
                "sync.loop_stopped"
            ]
        );
        assert!(events.0[0].1.contains("cannot reach the source server"));
        assert!(events.0[1].1.contains("1 mailbox(es) failed"));
        assert!(
            events.0[5]
                .1
                .contains("3 failed cycles in a row after 7 cycle(s)")
        );
    }

    #[test]
    fn a_signal_ends_the_wait_at_once_with_the_last_cycles_status() {
        let s = LoopSettings {
            every: Duration::from_secs(3600),
            max_failed_cycles: None,
        };
        let stop = AtomicBool::new(false);
        let (mut out, mut events) = (Vec::new(), Events::default());
        let started = Instant::now();
        let code = std::thread::scope(|scope| {
            scope.spawn(|| {
                std::thread::sleep(Duration::from_millis(300));
                stop.store(true, Ordering::SeqCst);
            });
            run_loop(s, &stop, &mut out, &mut events, |_| ok(2)).unwrap()
        });
        assert_eq!(code, 2);
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(events.0.len(), 1);
        assert!(
            events.0[0]
                .1
                .starts_with("stopped by a signal after 1 cycle(s)")
        );
    }

    #[test]
    fn a_second_loop_on_the_same_batch_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let first = LoopLock::acquire(dir.path(), "b1").unwrap();
        let e = LoopLock::acquire(dir.path(), "b1").unwrap_err().to_string();
        assert!(
            e.contains("batch \"b1\" is already synced on a schedule")
                && e.contains(&format!("pid {}", std::process::id())),
            "{e}"
        );
        let _other = LoopLock::acquire(dir.path(), "../b2").unwrap();
        assert!(dir.path().join("sync-%2E%2E%2Fb2.lock").is_file());
        drop(first);
        LoopLock::acquire(dir.path(), "b1").unwrap();
    }
}

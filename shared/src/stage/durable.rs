//! How a group of blobs becomes durable: one `syncfs(2)` of the stage's filesystem for the
//! whole group, or, where that cannot be trusted, an fsync per file and per directory.
//!
//! `syncfs` is chosen on Linux 5.8 and later (the first kernel that reports writeback errors
//! through it: a page that failed to reach the disk since the last call makes it fail) when
//! `blobs/`, `tmp/` and `tmp/partial/` are on one filesystem of a known local kind (ext4, XFS,
//! btrfs, ZFS, F2FS, bcachefs). Anything else (another filesystem mounted under the stage, a
//! network or FUSE filesystem, an older kernel, another OS) keeps the per-file fsyncs.
//! `MAILSTAGE_DURABILITY=fsync` forces them (to compare the two, or to distrust a filesystem).
//!
//! Concurrent groups (several mailboxes at once) share their calls: a caller is served by the
//! first `syncfs` that *starts* after it asked, so N groups waiting together cost one call.
//! A failed call fails every later one of the store: the kernel reports a writeback error
//! once, possibly to another group than the one whose pages were lost, so after it no group
//! can know that its data reached the disk.

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::{Condvar, Mutex};

/// The environment variable that forces per-file fsyncs (`fsync`).
pub const DURABILITY_ENV: &str = "MAILSTAGE_DURABILITY";

/// How [`super::BlobStore::persist`] makes a group durable.
#[derive(Debug)]
pub enum Durability {
    /// One `syncfs(2)` before the renames (the data) and one after (the names).
    Syncfs(FsSync),
    /// An fsync of each file's data, then of each directory a name was added to; the reason
    /// `syncfs` is not used.
    PerFile(String),
}

impl Durability {
    /// Chooses for a stage whose blob and temporary directories are `dirs` (the first one
    /// is kept open: `syncfs` reports errors since that descriptor was opened).
    pub fn choose(dirs: &[&Path]) -> Durability {
        match syncfs_trusted(dirs) {
            Ok(dir) => Durability::Syncfs(FsSync::new(dir)),
            Err(why) => Durability::PerFile(why),
        }
    }

    /// Whether finished blobs must keep their descriptor until their data is fsynced.
    pub fn per_file(&self) -> bool {
        matches!(self, Durability::PerFile(_))
    }

    /// A short description for logs and benchmarks.
    pub fn describe(&self) -> String {
        match self {
            Durability::Syncfs(_) => "one syncfs per group".to_owned(),
            Durability::PerFile(why) => format!("an fsync per file ({why})"),
        }
    }
}

/// Opens the first of `dirs` when `syncfs` can stand in for per-file fsyncs there.
#[cfg(target_os = "linux")]
fn syncfs_trusted(dirs: &[&Path]) -> Result<File, String> {
    use std::os::unix::fs::MetadataExt;
    if std::env::var_os(DURABILITY_ENV).is_some_and(|v| v == "fsync") {
        return Err(format!("{DURABILITY_ENV}=fsync"));
    }
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    if !kernel_reports_syncfs_errors(&release) {
        return Err(format!(
            "kernel {} does not report writeback errors through syncfs (5.8 and later do)",
            release.trim()
        ));
    }
    let first = dirs.first().ok_or("no directory")?;
    let mut dev = None;
    for dir in dirs {
        let d = std::fs::metadata(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .dev();
        if *dev.get_or_insert(d) != d {
            return Err(format!(
                "{} is on another filesystem than {}",
                dir.display(),
                first.display()
            ));
        }
    }
    let file = File::open(first).map_err(|e| format!("{}: {e}", first.display()))?;
    let kind = filesystem_magic(&file).map_err(|e| format!("{}: {e}", first.display()))?;
    if !LOCAL_FILESYSTEMS.contains(&kind) {
        return Err(format!(
            "{} is on a filesystem of kind {kind:#x}, not a known local one",
            first.display()
        ));
    }
    Ok(file)
}

#[cfg(not(target_os = "linux"))]
fn syncfs_trusted(_dirs: &[&Path]) -> Result<File, String> {
    Err("syncfs is Linux's".to_owned())
}

/// `statfs` magic numbers of local filesystems whose `sync_fs` commits data and metadata:
/// ext2/3/4, XFS, btrfs, ZFS, F2FS, bcachefs.
#[cfg(target_os = "linux")]
const LOCAL_FILESYSTEMS: [i64; 6] = [
    0xEF53,
    0x5846_5342,
    0x9123_683E,
    0x2FC1_2FC1,
    0xF2F5_2010,
    0xCA45_1A4E,
];

#[cfg(target_os = "linux")]
fn filesystem_magic(file: &File) -> io::Result<i64> {
    use std::os::fd::AsRawFd;
    // SAFETY: statfs writes into the zeroed struct we own; the descriptor is open.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstatfs(file.as_raw_fd(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    #[allow(clippy::unnecessary_cast)] // f_type's width differs between targets
    Ok(st.f_type as i64)
}

/// Whether a kernel release string (`6.1.0-13-amd64`) is 5.8 or later.
fn kernel_reports_syncfs_errors(release: &str) -> bool {
    let mut parts = release.trim().split(['.', '-']);
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (major, minor) >= (5, 8)
}

/// `syncfs(2)` calls shared by the groups that wait at the same time.
#[derive(Debug)]
pub struct FsSync {
    /// Open for the store's lifetime: syncfs reports the errors since it was opened.
    dir: File,
    clock: Mutex<Clock>,
    turn: Condvar,
}

#[derive(Debug, Default)]
struct Clock {
    /// Calls started, and finished (calls run one at a time, in order).
    started: u64,
    finished: u64,
    running: bool,
    /// The first call that failed: its error, returned to every caller since.
    failed: Option<(io::ErrorKind, String)>,
}

impl FsSync {
    fn new(dir: File) -> Self {
        Self {
            dir,
            clock: Mutex::new(Clock::default()),
            turn: Condvar::new(),
        }
    }

    /// Returns once a `syncfs` that started after this call has finished: everything
    /// written and renamed before the call is durable. Blocking.
    pub fn sync(&self) -> io::Result<()> {
        let mut clock = self.lock();
        let need = clock.started + 1;
        loop {
            if let Some((kind, msg)) = &clock.failed {
                return Err(io::Error::new(
                    *kind,
                    format!(
                        "syncfs of the stage's filesystem failed, written data may be lost: {msg}"
                    ),
                ));
            }
            if clock.finished >= need {
                return Ok(());
            }
            if clock.running {
                clock = self
                    .turn
                    .wait(clock)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                continue;
            }
            clock.running = true;
            clock.started += 1;
            let call = clock.started;
            drop(clock);
            let result = self.syncfs();
            clock = self.lock();
            clock.running = false;
            clock.finished = call;
            if let Err(e) = result {
                clock.failed.get_or_insert((e.kind(), e.to_string()));
            }
            self.turn.notify_all();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Clock> {
        self.clock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    #[cfg(target_os = "linux")]
    fn syncfs(&self) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        // SAFETY: syncfs takes an open descriptor and nothing else.
        if unsafe { libc::syncfs(self.dir.as_raw_fd()) } == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn syncfs(&self) -> io::Result<()> {
        Err(io::Error::other("syncfs is Linux's"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_from_5_8_report_syncfs_errors() {
        assert!(kernel_reports_syncfs_errors("6.18.44-fc-v857\n"));
        assert!(kernel_reports_syncfs_errors("5.8.0"));
        assert!(kernel_reports_syncfs_errors("5.10.0-28-amd64"));
        assert!(!kernel_reports_syncfs_errors("5.4.0-150-generic"));
        assert!(!kernel_reports_syncfs_errors("4.19"));
        assert!(!kernel_reports_syncfs_errors("garbage"));
    }

    #[test]
    fn concurrent_callers_share_calls_and_each_is_served_by_a_later_one() {
        let dir = tempfile::tempdir().unwrap();
        let sync = std::sync::Arc::new(FsSync::new(File::open(dir.path()).unwrap()));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let sync = sync.clone();
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        sync.sync().unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let clock = sync.lock();
        assert!(!clock.running);
        assert_eq!(clock.started, clock.finished);
        assert!(
            clock.started <= 160 && clock.started >= 20,
            "{} calls for 160 requests",
            clock.started
        );
    }
}

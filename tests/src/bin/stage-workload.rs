//! A small, deterministic, restartable write workload on a stage, for the crash test:
//! `stage-workload STAGE_DIR MESSAGES [SIZE]` stages UIDs 1..=MESSAGES of one folder in groups,
//! exactly as the extractor does (stream blobs, persist the group, commit its rows), skipping
//! UIDs already recorded. Killed at any instant and run again, it must end with every UID
//! staged once with the right bytes.

use std::path::PathBuf;
use std::process::ExitCode;

use mailstage_tests::workload::run;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dir), Some(Ok(count))) = (args.get(1), args.get(2).map(|n| n.parse::<u32>())) else {
        eprintln!("usage: stage-workload STAGE_DIR MESSAGES [SIZE]");
        return ExitCode::from(2);
    };
    let size = args.get(3).and_then(|s| s.parse::<usize>().ok());
    match run(&PathBuf::from(dir), count, size) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stage-workload: {e}");
            ExitCode::from(1)
        }
    }
}

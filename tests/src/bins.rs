//! The workspace's binaries for end-to-end tests, which run them as an admin would.
//!
//! Cargo only hands a package the paths of its own binaries, so the first call builds the
//! asked binary with the same cargo and profile, once per test process.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The `target/<profile>` directory this test binary was built into.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary knows its path");
    // target/<profile>/deps/<test-binary>
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("test binaries live in target/<profile>/deps")
        .to_path_buf()
}

/// `cargo ARGS…` with the same cargo as this test and without the variables Cargo set for
/// the running test: left in place they make build scripts that watch them (ring's does)
/// rerun, and the outer and inner builds then rebuild each other. `--release` is added
/// when this test binary is a release build.
pub fn cargo(args: &[&str]) -> Command {
    let release = profile_dir().file_name().is_some_and(|n| n == "release");
    let mut cmd = Command::new(option_env!("CARGO").unwrap_or("cargo"));
    cmd.args(args);
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let per_crate = [
            "CARGO_PKG_",
            "CARGO_BIN_EXE_",
            "CARGO_MANIFEST_",
            "CARGO_CRATE_",
        ]
        .iter()
        .any(|p| key.starts_with(p));
        let per_run = [
            "CARGO_PRIMARY_PACKAGE",
            "CARGO_TARGET_TMPDIR",
            "CARGO_RUSTC_CURRENT_DIR",
            "OUT_DIR",
        ]
        .contains(&key.as_ref());
        if per_crate || per_run {
            cmd.env_remove(key.as_ref());
        }
    }
    if release {
        cmd.arg("--release");
    }
    cmd
}

fn build(package: &str, bin: &str) -> PathBuf {
    let status = cargo(&["build", "--quiet", "-p", package, "--bin", bin])
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building {bin} failed");
    let path = profile_dir().join(bin);
    assert!(path.is_file(), "{} missing after the build", path.display());
    path
}

/// `mailstage-extract`, built on first use.
pub fn mailstage_extract() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| build("mailstage-extract", "mailstage-extract"))
        .clone()
}

/// `mailstage-upload`, built on first use.
pub fn mailstage_upload() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| build("mailstage-upload", "mailstage-upload"))
        .clone()
}

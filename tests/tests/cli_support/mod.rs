//! Runs `mailstage-extract` and `mailstage-upload` as an admin would, on a private stage in a temporary directory.
#![allow(dead_code)] // each test binary uses its own part of this module

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mailstage_tests::bins;
use mailstage_tests::token_endpoint::{CLIENT_ID, TokenEndpoint};

/// The environment variable the tests' `m365-imap` targets read their client secret from.
pub const SECRET_VAR: &str = "MAILSTAGE_TEST_CLIENT_SECRET";

/// A temporary directory holding a stage (`DIR/stage`) and the files the commands read.
pub struct Cli {
    dir: tempfile::TempDir,
}

impl Cli {
    /// A fresh directory; the stage is created by the first command that writes.
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    /// The stage directory.
    pub fn stage(&self) -> PathBuf {
        self.dir.path().join("stage")
    }

    /// Writes `content` to `DIR/name` and returns its path.
    pub fn write(&self, name: &str, content: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, content).expect("write a test file");
        path
    }

    /// `mailstage-extract --stage DIR/stage ARGS…`, to run or spawn.
    pub fn command(&self, args: &[&str]) -> Command {
        self.command_of(&bins::mailstage_extract(), args, &[])
    }

    /// Runs `mailstage-extract --stage DIR/stage ARGS…`.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("mailstage-extract runs")
    }

    /// Runs `mailstage-upload --stage DIR/stage ARGS…` with extra environment variables.
    pub fn upload(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.command_of(&bins::mailstage_upload(), args, env)
            .output()
            .expect("mailstage-upload runs")
    }

    /// Creates IMAP target `name` on a loopback `port` with admin `admin`, whose password
    /// is read from the environment variable `secret_var`; asserts it was created.
    pub fn imap_target(&self, name: &str, port: u16, admin: &str, secret_var: &str) {
        let port = port.to_string();
        let created = self.upload(&imap_target_args(name, &port, admin, secret_var), &[]);
        assert_eq!(created.status.code(), Some(0), "{}", text(&created));
    }

    /// Creates `m365-imap` target `name` for `tenant`: XOAUTH2 without TLS to the IMAP
    /// server on loopback `imap_port` (allowed for a loopback emulator), tokens from
    /// `endpoint`, the client secret read from [`SECRET_VAR`]; asserts it was created.
    pub fn m365_target(&self, name: &str, tenant: &str, imap_port: u16, endpoint: &TokenEndpoint) {
        let (port, login) = (imap_port.to_string(), endpoint.login_base());
        let out = self.upload(
            &[
                "target",
                "new",
                "--name",
                name,
                "--kind",
                "m365-imap",
                "--tenant",
                tenant,
                "--client-id",
                CLIENT_ID,
                "--client-secret-env",
                SECRET_VAR,
                "--imap-host",
                "127.0.0.1",
                "--port",
                &port,
                "--security",
                "none",
                "--login-url",
                &login,
            ],
            &[],
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    }

    fn command_of(&self, binary: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(binary);
        cmd.env_remove("MAILSTAGE_DIR")
            .envs(env.iter().copied())
            .arg("--stage")
            .arg(self.stage())
            .args(args);
        cmd
    }

    /// Runs a command that must succeed; returns its standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}\n{}", text(&out));
        String::from_utf8(out.stdout).expect("UTF-8 output")
    }

    /// Runs a command that must fail with exit status 1; returns its standard error.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}\n{}", text(&out));
        String::from_utf8(out.stderr).expect("UTF-8 errors")
    }

    /// Runs a command with `--json` appended and parses its output.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut args = args.to_vec();
        args.push("--json");
        serde_json::from_str(&self.ok(&args)).expect("valid JSON")
    }

    /// Creates the endpoint `name` (plain IMAP on localhost).
    pub fn endpoint(&self, name: &str) {
        let args = ["endpoint", "new", "--name", name, "--server", "127.0.0.1"];
        self.ok(&[&args[..], &["--security", "none"]].concat());
    }

    /// Creates the endpoint `name`: plain IMAP on localhost's `port`.
    pub fn endpoint_on(&self, name: &str, port: u16) {
        let args = ["endpoint", "new", "--name", name, "--server", "127.0.0.1"];
        let port = port.to_string();
        self.ok(&[&args[..], &["--port", &port, "--security", "none"]].concat());
    }

    /// Creates batch `name` on `endpoint` from a CSV with these rows (after the header).
    pub fn batch(&self, name: &str, endpoint: &str, rows: &[&str]) -> PathBuf {
        self.batch_with_header(name, endpoint, "EmailAddress,UserName,Password", rows)
    }

    /// Creates batch `name` on `endpoint` from a CSV with this header and these rows.
    pub fn batch_with_header(
        &self,
        name: &str,
        endpoint: &str,
        header: &str,
        rows: &[&str],
    ) -> PathBuf {
        let csv = self.write(
            &format!("{name}.csv"),
            &format!("{header}\n{}\n", rows.join("\n")),
        );
        let path = csv.to_str().expect("UTF-8 temp path");
        self.ok(&[
            "batch",
            "new",
            "--name",
            name,
            "--endpoint",
            endpoint,
            "--csv",
            path,
        ]);
        csv
    }
}

/// `target new` arguments for an IMAP target on `localhost:port` with an admin login whose
/// password is read from the environment variable `secret_var`.
pub fn imap_target_args<'a>(
    name: &'a str,
    port: &'a str,
    admin: &'a str,
    secret_var: &'a str,
) -> Vec<&'a str> {
    vec![
        "target",
        "new",
        "--name",
        name,
        "--kind",
        "imap",
        "--server",
        "localhost",
        "--port",
        port,
        "--security",
        "none",
        "--admin-user",
        admin,
        "--password-env",
        secret_var,
    ]
}

/// Standard output and error together, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every file in the stage's top directory whose name starts with `index.sqlite` (the
/// database, and its WAL and shared-memory files if they remain), concatenated.
pub fn index_bytes(stage: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(stage).expect("the stage exists") {
        let path = entry.expect("a directory entry").path();
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("index.sqlite"))
        {
            bytes.extend(std::fs::read(&path).expect("read the index"));
        }
    }
    bytes
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

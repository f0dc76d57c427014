//! Which server certificates a stored endpoint or upload target accepts beyond the system's
//! roots: kept with it, so every run connects the same way without being told again.

use std::io;
use std::path::{Path, PathBuf};

use crate::imap::Fingerprint;
use crate::imap::transport::ConnectOptions;

/// A `--ca-file` that cannot be stored.
#[derive(Debug, thiserror::Error)]
#[error("--ca-file {}: cannot read it: {source}", path.display())]
pub struct CaFileError {
    /// The path as given.
    pub path: PathBuf,
    /// Why.
    pub source: io::Error,
}

/// Extra trust for a server's certificate.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TlsTrust {
    /// A PEM file of CA certificates to trust besides the system's (a private CA), as an
    /// absolute path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate (a lab server only).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
    /// Accept exactly the certificate with this SHA-256 fingerprint (`--tls-fingerprint`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<Fingerprint>,
}

impl TlsTrust {
    /// The trust given on the command line to store: the CA file must exist and is kept by
    /// its absolute path (runs may start from another directory), which must be UTF-8 (the
    /// index stores text).
    pub fn to_store(
        ca_file: Option<&Path>,
        insecure: bool,
        fingerprint: Option<Fingerprint>,
    ) -> Result<Self, CaFileError> {
        let Some(given) = ca_file else {
            return Ok(Self {
                ca_file: None,
                insecure,
                fingerprint,
            });
        };
        let refused = |source| CaFileError {
            path: given.to_path_buf(),
            source,
        };
        let path = given.canonicalize().map_err(refused)?;
        if path.to_str().is_none() {
            return Err(refused(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the path is not UTF-8; move the file to a path that is",
            )));
        }
        Ok(Self {
            ca_file: Some(path),
            insecure,
            fingerprint,
        })
    }

    /// Sets `to`'s trust: a run's own `--ca-file` and `--tls-fingerprint` win over the
    /// stored ones, and a run's `--insecure` adds to what is stored (a run cannot turn
    /// checks back on for an endpoint or target stored as insecure: create it again without
    /// `--insecure`).
    pub fn apply(&self, run: &TlsTrust, to: &mut ConnectOptions) {
        to.tls.ca_file = run.ca_file.clone().or_else(|| self.ca_file.clone());
        to.tls.insecure = run.insecure || self.insecure;
        to.tls.fingerprint = run.fingerprint.or(self.fingerprint);
    }

    /// A run's own trust as given on its command line (paths as given, nothing stored).
    pub fn for_run(
        ca_file: Option<&Path>,
        insecure: bool,
        fingerprint: Option<Fingerprint>,
    ) -> Self {
        Self {
            ca_file: ca_file.map(Path::to_path_buf),
            insecure,
            fingerprint,
        }
    }

    /// The pinned fingerprint for `show`, or `(none)`.
    pub fn fingerprint_text(&self) -> String {
        self.fingerprint
            .map_or_else(|| "(none)".into(), |f| f.to_string())
    }

    /// The CA file for `show`, or `(system roots)`.
    pub fn ca_file_text(&self) -> String {
        self.ca_file
            .as_ref()
            .map_or_else(|| "(system roots)".into(), |p| p.display().to_string())
    }

    /// Whether certificates are checked, for `show`.
    pub fn check_text(&self) -> &'static str {
        if self.insecure {
            "off (lab server)"
        } else {
            "on"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Security;

    #[test]
    fn a_runs_own_trust_wins_and_stored_paths_are_absolute() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "x").unwrap();
        let pin = Fingerprint::of(b"stored");
        let stored = TlsTrust::to_store(Some(&ca), false, Some(pin)).unwrap();
        assert!(stored.ca_file.as_ref().unwrap().is_absolute());
        assert!(TlsTrust::to_store(Some(Path::new("/nonexistent/ca.pem")), false, None).is_err());
        let mut opts = ConnectOptions::new("h", 993, Security::Ssl);
        stored.apply(&TlsTrust::default(), &mut opts);
        assert_eq!(
            (
                opts.tls.ca_file.as_ref(),
                opts.tls.insecure,
                opts.tls.fingerprint
            ),
            (stored.ca_file.as_ref(), false, Some(pin))
        );
        let run_pin = Fingerprint::of(b"run");
        let run = TlsTrust::for_run(Some(Path::new("/run/ca.pem")), true, Some(run_pin));
        stored.apply(&run, &mut opts);
        assert_eq!(opts.tls.ca_file.as_deref(), Some(Path::new("/run/ca.pem")));
        assert!(opts.tls.insecure);
        assert_eq!(opts.tls.fingerprint, Some(run_pin));
        // Settings written before the fields existed read as no extra trust.
        let none: TlsTrust = serde_json::from_str("{}").unwrap();
        assert_eq!(none, TlsTrust::default());
        assert_eq!(serde_json::to_string(&none).unwrap(), "{}");
        let json = serde_json::to_string(&stored).unwrap();
        assert!(
            json.contains(&format!("\"fingerprint\":\"{pin}\"")),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<TlsTrust>(&json).unwrap(), stored);
    }
}

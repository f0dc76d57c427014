//! Upload targets: where `mailstage-upload` puts mail, as stored in the index.
//!
//! A target is either Microsoft 365 over IMAP with app-only OAuth2 (`m365-imap`) or any IMAP
//! server with a password login (`imap`). Secrets are never part of a target: it records
//! where the secret is read from (an environment variable or a file) at run time.

use std::fmt;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::catalog::Security;
use crate::login::AuthChoice;

pub use crate::oauth2::{
    DEFAULT_IMAP_HOST as M365_IMAP_HOST, DEFAULT_LOGIN_BASE as M365_LOGIN_URL,
};

/// Where a secret is read from when a run starts (the secret itself is never stored).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretSource {
    /// An environment variable's value.
    Env(String),
    /// A file's contents, without the trailing newline.
    File(PathBuf),
}

/// Why a secret could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The variable is not set (or not UTF-8).
    #[error("environment variable {0} is not set; export the secret in it before the run")]
    EnvMissing(String),
    /// The file could not be read.
    #[error("cannot read the secret file {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The variable or file is empty.
    #[error("the secret in {0} is empty")]
    Empty(String),
}

impl SecretSource {
    /// Reads the secret now.
    pub fn read(&self) -> Result<SecretString, SecretError> {
        let value = match self {
            SecretSource::Env(var) => std::env::var(var)
                .map_err(|_| SecretError::EnvMissing(var.clone()))?
                .into_boxed_str(),
            SecretSource::File(path) => {
                let mut text =
                    std::fs::read_to_string(path).map_err(|source| SecretError::File {
                        path: path.clone(),
                        source,
                    })?;
                // Copied out at its exact size, then the read buffer (larger, with the
                // newline) wiped: shrinking it in place could free an unwiped copy.
                let kept: Box<str> = text.trim_end_matches(['\r', '\n']).into();
                zeroize::Zeroize::zeroize(&mut text);
                kept
            }
        };
        if value.is_empty() {
            return Err(SecretError::Empty(self.to_string()));
        }
        Ok(SecretString::from(value))
    }

    /// Makes a file path absolute (relative to the current directory), so a later run from
    /// elsewhere finds it.
    pub fn absolute(self) -> std::io::Result<Self> {
        Ok(match self {
            SecretSource::File(p) if p.is_relative() => {
                SecretSource::File(std::path::absolute(Path::new(&p))?)
            }
            other => other,
        })
    }
}

impl fmt::Display for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Env(var) => write!(f, "environment variable {var}"),
            SecretSource::File(path) => write!(f, "file {}", path.display()),
        }
    }
}

/// How a target is reached and logged in to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum TargetKind {
    /// Microsoft 365 (Exchange Online) over IMAP with app-only OAuth2 (XOAUTH2).
    M365Imap {
        /// The tenant (a GUID or a domain like `contoso.onmicrosoft.com`).
        tenant: String,
        /// The app registration's client id.
        client_id: String,
        /// Where the client secret is read from.
        client_secret: SecretSource,
        /// The IMAP host (also the token's scope: `https://{host}/.default`).
        imap_host: String,
        /// The IMAP port (993, implicit TLS, unless the host is an emulator).
        imap_port: u16,
        /// Plain, implicit TLS or STARTTLS (implicit TLS for Microsoft 365).
        security: Security,
        /// The login base URL (national clouds, or the test emulator).
        login_url: String,
    },
    /// Any IMAP server, logged in to as an admin on behalf of each mailbox (Dovecot
    /// `mailbox*admin`), or as each mailbox with the same password.
    Imap {
        /// Host name or address.
        server: String,
        /// TCP port.
        port: u16,
        /// Plain, implicit TLS or STARTTLS.
        security: Security,
        /// LOGIN or SASL PLAIN (or auto).
        auth: AuthChoice,
        /// The admin (master user) that logs in for each mailbox, if any.
        admin_user: Option<String>,
        /// Where the admin's (or the shared) password is read from.
        secret: SecretSource,
        /// For an admin that cannot log in as another user (Courier): where each mailbox
        /// is, levels separated by `/`, `{user}` standing for the target mailbox
        /// (`/#shared/{user}`). The admin logs in as itself; the root is the mailbox's INBOX.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user_root: Option<String>,
    },
}

/// A stored target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetSettings {
    /// Its name, unique in the stage.
    pub name: String,
    /// How it is reached.
    #[serde(flatten)]
    pub kind: TargetKind,
    /// Extra trust for the server's certificate (and the login URL's, on Microsoft 365).
    #[serde(default, skip_serializing_if = "is_default")]
    pub tls: crate::catalog::TlsTrust,
}

fn is_default(t: &crate::catalog::TlsTrust) -> bool {
    *t == crate::catalog::TlsTrust::default()
}

impl TargetSettings {
    /// The kind's name as the command line and the index spell it.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            TargetKind::M365Imap { .. } => "m365-imap",
            TargetKind::Imap { .. } => "imap",
        }
    }

    /// True for Microsoft 365, whose folder names and quirks (`\Flagged` after APPEND, the
    /// reserved `Files` folder) apply.
    pub fn is_m365(&self) -> bool {
        matches!(self.kind, TargetKind::M365Imap { .. })
    }

    /// Refuses what must never be stored or run: Microsoft 365 without TLS (`--security
    /// none`), which would send the bearer token in clear. Only a loopback IMAP host (a
    /// local emulator; the token never leaves the machine) may go without, as the login
    /// URL may use plain http to a loopback address only.
    pub fn check_security(&self) -> Result<(), String> {
        match &self.kind {
            TargetKind::M365Imap {
                security: Security::None,
                imap_host,
                ..
            } if !crate::oauth2::is_loopback_host(imap_host) => Err(format!(
                "target {:?}: --kind m365-imap needs TLS (--security ssl or tls): without it \
                 the bearer token would cross the network in clear (plain IMAP is allowed to a \
                 loopback address only)",
                self.name
            )),
            _ => Ok(()),
        }
    }

    /// `host:port` of the IMAP server.
    pub fn address(&self) -> String {
        match &self.kind {
            TargetKind::M365Imap {
                imap_host,
                imap_port,
                ..
            } => format!("{imap_host}:{imap_port}"),
            TargetKind::Imap { server, port, .. } => format!("{server}:{port}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn settings_round_trip_through_json_without_secrets() {
        let t = TargetSettings {
            name: "m365".into(),
            kind: TargetKind::M365Imap {
                tenant: "contoso.onmicrosoft.com".into(),
                client_id: "11111111-2222-3333-4444-555555555555".into(),
                client_secret: SecretSource::Env("MS_SECRET".into()),
                imap_host: M365_IMAP_HOST.into(),
                imap_port: 993,
                security: Security::Ssl,
                login_url: M365_LOGIN_URL.into(),
            },
            tls: Default::default(),
        };
        let json = serde_json::to_string(&t).unwrap();
        assert!(json.contains(r#""kind":"m365-imap""#), "{json}");
        assert!(
            json.contains(r#""client_secret":{"env":"MS_SECRET"}"#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<TargetSettings>(&json).unwrap(), t);
    }

    /// Targets stored by earlier builds (lowercase `security` and `auth` words) read back
    /// the same and are written back byte for byte.
    #[test]
    fn settings_written_by_earlier_builds_read_back_unchanged() {
        let stored = [
            r#"{"name":"lab","kind":"imap","server":"10.0.0.1","port":143,"security":"tls","auth":"plain","admin_user":"admin","secret":{"file":"/etc/mailstage/admin"}}"#,
            r#"{"name":"dev","kind":"imap","server":"localhost","port":1143,"security":"none","auth":"auto","admin_user":null,"secret":{"env":"PW"}}"#,
            r#"{"name":"m365","kind":"m365-imap","tenant":"contoso.onmicrosoft.com","client_id":"c","client_secret":{"env":"S"},"imap_host":"outlook.office365.com","imap_port":993,"security":"ssl","login_url":"https://login.microsoftonline.com"}"#,
            r#"{"name":"x","kind":"imap","server":"s","port":993,"security":"ssl","auth":"xoauth2","admin_user":null,"secret":{"env":"T"}}"#,
            r#"{"name":"l","kind":"imap","server":"s","port":143,"security":"tls","auth":"login","admin_user":null,"secret":{"env":"T"}}"#,
        ];
        let read: Vec<TargetSettings> = stored
            .iter()
            .map(|j| serde_json::from_str(j).unwrap())
            .collect();
        assert_eq!(
            read[0].kind,
            TargetKind::Imap {
                server: "10.0.0.1".into(),
                port: 143,
                security: Security::Tls,
                auth: AuthChoice::Plain,
                admin_user: Some("admin".into()),
                secret: SecretSource::File("/etc/mailstage/admin".into()),
                user_root: None,
            }
        );
        assert!(matches!(
            read[1].kind,
            TargetKind::Imap {
                security: Security::None,
                auth: AuthChoice::Auto,
                ..
            }
        ));
        assert!(matches!(
            read[2].kind,
            TargetKind::M365Imap {
                security: Security::Ssl,
                ..
            }
        ));
        assert!(matches!(
            read[3].kind,
            TargetKind::Imap {
                auth: AuthChoice::Xoauth2,
                ..
            }
        ));
        assert!(matches!(
            read[4].kind,
            TargetKind::Imap {
                auth: AuthChoice::Login,
                ..
            }
        ));
        for (json, t) in stored.iter().zip(&read) {
            assert_eq!(&serde_json::to_string(t).unwrap(), json);
        }
        let err = serde_json::from_str::<TargetSettings>(
            &stored[0].replace(r#""auth":"plain""#, r#""auth":"cram""#),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown --auth \"cram\""), "{err}");
    }

    #[test]
    fn microsoft_365_without_tls_is_refused() {
        let mut t = TargetSettings {
            name: "m365".into(),
            kind: TargetKind::M365Imap {
                tenant: "t".into(),
                client_id: "c".into(),
                client_secret: SecretSource::Env("S".into()),
                imap_host: M365_IMAP_HOST.into(),
                imap_port: 143,
                security: Security::None,
                login_url: M365_LOGIN_URL.into(),
            },
            tls: Default::default(),
        };
        let err = t.check_security().unwrap_err();
        assert!(
            err.contains("bearer token") && err.contains("m365"),
            "{err}"
        );
        if let TargetKind::M365Imap { imap_host, .. } = &mut t.kind {
            *imap_host = "127.0.0.1".into();
        }
        assert!(t.check_security().is_ok(), "a local emulator");
        if let TargetKind::M365Imap {
            security,
            imap_host,
            ..
        } = &mut t.kind
        {
            *imap_host = M365_IMAP_HOST.into();
            *security = Security::Tls;
        }
        assert!(t.check_security().is_ok());
    }

    #[test]
    fn secret_file_is_read_without_its_newline_and_empty_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "s3cr3t,with\"quotes\n").unwrap();
        let got = SecretSource::File(path.clone()).read().unwrap();
        assert_eq!(got.expose_secret(), "s3cr3t,with\"quotes");
        std::fs::write(&path, "\n").unwrap();
        let err = SecretSource::File(path).read().unwrap_err();
        assert!(err.to_string().contains("is empty"), "{err}");
        let err = SecretSource::Env("MAILSTAGE_TEST_UNSET_VARIABLE".into())
            .read()
            .unwrap_err();
        assert!(
            err.to_string().contains("MAILSTAGE_TEST_UNSET_VARIABLE"),
            "{err}"
        );
    }
}

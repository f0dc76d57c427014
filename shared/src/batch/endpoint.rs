//! A migration endpoint: the source IMAP server and how many mailboxes may copy at once,
//! as `New-MigrationEndpoint -IMAP` describes it.

use std::fmt;
use std::str::FromStr;

use super::TlsTrust;

/// How the connection to the IMAP server is secured (Microsoft's `-Security None|Ssl|Tls`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Security {
    /// Plain text, usually port 143.
    None,
    /// Implicit TLS from the first byte, usually port 993.
    Ssl,
    /// STARTTLS on a plain connection, usually port 143.
    Tls,
}

impl Security {
    /// The usual port: 993 for implicit TLS, 143 for plain and STARTTLS.
    pub fn default_port(self) -> u16 {
        match self {
            Security::Ssl => 993,
            Security::None | Security::Tls => 143,
        }
    }

    /// The lowercase name used on the command line and in the index.
    pub fn as_str(self) -> &'static str {
        match self {
            Security::None => "none",
            Security::Ssl => "ssl",
            Security::Tls => "tls",
        }
    }
}

impl fmt::Display for Security {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Security {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "none" => Ok(Security::None),
            "ssl" => Ok(Security::Ssl),
            "tls" | "starttls" => Ok(Security::Tls),
            other => Err(format!(
                "unknown security {other:?}: use none (plain), ssl (implicit TLS) or tls (STARTTLS)"
            )),
        }
    }
}

/// Everything stored about an endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointSettings {
    /// The endpoint's name, unique in the stage.
    pub name: String,
    /// The IMAP server's host name or address.
    pub server: String,
    /// The TCP port.
    pub port: u16,
    /// Plain, implicit TLS or STARTTLS.
    pub security: Security,
    /// Mailboxes copied at once in a first pass (`-MaxConcurrentMigrations`).
    pub max_concurrent_migrations: u32,
    /// Mailboxes copied at once in incremental passes (`-MaxConcurrentIncrementalSyncs`).
    pub max_concurrent_incremental_syncs: u32,
    /// Extra trust for the server's certificate (a private CA, or none for a lab server).
    pub tls: TlsTrust,
}

impl EndpointSettings {
    /// An endpoint with Microsoft's defaults for the two concurrency limits (20 and 10).
    pub fn new(name: &str, server: &str, port: u16, security: Security) -> Self {
        Self {
            name: name.to_owned(),
            server: server.to_owned(),
            port,
            security,
            max_concurrent_migrations: 20,
            max_concurrent_incremental_syncs: 10,
            tls: TlsTrust::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_names_roundtrip_case_insensitively() {
        for s in [Security::None, Security::Ssl, Security::Tls] {
            assert_eq!(s.as_str().parse::<Security>().unwrap(), s);
            assert_eq!(s.as_str().to_uppercase().parse::<Security>().unwrap(), s);
        }
        assert_eq!("starttls".parse::<Security>(), Ok(Security::Tls));
        let err = "tls1.3".parse::<Security>().unwrap_err();
        assert!(err.contains("tls (STARTTLS)"), "{err}");
    }
}

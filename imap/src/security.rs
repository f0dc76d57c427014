//! How a connection is secured, in Microsoft's words (`-Security None|Ssl|Tls`).

use std::fmt;
use std::str::FromStr;

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

/// Serializes an enum as its `as_str()` word and reads it back with its `FromStr` (an
/// unknown word is an error with the `FromStr` message). Exported so the library's enums
/// stored by their words use the same code.
#[macro_export]
macro_rules! serde_as_word {
    ($name:ty) => {
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                <String as serde::Deserialize>::deserialize(d)?
                    .parse()
                    .map_err(serde::de::Error::custom)
            }
        }
    };
}

serde_as_word!(Security);

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

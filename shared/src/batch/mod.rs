//! Batches of mailboxes: endpoint settings, CSV batch files and admin-credential logins.

mod csv_file;
mod endpoint;
mod login;
mod tls_trust;

pub use csv_file::{BatchFileError, BatchRow, RowProblem, parse_batch_csv, read_batch_file};
pub use endpoint::{EndpointSettings, Security};
pub use login::{AuthChoice, LoginFormat, LoginMethod, ServerAuth, login_method};
pub use tls_trust::{CaFileError, TlsTrust};

/// Serializes an enum as its `as_str()` word and reads it back with its `FromStr` (so the
/// words the targets' JSON has always held, and the same spellings, still read).
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

serde_as_word!(AuthChoice);
serde_as_word!(Security);

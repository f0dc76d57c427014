//! Capabilities that carry a value: RFC 7889 APPENDLIMIT.

use tokio::io::{AsyncRead, AsyncWrite};

use super::session::Session;

/// What a server's APPENDLIMIT capability (RFC 7889) says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendLimit {
    /// `APPENDLIMIT=N`: no APPEND larger than N octets is accepted, in any folder.
    Global(u64),
    /// A bare `APPENDLIMIT`: each folder has its own limit (STATUS / LIST `APPENDLIMIT`).
    PerFolder,
}

impl AppendLimit {
    /// Reads APPENDLIMIT from capability atoms (case-insensitive); `None` when it is not
    /// announced. A value that is not a number is logged and ignored.
    pub fn from_capabilities<'a, I: IntoIterator<Item = &'a str>>(caps: I) -> Option<Self> {
        const NAME: &str = "APPENDLIMIT";
        for cap in caps {
            let Some(head) = cap.get(..NAME.len()) else {
                continue;
            };
            if !head.eq_ignore_ascii_case(NAME) {
                continue;
            }
            let rest = &cap[NAME.len()..];
            if rest.is_empty() {
                return Some(Self::PerFolder);
            }
            let Some(value) = rest.strip_prefix('=') else {
                continue; // another capability that starts with the same letters
            };
            match value.parse::<u64>() {
                Ok(n) => return Some(Self::Global(n)),
                Err(_) => tracing::warn!(capability = cap, "ignoring a malformed APPENDLIMIT"),
            }
        }
        None
    }

    /// The limit that holds for every folder, if there is one.
    pub fn global(self) -> Option<u64> {
        match self {
            Self::Global(n) => Some(n),
            Self::PerFolder => None,
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// The server's APPENDLIMIT as last announced (after login, the post-login list).
    pub fn append_limit(&self) -> Option<AppendLimit> {
        AppendLimit::from_capabilities(self.capabilities().iter().map(String::as_str))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_limit_global_per_folder_absent_and_malformed() {
        let read = |caps: &[&str]| AppendLimit::from_capabilities(caps.iter().copied());
        assert_eq!(
            read(&["IMAP4rev1", "APPENDLIMIT=200000", "LITERAL+"]),
            Some(AppendLimit::Global(200_000))
        );
        assert_eq!(
            read(&["appendlimit=36700160"]),
            Some(AppendLimit::Global(36_700_160))
        );
        assert_eq!(read(&["APPENDLIMIT"]), Some(AppendLimit::PerFolder));
        assert_eq!(read(&["IMAP4rev1", "UIDPLUS"]), None);
        assert_eq!(read(&[]), None);
        assert_eq!(
            read(&["APPENDLIMIT=", "APPENDLIMIT=-1", "APPENDLIMIT=1e6"]),
            None
        );
        assert_eq!(read(&["APPENDLIMITX"]), None);
        assert_eq!(
            read(&["APPENDLIMIT=x", "APPENDLIMIT=5"]),
            Some(AppendLimit::Global(5))
        );
        assert_eq!(AppendLimit::Global(7).global(), Some(7));
        assert_eq!(AppendLimit::PerFolder.global(), None);
    }

    #[test]
    fn append_limit_survives_the_parser_as_an_atom() {
        let parsed =
            crate::response::parse(b"* CAPABILITY IMAP4rev1 LITERAL+ APPENDLIMIT=200000\r\n");
        let Some(crate::Response::Untagged(crate::Untagged::Capability(caps))) = parsed else {
            panic!("not a capability response: {parsed:?}")
        };
        let caps = caps.iter().map(String::as_str);
        assert_eq!(
            AppendLimit::from_capabilities(caps),
            Some(AppendLimit::Global(200_000))
        );
    }
}

//! Where a target mailbox's folders live on the wire: under the target's personal namespace
//! prefix (RFC 2342: `INBOX.` on Courier and on Cyrus without `altnamespace`, empty on
//! Dovecot), or under an admin's user root (Courier's `#shared.alice`, which is alice's INBOX,
//! her folders beneath it). The upload works with neutral paths (`["Projects", "2024"]`,
//! `["INBOX"]`); this turns them into wire names and the target's listing back into paths,
//! leaving out what lies in other users' or shared namespaces.

use crate::extract::namespaces::{Ownership, Place};
use crate::imap::mutf7;
use crate::imap::types::Namespaces;

/// The target mailbox's folders as the target names them.
#[derive(Clone, Debug)]
pub(crate) struct Home {
    delimiter: char,
    /// The personal namespace prefix as on the wire (`INBOX.` or empty).
    prefix: Vec<u8>,
    /// Whose each listed name is.
    ownership: Ownership,
    /// An admin's user root as on the wire (`#shared.alice`): INBOX itself, every folder
    /// beneath it. Replaces the personal prefix.
    root: Option<Vec<u8>>,
}

impl Home {
    /// A mailbox at the top of the hierarchy (no NAMESPACE answer, no user root).
    pub fn top(delimiter: char) -> Self {
        Self {
            delimiter,
            prefix: Vec::new(),
            ownership: Ownership::everything_own(),
            root: None,
        }
    }

    /// From the target's NAMESPACE answer: folders go under its first personal prefix.
    pub fn from_namespaces(delimiter: char, ns: &Namespaces) -> Self {
        let prefix = ns
            .personal
            .first()
            .map(|n| n.prefix.clone().into_bytes())
            .unwrap_or_default();
        Self {
            delimiter,
            prefix,
            ownership: Ownership::from_namespaces(ns),
            root: None,
        }
    }

    /// Under an admin's user root, given as the CSV's `UserRoot` is (levels separated by
    /// `/`, e.g. `/#shared/alice`).
    pub fn under_root(delimiter: char, root: &str) -> Self {
        let root: String = root
            .trim_matches('/')
            .chars()
            .map(|c| if c == '/' { delimiter } else { c })
            .collect();
        Self {
            root: Some(mutf7::encode(&root).into_bytes()),
            ..Self::top(delimiter)
        }
    }

    /// The hierarchy delimiter.
    pub fn delimiter(&self) -> char {
        self.delimiter
    }

    /// Records the delimiter a listing showed (a server may answer `LIST "" ""` without one).
    pub fn set_delimiter(&mut self, delimiter: char) {
        self.delimiter = delimiter;
    }

    /// The `LIST` pattern that shows the mailbox's folders.
    pub fn list_pattern(&self) -> Vec<u8> {
        match &self.root {
            Some(root) => [root.as_slice(), b"*"].concat(),
            None => b"*".to_vec(),
        }
    }

    /// The wire name of a neutral path: INBOX is `INBOX` (or the user root), anything else
    /// gets the prefix (or the root and the delimiter) and the delimiter between levels.
    pub fn wire(&self, path: &[String]) -> Vec<u8> {
        let inbox = path.len() == 1 && path[0].eq_ignore_ascii_case("INBOX");
        let joined = mutf7::encode(&path.join(&self.delimiter.to_string()));
        match &self.root {
            Some(root) if inbox => root.clone(),
            Some(root) => {
                let mut w = root.clone();
                w.extend(self.delimiter.to_string().as_bytes());
                w.extend(joined.as_bytes());
                w
            }
            None if inbox => b"INBOX".to_vec(),
            None => [self.prefix.as_slice(), joined.as_bytes()].concat(),
        }
    }

    /// The neutral path of a listed wire name; `None` for a name that is not the mailbox's
    /// own (another namespace, outside the user root) or not valid modified UTF-7.
    pub fn path(&self, wire: &[u8]) -> Option<Vec<String>> {
        let own: &[u8] = match &self.root {
            Some(root) if wire == root.as_slice() => return Some(vec!["INBOX".into()]),
            Some(root) => wire
                .strip_prefix(root.as_slice())?
                .strip_prefix(self.delimiter.to_string().as_bytes())
                .filter(|rest| !rest.is_empty())?,
            None => match self.ownership.place(wire) {
                Place::Own(own) => own,
                Place::Foreign(..) => return None,
            },
        };
        let name = mutf7::decode(std::str::from_utf8(own).ok()?).ok()?;
        let mut path: Vec<String> = name.split(self.delimiter).map(str::to_owned).collect();
        // A top-level INBOX is named without regard to case (RFC 3501 5.1): a target that
        // lists `Inbox` means INBOX. (Under a prefix, `INBOX.inbox`, it is a folder's name.)
        if own.len() == wire.len() && path[0].eq_ignore_ascii_case("INBOX") {
            path[0] = "INBOX".into();
        }
        Some(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::types::Namespace;

    fn ns(personal: &str, other: &str, shared: &str, d: &str) -> Namespaces {
        let one = |p: &str| {
            vec![Namespace {
                prefix: p.into(),
                delimiter: Some(d.into()),
            }]
        };
        Namespaces {
            personal: one(personal),
            other_users: one(other),
            shared: one(shared),
        }
    }

    fn path(s: &str) -> Vec<String> {
        s.split('/').map(str::to_owned).collect()
    }

    #[test]
    fn courier_folders_go_under_inbox_dot() {
        let h = Home::from_namespaces('.', &ns("INBOX.", "", "#shared.", "."));
        assert_eq!(h.wire(&path("INBOX")), b"INBOX");
        assert_eq!(h.wire(&path("Café/2024")), b"INBOX.Caf&AOk-.2024");
        assert_eq!(h.wire(&path("INBOX/Sub")), b"INBOX.INBOX.Sub");
        assert_eq!(h.path(b"INBOX.Caf&AOk-.2024"), Some(path("Café/2024")));
        assert_eq!(h.path(b"INBOX"), Some(path("INBOX")));
        assert_eq!(h.path(b"INBOX.INBOX.Sub"), Some(path("INBOX/Sub")));
        assert_eq!(h.path(b"#shared.bob.Projects"), None);
    }

    #[test]
    fn cyrus_without_altnamespace_leaves_out_the_shared_top() {
        let h = Home::from_namespaces('.', &ns("INBOX.", "user.", "", "."));
        assert_eq!(h.path(b"INBOX.Sent"), Some(path("Sent")));
        assert_eq!(h.path(b"user.bob.Sent"), None);
        assert_eq!(h.path(b"Announcements"), None);
        let h = Home::from_namespaces('/', &ns("", "Other Users/", "Shared Folders/", "/"));
        assert_eq!(h.wire(&path("A/B")), b"A/B");
        assert_eq!(h.path(b"Other Users/bob/X"), None);
        assert_eq!(h.path(b"A/B"), Some(path("A/B")));
    }

    #[test]
    fn a_user_root_is_inbox_and_holds_the_rest() {
        let h = Home::under_root('.', "/#shared/alice");
        assert_eq!(h.list_pattern(), b"#shared.alice*");
        assert_eq!(h.wire(&path("INBOX")), b"#shared.alice");
        assert_eq!(h.wire(&path("Projects/Q1")), b"#shared.alice.Projects.Q1");
        assert_eq!(h.path(b"#shared.alice"), Some(path("INBOX")));
        assert_eq!(
            h.path(b"#shared.alice.Projects.Q1"),
            Some(path("Projects/Q1"))
        );
        assert_eq!(h.path(b"#shared.alice2.X"), None);
        assert_eq!(h.path(b"INBOX"), None);
    }

    #[test]
    fn without_namespaces_everything_is_at_the_top() {
        let h = Home::top('/');
        assert_eq!(h.wire(&path("inbox")), b"INBOX");
        assert_eq!(h.wire(&path("R&D")), b"R&-D");
        assert_eq!(h.path(b"R&-D/x"), Some(path("R&D/x")));
        assert_eq!(h.path(b"Inbox"), Some(path("INBOX")));
        assert_eq!(h.path(b"inbox/Sub"), Some(path("INBOX/Sub")));
        let courier = Home::from_namespaces('.', &ns("INBOX.", "", "", "."));
        assert_eq!(courier.path(b"INBOX.inbox"), Some(path("inbox")));
    }
}

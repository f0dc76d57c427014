//! Whose folders a listing shows (RFC 2342 NAMESPACE): a pass migrates the personal
//! namespace only, with its prefix removed (`INBOX.Café` on Courier is the folder `Café`;
//! INBOX itself stays INBOX), and leaves out the folders of other users' and shared
//! namespaces (`Other Users/alice/Projects` on Cyrus, `#shared.…` on Courier, a Dovecot
//! public namespace), which are someone else's mail and would otherwise be uploaded as the
//! user's own folders.

use crate::imap::types::Namespaces;

/// A namespace that is not the user's own.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ForeignNamespace {
    /// Other users' namespace (folders shared with this user by their owners).
    OtherUsers,
    /// A shared or public namespace.
    Shared,
}

impl ForeignNamespace {
    /// Words for logs and summaries.
    pub fn describe(self) -> &'static str {
        match self {
            ForeignNamespace::OtherUsers => "other users' namespace",
            ForeignNamespace::Shared => "shared namespace",
        }
    }

    /// The top folder its folders are staged under when a batch includes it
    /// (`--include-namespace`): `Other Users/alice/Projects`, `Shared/Announcements`.
    pub fn subtree(self) -> &'static str {
        match self {
            ForeignNamespace::OtherUsers => "Other Users",
            ForeignNamespace::Shared => "Shared",
        }
    }

    /// Its word in the index and in JSON (`other_users`, `shared`).
    pub fn as_str(self) -> &'static str {
        match self {
            ForeignNamespace::OtherUsers => "other_users",
            ForeignNamespace::Shared => "shared",
        }
    }
}

impl std::str::FromStr for ForeignNamespace {
    type Err = String;

    /// `shared` (or `public`), `other` (or `other-users`), in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "shared" | "public" => Ok(ForeignNamespace::Shared),
            "other" | "other-users" | "other_users" => Ok(ForeignNamespace::OtherUsers),
            _ => Err(format!(
                "unknown namespace {s:?}: expected shared (shared or public folders) or other \
                 (other users' folders shared with the user)"
            )),
        }
    }
}

/// Where a listed folder belongs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place<'a> {
    /// The user's own: its wire name with the personal prefix removed.
    Own(&'a [u8]),
    /// Another namespace's, with that namespace's prefix.
    Foreign(ForeignNamespace, &'a str),
}

/// The namespaces of one login, to place listed folders by their wire names.
#[derive(Clone, Debug, Default)]
pub struct Ownership {
    /// (prefix, whose), personal ones as `None`.
    prefixes: Vec<(String, Option<ForeignNamespace>)>,
}

impl Ownership {
    /// No NAMESPACE answer: every listed folder counts as the user's own, names unchanged.
    pub fn everything_own() -> Self {
        Self::default()
    }

    /// From the server's NAMESPACE answer.
    pub fn from_namespaces(ns: &Namespaces) -> Self {
        let groups = [
            (&ns.personal, None),
            (&ns.other_users, Some(ForeignNamespace::OtherUsers)),
            (&ns.shared, Some(ForeignNamespace::Shared)),
        ];
        let prefixes = groups
            .into_iter()
            .flat_map(|(list, whose)| list.iter().map(move |n| (n.prefix.clone(), whose)))
            .collect();
        Self { prefixes }
    }

    /// Places the folder `wire`: INBOX is always the user's own; otherwise the namespace with
    /// the longest prefix that the name starts with (or equals, without its trailing
    /// delimiter) decides. A name under no namespace counts as the user's own.
    pub fn place<'a>(&'a self, wire: &'a [u8]) -> Place<'a> {
        if wire.eq_ignore_ascii_case(b"INBOX") {
            return Place::Own(wire);
        }
        let matches = |prefix: &str| {
            let p = prefix.as_bytes();
            wire.starts_with(p) || (!p.is_empty() && wire == &p[..p.len() - 1])
        };
        let best = self
            .prefixes
            .iter()
            .filter(|(prefix, _)| matches(prefix))
            .max_by_key(|(prefix, whose)| (prefix.len(), whose.is_none()));
        match best {
            None => Place::Own(wire),
            Some((prefix, None)) => {
                let rest = wire.get(prefix.len()..).unwrap_or_default();
                Place::Own(if rest.is_empty() { wire } else { rest })
            }
            Some((prefix, Some(whose))) => Place::Foreign(*whose, prefix),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::types::Namespace;

    fn ns(personal: &[&str], other: &[&str], shared: &[&str], d: &str) -> Ownership {
        let list = |p: &[&str]| {
            p.iter()
                .map(|p| Namespace {
                    prefix: p.to_string(),
                    delimiter: Some(d.into()),
                })
                .collect()
        };
        Ownership::from_namespaces(&Namespaces {
            personal: list(personal),
            other_users: list(other),
            shared: list(shared),
        })
    }

    #[test]
    fn courier_strips_inbox_dot_but_keeps_inbox() {
        let o = ns(&["INBOX."], &[], &["#shared.", "shared."], ".");
        assert_eq!(o.place(b"INBOX"), Place::Own(b"INBOX"));
        assert_eq!(o.place(b"INBOX.Caf&AOk-"), Place::Own(b"Caf&AOk-"));
        assert_eq!(o.place(b"INBOX.A.B"), Place::Own(b"A.B"));
        assert_eq!(
            o.place(b"#shared.alice.Projects"),
            Place::Foreign(ForeignNamespace::Shared, "#shared.")
        );
        assert_eq!(
            o.place(b"#shared"),
            Place::Foreign(ForeignNamespace::Shared, "#shared.")
        );
    }

    #[test]
    fn cyrus_both_ways() {
        let o = ns(&[""], &["Other Users/"], &["Shared Folders/"], "/");
        assert_eq!(o.place(b"Projects/Q1"), Place::Own(b"Projects/Q1"));
        assert_eq!(
            o.place(b"Other Users/alice/Projects"),
            Place::Foreign(ForeignNamespace::OtherUsers, "Other Users/")
        );
        assert_eq!(
            o.place(b"Shared Folders/Announcements"),
            Place::Foreign(ForeignNamespace::Shared, "Shared Folders/")
        );
        // Without altnamespace the shared namespace has the empty prefix.
        let o = ns(&["INBOX."], &["user."], &[""], ".");
        assert_eq!(o.place(b"INBOX"), Place::Own(b"INBOX"));
        assert_eq!(o.place(b"INBOX.Sent"), Place::Own(b"Sent"));
        assert_eq!(
            o.place(b"user.alice.Projects"),
            Place::Foreign(ForeignNamespace::OtherUsers, "user.")
        );
        assert_eq!(
            o.place(b"Announcements"),
            Place::Foreign(ForeignNamespace::Shared, "")
        );
    }

    #[test]
    fn no_namespace_answer_keeps_everything() {
        let o = Ownership::everything_own();
        assert_eq!(o.place(b"INBOX.x"), Place::Own(b"INBOX.x"));
        let o = ns(&[""], &[], &["Public/"], "/");
        assert_eq!(o.place(b"Publicity"), Place::Own(b"Publicity"));
        assert_eq!(
            o.place(b"Public/News"),
            Place::Foreign(ForeignNamespace::Shared, "Public/")
        );
    }
}

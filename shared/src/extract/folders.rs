//! Which folders a pass reads: every selectable mail folder the server lists, within the
//! user's `UserRoot` when there is one (with that prefix removed), otherwise within the
//! personal namespace (its prefix removed, [`super::namespaces`]), minus Exchange's non-mail
//! folders and what the batch's include/exclude patterns leave out.

use super::Limits;
use super::namespaces::{ForeignNamespace, Ownership, Place};
use crate::folders::glob_match;
use crate::imap::ListEntry;
use crate::imap::mutf7;

/// A folder to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FolderPlan {
    /// The name as the server sent it (modified UTF-7), used to select it.
    pub wire: Vec<u8>,
    /// The decoded name, `UserRoot` removed: what the mailbox's owner calls it.
    pub name: String,
    /// Why the wire name is not canonical modified UTF-7 (e.g. raw UTF-8, which servers
    /// exist that send): the folder is then selected by its wire bytes and `name` is those
    /// bytes read as UTF-8, invalid sequences replaced.
    pub not_mutf7: Option<String>,
    /// The hierarchy delimiter.
    pub delimiter: Option<char>,
    /// Its SPECIAL-USE attribute.
    pub special_use: Option<String>,
}

/// A listed folder the pass leaves out, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeftOut {
    /// Its decoded (or raw) name.
    pub name: String,
    /// Why, in words.
    pub reason: String,
    /// Set when the folder is in another user's or a shared namespace (not this user's mail).
    pub namespace: Option<ForeignNamespace>,
    /// The name as the server sent it.
    pub wire: Vec<u8>,
    /// Left out by the batch's own `--include-folder` / `--exclude-folder` patterns (a
    /// mail folder the report counts as excluded), not for what it is.
    pub by_batch: bool,
}

/// Top-level folders Exchange exposes over IMAP that hold no mail.
const EXCHANGE_NON_MAIL: &[&str] = &[
    "Calendar",
    "Contacts",
    "Journal",
    "Notes",
    "Tasks",
    "Sync Issues",
];

/// Chooses the folders to read from a LIST reply.
///
/// `exchange` says the server is Microsoft Exchange (its greeting or ID say so): only then are
/// its non-mail folders left out by default, since a folder called `Notes` on another
/// server is ordinary mail. Without a `UserRoot`, `ownership` places each folder: only the
/// personal namespace's are read, named without its prefix.
pub fn select_folders(
    listed: &[ListEntry],
    user_root: Option<&str>,
    ownership: &Ownership,
    limits: &Limits,
    exchange: bool,
) -> (Vec<FolderPlan>, Vec<LeftOut>) {
    let mut chosen = Vec::new();
    let mut left_out = Vec::new();
    // A server may name a folder twice in one listing (LIST and the UserRoot's subtree, or a
    // server's own duplicate; INBOX in any case): it is read once.
    let mut seen = std::collections::HashSet::new();
    for entry in listed {
        let key = match entry.name.eq_ignore_ascii_case(b"INBOX") {
            true => b"INBOX".to_vec(),
            false => entry.name.clone(),
        };
        if !seen.insert(key) {
            tracing::debug!(folder = %String::from_utf8_lossy(&entry.name), "listed twice: read once");
            continue;
        }
        let delimiter = entry.delimiter.as_deref().and_then(|d| d.chars().next());
        let own = match user_root {
            Some(_) => Place::Own(&entry.name),
            None => ownership.place(&entry.name),
        };
        let (own, subtree) = match own {
            Place::Own(own) => (own, None),
            // Opted in: read, named under the namespace's own subtree.
            Place::Foreign(whose, prefix) if limits.include_namespaces.contains(&whose) => {
                let rest = entry.name.get(prefix.len()..).unwrap_or_default();
                (rest, Some(whose.subtree()))
            }
            Place::Foreign(whose, prefix) => {
                left_out.push(LeftOut {
                    name: entry
                        .decoded_name()
                        .unwrap_or_else(|_| String::from_utf8_lossy(&entry.name).into_owned()),
                    reason: format!(
                        "in the {} ({prefix:?}): not this user's own mail",
                        whose.describe()
                    ),
                    namespace: Some(whose),
                    wire: entry.name.clone(),
                    by_batch: false,
                });
                continue;
            }
        };
        let (decoded, not_mutf7) = match std::str::from_utf8(own)
            .map_err(|e| e.to_string())
            .and_then(|t| mutf7::decode(t).map_err(|e| e.to_string()))
        {
            Ok(name) => (name, None),
            Err(e) => (String::from_utf8_lossy(own).into_owned(), Some(e)),
        };
        let decoded = match subtree {
            Some(top) if decoded.is_empty() => top.to_owned(),
            Some(top) => format!("{top}{}{decoded}", delimiter.unwrap_or('/')),
            None => decoded,
        };
        let Some(name) = within_root(&decoded, user_root, delimiter) else {
            continue; // another user's folder in the admin's tree: not this mailbox's
        };
        let skip = |reason: String| LeftOut {
            name: name.clone(),
            reason,
            namespace: None,
            wire: entry.name.clone(),
            by_batch: false,
        };
        let by_batch = |reason: String| LeftOut {
            by_batch: true,
            ..skip(reason)
        };
        if !entry.is_selectable() {
            left_out.push(skip(
                "a container (\\Noselect): its subfolders are read".into(),
            ));
        } else if exchange && is_exchange_non_mail(&name, delimiter) {
            left_out.push(skip(
                "Exchange folder without mail (calendar, contacts, tasks, notes, journal)".into(),
            ));
        } else if let Some(p) = limits.exclude.iter().find(|p| glob_match(p, &name)) {
            left_out.push(by_batch(format!("excluded by --exclude-folder {p:?}")));
        } else if !limits.include.is_empty() && !limits.include.iter().any(|p| glob_match(p, &name))
        {
            left_out.push(by_batch("not matched by any --include-folder".into()));
        } else {
            chosen.push(FolderPlan {
                wire: entry.name.clone(),
                name,
                not_mutf7,
                delimiter,
                special_use: entry.special_use().map(str::to_owned),
            });
        }
    }
    (chosen, left_out)
}

/// The folder's name relative to `root`, or `None` when it lies outside it. The root itself
/// is the user's INBOX. `root` may use `/` whatever the server's delimiter is.
fn within_root(name: &str, root: Option<&str>, delimiter: Option<char>) -> Option<String> {
    let Some(root) = root.map(|r| r.trim_matches('/')).filter(|r| !r.is_empty()) else {
        return Some(name.to_owned());
    };
    let d = delimiter.unwrap_or('/');
    let root: String = root.chars().map(|c| if c == '/' { d } else { c }).collect();
    if name == root {
        return Some("INBOX".into());
    }
    name.strip_prefix(&root)
        .and_then(|rest| rest.strip_prefix(d))
        .filter(|rest| !rest.is_empty())
        .map(str::to_owned)
}

fn is_exchange_non_mail(name: &str, delimiter: Option<char>) -> bool {
    let top = delimiter.map_or(name, |d| name.split(d).next().unwrap_or(name));
    EXCHANGE_NON_MAIL
        .iter()
        .any(|n| n.eq_ignore_ascii_case(top))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, attrs: &[&str]) -> ListEntry {
        ListEntry {
            attributes: attrs.iter().map(|a| a.to_string()).collect(),
            delimiter: Some("/".into()),
            name: crate::imap::mutf7::encode(name).into_bytes(),
        }
    }

    fn limits(include: &[&str], exclude: &[&str]) -> Limits {
        Limits {
            max_message_size: 1,
            max_items: 1,
            include: include.iter().map(|s| s.to_string()).collect(),
            exclude: exclude.iter().map(|s| s.to_string()).collect(),
            include_namespaces: Vec::new(),
        }
    }

    #[test]
    fn containers_non_mail_and_patterns() {
        let listed = [
            entry("INBOX", &[]),
            entry("Entwürfe", &["\\Drafts"]),
            entry("Projects", &["\\Noselect", "\\HasChildren"]),
            entry("Projects/2024", &[]),
            entry("Calendar", &[]),
            entry("Calendar/Birthdays", &[]),
            entry("Trash", &["\\Trash"]),
        ];
        let (chosen, out) = select_folders(
            &listed,
            None,
            &Ownership::everything_own(),
            &limits(&[], &["Trash"]),
            true,
        );
        let names: Vec<&str> = chosen.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["INBOX", "Entwürfe", "Projects/2024"]);
        assert_eq!(chosen[1].wire, b"Entw&APw-rfe");
        assert_eq!(chosen[1].special_use.as_deref(), Some("\\Drafts"));
        assert_eq!(out.len(), 4);
        let (chosen, _) = select_folders(
            &listed,
            None,
            &Ownership::everything_own(),
            &limits(&[], &[]),
            false,
        );
        assert_eq!(chosen.len(), 6, "Calendar is mail on a non-Exchange server");
        let (chosen, _) = select_folders(
            &listed,
            None,
            &Ownership::everything_own(),
            &limits(&["Projects/*", "INBOX"], &[]),
            false,
        );
        assert_eq!(chosen.len(), 2);
    }

    #[test]
    fn personal_prefix_stripped_and_shared_folders_named_decoded() {
        use crate::imap::types::{Namespace, Namespaces};
        let ns = |p: &str| Namespace {
            prefix: p.into(),
            delimiter: Some(".".into()),
        };
        let ownership = Ownership::from_namespaces(&Namespaces {
            personal: vec![ns("INBOX.")],
            other_users: vec![],
            shared: vec![ns("#shared.")],
        });
        let dotted = |name: &str, attrs: &[&str]| ListEntry {
            delimiter: Some(".".into()),
            ..entry(name, attrs)
        };
        let listed = [
            dotted("INBOX", &["\\HasChildren"]),
            dotted("INBOX.Café", &[]),
            dotted("INBOX.A.B", &[]),
            dotted("#shared.zoë.Café", &[]),
        ];
        let (chosen, out) = select_folders(&listed, None, &ownership, &limits(&[], &[]), false);
        let names: Vec<&str> = chosen.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["INBOX", "Café", "A.B"]);
        assert_eq!(
            chosen[1].wire, b"INBOX.Caf&AOk-",
            "selected by its wire name"
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].name, "#shared.zoë.Café");
        assert_eq!(out[0].namespace, Some(ForeignNamespace::Shared));

        // Opted in: the shared folder is read, named under its subtree; the wire stays.
        let mut opted = limits(&[], &[]);
        opted.include_namespaces = vec![ForeignNamespace::Shared];
        let (chosen, out) = select_folders(&listed, None, &ownership, &opted, false);
        let names: Vec<&str> = chosen.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["INBOX", "Café", "A.B", "Shared.zoë.Café"]);
        assert_eq!(chosen[3].wire, b"#shared.zo&AOs-.Caf&AOk-");
        assert!(out.is_empty());
        opted.include_namespaces = vec![ForeignNamespace::OtherUsers];
        let (chosen, _) = select_folders(&listed, None, &ownership, &opted, false);
        assert_eq!(chosen.len(), 3, "only the namespaces asked for");
    }

    #[test]
    fn user_root_subtree_with_prefix_removed() {
        let listed = [
            entry("INBOX", &[]),
            entry("users", &["\\Noselect"]),
            entry("users/carol", &[]),
            entry("users/carol/Sent", &["\\Sent"]),
            entry("users/caroline/Sent", &[]),
        ];
        let (chosen, _) = select_folders(
            &listed,
            Some("/users/carol"),
            &Ownership::everything_own(),
            &limits(&[], &[]),
            false,
        );
        let names: Vec<&str> = chosen.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["INBOX", "Sent"]);
        assert_eq!(chosen[0].wire, b"users/carol");
    }
}

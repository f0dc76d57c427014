//! Folder mapping: where each source folder's mail goes on the target.
//!
//! In order: the admin's exclusions, then their `--map Old/Path=New/Path` renames, then the
//! special-use role of the folder (its SPECIAL-USE attribute, else a well-known name such as
//! `Sent`, `Sent Mail`, `Trash`, `Spam` at the top level or under INBOX) mapped to the
//! target's folder for that role (`Sent Items`, `Deleted Items`, `Junk Email`, … on Microsoft
//! 365; the target's own special-use folders elsewhere), then the rest as the same tree.
//! Paths in rules use `/` between levels whatever the servers' delimiters are. A name part
//! that contains the target's delimiter, and Microsoft 365's reserved top-level `Files`, are
//! renamed predictably and reported.

use std::collections::{BTreeMap, BTreeSet};

use crate::folders::glob_match;
use crate::stage::index::SourceFolder;

/// A special-use role (RFC 6154) a folder can play.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// `\Sent`.
    Sent,
    /// `\Drafts`.
    Drafts,
    /// `\Trash`.
    Trash,
    /// `\Junk`.
    Junk,
    /// `\Archive`.
    Archive,
}

impl Role {
    /// The role of a SPECIAL-USE attribute (`\All` and `\Flagged` are views, not roles).
    pub fn of_attribute(attr: &str) -> Option<Self> {
        match attr.to_ascii_lowercase().as_str() {
            "\\sent" => Some(Role::Sent),
            "\\drafts" => Some(Role::Drafts),
            "\\trash" => Some(Role::Trash),
            "\\junk" => Some(Role::Junk),
            "\\archive" => Some(Role::Archive),
            _ => None,
        }
    }

    /// The role a folder name usually plays (case-insensitive).
    pub fn of_name(name: &str) -> Option<Self> {
        const NAMES: &[(&str, Role)] = &[
            ("sent", Role::Sent),
            ("sent mail", Role::Sent),
            ("sent messages", Role::Sent),
            ("sent items", Role::Sent),
            ("sent-mail", Role::Sent),
            ("outbox sent", Role::Sent),
            ("drafts", Role::Drafts),
            ("draft", Role::Drafts),
            ("trash", Role::Trash),
            ("deleted messages", Role::Trash),
            ("deleted items", Role::Trash),
            ("bin", Role::Trash),
            ("junk", Role::Junk),
            ("spam", Role::Junk),
            ("junk e-mail", Role::Junk),
            ("junk email", Role::Junk),
            ("bulk mail", Role::Junk),
            ("archive", Role::Archive),
            ("archives", Role::Archive),
        ];
        let lower = name.to_lowercase();
        NAMES.iter().find(|(n, _)| *n == lower).map(|(_, r)| *r)
    }

    /// Microsoft 365's folder for the role.
    pub fn m365_name(self) -> &'static str {
        match self {
            Role::Sent => "Sent Items",
            Role::Drafts => "Drafts",
            Role::Trash => "Deleted Items",
            Role::Junk => "Junk Email",
            Role::Archive => "Archive",
        }
    }
}

/// What the target's folder list says.
#[derive(Clone, Debug, Default)]
pub struct TargetFolders {
    /// The target's hierarchy delimiter.
    pub delimiter: char,
    /// Folders playing a role on the target, as decoded paths split into levels.
    pub roles: BTreeMap<Role, Vec<String>>,
    /// Every existing folder, as decoded paths split into levels.
    pub existing: BTreeSet<Vec<String>>,
}

/// The admin's rules.
#[derive(Clone, Debug, Default)]
pub struct MappingRules {
    /// `(old, new)` path prefixes, levels separated by `/`.
    pub renames: Vec<(String, String)>,
    /// Source folders to leave out (globs on the `/`-separated path).
    pub excludes: Vec<String>,
}

impl MappingRules {
    /// The rules of `--map OLD=NEW` (each parsed by [`Self::parse_rename`]) and
    /// `--exclude PATTERN` arguments.
    pub fn from_args(maps: &[String], excludes: &[String]) -> Result<Self, String> {
        Ok(Self {
            renames: maps
                .iter()
                .map(|m| Self::parse_rename(m))
                .collect::<Result<_, _>>()?,
            excludes: excludes.to_vec(),
        })
    }

    /// Parses a `--map 'Old/Path=New/Path'` rule.
    pub fn parse_rename(rule: &str) -> Result<(String, String), String> {
        let (old, new) = rule.split_once('=').ok_or_else(|| {
            format!("--map {rule:?}: expected OLD=NEW, e.g. 'INBOX/Old Projects=Projects'")
        })?;
        let (old, new) = (old.trim_matches('/'), new.trim_matches('/'));
        if old.is_empty() || new.is_empty() {
            return Err(format!("--map {rule:?}: both sides need a folder path"));
        }
        Ok((old.to_owned(), new.to_owned()))
    }
}

/// Where one source folder goes.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MappedFolder {
    /// The source folder's row.
    pub source_id: i64,
    /// The source path, levels separated by `/`.
    pub source: String,
    /// The target path's levels; `None` when the folder is left out.
    pub target: Option<Vec<String>>,
    /// Why it goes there, when that is not the obvious same name (a rename, a role, a
    /// reserved name, an exclusion).
    pub note: Option<String>,
}

/// Maps every source folder of a mailbox.
pub fn map_folders(
    sources: &[SourceFolder],
    target: &TargetFolders,
    m365: bool,
    rules: &MappingRules,
) -> Vec<MappedFolder> {
    sources
        .iter()
        .map(|f| map_one(f, target, m365, rules))
        .collect()
}

fn map_one(
    f: &SourceFolder,
    target: &TargetFolders,
    m365: bool,
    rules: &MappingRules,
) -> MappedFolder {
    let levels: Vec<String> = match f.delimiter {
        Some(d) => f.name.split(d).map(str::to_owned).collect(),
        None => vec![f.name.clone()],
    };
    let source = levels.join("/");
    let mut out = MappedFolder {
        source_id: f.id,
        source: source.clone(),
        target: None,
        note: None,
    };
    if let Some(p) = rules.excludes.iter().find(|p| glob_match(p, &source)) {
        out.note = Some(format!("excluded by --exclude {p:?}"));
        return out;
    }
    if f.special_use
        .as_deref()
        .is_some_and(|a| a.eq_ignore_ascii_case("\\All") || a.eq_ignore_ascii_case("\\Flagged"))
    {
        out.note = Some(format!(
            "left out: a {} view of mail that is in other folders",
            f.special_use.as_deref().unwrap_or_default()
        ));
        return out;
    }
    let mut notes = Vec::new();
    let mut mapped = if let Some((old, new)) = rules
        .renames
        .iter()
        .find(|(old, _)| source == *old || source.starts_with(&format!("{old}/")))
    {
        notes.push(format!("renamed by --map {old:?}={new:?}"));
        let rest = &levels[old.split('/').count()..];
        new.split('/')
            .map(str::to_owned)
            .chain(rest.iter().cloned())
            .collect()
    } else if let Some((role, depth)) = role_of(f, &levels) {
        let base = target
            .roles
            .get(&role)
            .cloned()
            .or_else(|| m365.then(|| vec![role.m365_name().to_owned()]))
            .unwrap_or_else(|| levels[..depth].to_vec());
        if base != levels[..depth] {
            notes.push(format!("{role:?} folder"));
        }
        base.into_iter()
            .chain(levels[depth..].iter().cloned())
            .collect()
    } else if levels[0].eq_ignore_ascii_case("INBOX") {
        std::iter::once("INBOX".to_owned())
            .chain(levels[1..].iter().cloned())
            .collect()
    } else {
        levels.clone()
    };
    for level in &mut mapped {
        if level.contains(target.delimiter) {
            let safe = level.replace(target.delimiter, "_");
            notes.push(format!(
                "{level:?} holds the target's delimiter {:?}: named {safe:?}",
                target.delimiter
            ));
            *level = safe;
        }
        if level.is_empty() {
            *level = "_".into();
        }
    }
    if m365 && mapped.len() == 1 && mapped[0].eq_ignore_ascii_case("Files") {
        notes.push("\"Files\" is reserved on Microsoft 365: named \"Files (migrated)\"".into());
        mapped[0] = "Files (migrated)".into();
    }
    out.note = (!notes.is_empty()).then(|| notes.join("; "));
    out.target = Some(mapped);
    out
}

/// The folder's role and how many leading levels name the role folder: its SPECIAL-USE
/// attribute, else a well-known name at the top level (depth 1) or under INBOX (depth 2);
/// children of a role folder keep the role of their top.
fn role_of(f: &SourceFolder, levels: &[String]) -> Option<(Role, usize)> {
    if let Some(role) = f.special_use.as_deref().and_then(Role::of_attribute) {
        return Some((role, levels.len()));
    }
    if let Some(role) = Role::of_name(&levels[0]) {
        return Some((role, 1));
    }
    if levels.len() >= 2 && levels[0].eq_ignore_ascii_case("INBOX") {
        return Role::of_name(&levels[1]).map(|r| (r, 2));
    }
    None
}

/// The target folders to create, parents before children, that do not exist yet.
pub fn folders_to_create(mapped: &[MappedFolder], target: &TargetFolders) -> Vec<Vec<String>> {
    let mut wanted = BTreeSet::new();
    for path in mapped.iter().filter_map(|m| m.target.as_ref()) {
        for depth in 1..=path.len() {
            let prefix = path[..depth].to_vec();
            let is_inbox = depth == 1 && prefix[0].eq_ignore_ascii_case("INBOX");
            if !is_inbox && !target.existing.contains(&prefix) {
                wanted.insert(prefix);
            }
        }
    }
    let mut out: Vec<Vec<String>> = wanted.into_iter().collect();
    out.sort_by_key(|p| p.len());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(id: i64, name: &str, special: Option<&str>) -> SourceFolder {
        SourceFolder {
            id,
            name: name.into(),
            delimiter: Some('.'),
            special_use: special.map(str::to_owned),
        }
    }

    fn m365_target() -> TargetFolders {
        let path = |s: &str| s.split('/').map(str::to_owned).collect::<Vec<_>>();
        TargetFolders {
            delimiter: '/',
            roles: [
                (Role::Sent, path("Sent Items")),
                (Role::Trash, path("Deleted Items")),
            ]
            .into_iter()
            .collect(),
            existing: ["INBOX", "Sent Items", "Deleted Items", "Drafts"]
                .iter()
                .map(|s| path(s))
                .collect(),
        }
    }

    fn targets(mapped: &[MappedFolder]) -> Vec<Option<String>> {
        mapped
            .iter()
            .map(|m| m.target.as_ref().map(|t| t.join("/")))
            .collect()
    }

    #[test]
    fn roles_by_attribute_and_by_name_land_in_the_targets_folders() {
        let sources = [
            folder(1, "INBOX", None),
            folder(2, "Gesendet", Some("\\Sent")),
            folder(3, "Trash", None),
            folder(4, "Spam", None),
            folder(5, "INBOX.Drafts", None),
            folder(6, "Sent.2019", None),
            folder(7, "Projects.a/b", None),
            folder(8, "Files", None),
            folder(9, "[Gmail].All Mail", Some("\\All")),
            folder(10, "inbox.Sub", None),
        ];
        let mapped = map_folders(&sources, &m365_target(), true, &MappingRules::default());
        assert_eq!(
            targets(&mapped),
            [
                Some("INBOX"),
                Some("Sent Items"),
                Some("Deleted Items"),
                Some("Junk Email"),
                Some("Drafts"),
                Some("Sent Items/2019"),
                Some("Projects/a_b"),
                Some("Files (migrated)"),
                None,
                Some("INBOX/Sub"),
            ]
            .map(|s| s.map(str::to_owned))
        );
        assert!(mapped[6].note.as_deref().unwrap().contains("delimiter"));
        assert!(mapped[7].note.as_deref().unwrap().contains("reserved"));
        assert!(mapped[8].note.as_deref().unwrap().contains("view"));
    }

    #[test]
    fn a_plain_imap_target_keeps_names_without_a_role_folder() {
        let target = TargetFolders {
            delimiter: '.',
            ..TargetFolders::default()
        };
        let sources = [folder(1, "Sent", None), folder(2, "Files", None)];
        let mapped = map_folders(&sources, &target, false, &MappingRules::default());
        assert_eq!(
            targets(&mapped),
            [Some("Sent".to_owned()), Some("Files".to_owned())]
        );
    }

    #[test]
    fn rules_exclude_and_rename_before_roles() {
        let rules = MappingRules {
            renames: vec![MappingRules::parse_rename("Sent=Old/Sent").unwrap()],
            excludes: vec!["Junk*".into()],
        };
        let sources = [folder(1, "Sent.x", None), folder(2, "Junk", None)];
        let mapped = map_folders(&sources, &m365_target(), true, &rules);
        assert_eq!(targets(&mapped), [Some("Old/Sent/x".to_owned()), None]);
        assert!(mapped[1].note.as_deref().unwrap().contains("--exclude"));
        assert!(MappingRules::parse_rename("no-equals").is_err());
        assert!(MappingRules::parse_rename("=x").is_err());
    }

    #[test]
    fn creation_order_is_parents_first_and_skips_what_exists() {
        let sources = [folder(1, "Sent.2019", None), folder(2, "A.B.C", None)];
        let target = m365_target();
        let mapped = map_folders(&sources, &target, true, &MappingRules::default());
        let create: Vec<String> = folders_to_create(&mapped, &target)
            .iter()
            .map(|p| p.join("/"))
            .collect();
        assert_eq!(create, ["A", "A/B", "Sent Items/2019", "A/B/C"]);
    }
}

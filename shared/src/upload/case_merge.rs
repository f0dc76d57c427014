//! Microsoft 365 compares folder names without regard to case: `Projects` and `projects`
//! are one folder, and creating the second is refused ("Mailbox already exists."). Before
//! anything is created, source folders whose target paths differ only in case are merged
//! into the first one's spelling (or the target's existing folder's), and reported.

use std::collections::HashMap;

use super::mapping::{MappedFolder, TargetFolders};

/// Gives every target path the spelling of the first folder (the target's existing ones,
/// then the mapped ones in order, then the parents they imply) that is the same path
/// without regard to case, level by level, and notes each folder so merged.
pub(crate) fn merge_case_variants(mapped: &mut [MappedFolder], target: &TargetFolders) {
    // Lower-cased path -> (its spelling, the source folder that set it; none: the target's).
    let mut seen: HashMap<Vec<String>, (Vec<String>, Option<String>)> = HashMap::new();
    for path in &target.existing {
        seen.entry(lower(path))
            .or_insert_with(|| (path.clone(), None));
    }
    // The source folders' own names before the parents their subfolders imply.
    for m in mapped.iter() {
        if let Some(path) = &m.target {
            seen.entry(lower(path))
                .or_insert_with(|| (path.clone(), Some(m.source.clone())));
        }
    }
    for m in mapped.iter_mut() {
        let Some(path) = m.target.as_mut() else {
            continue;
        };
        let mut merged_with = None;
        for depth in 1..=path.len() {
            let key = lower(&path[..depth]);
            match seen.get(&key) {
                // Levels above are spelled already: only this one may change.
                Some((spelled, owner)) if spelled[depth - 1] != path[depth - 1] => {
                    path[depth - 1].clone_from(&spelled[depth - 1]);
                    let spelled: Vec<&str> = path[..depth].iter().map(String::as_str).collect();
                    merged_with = Some((spelled.join("/"), owner.clone()));
                }
                Some(_) => {}
                None => {
                    seen.insert(key, (path[..depth].to_vec(), Some(m.source.clone())));
                }
            }
        }
        if let Some((spelled, owner)) = merged_with {
            let with = match owner {
                Some(source) => format!("merged with source folder {source:?} into {spelled:?}"),
                None => format!("goes into the target's existing {spelled:?}"),
            };
            let note = format!("{with}: Microsoft 365 folder names ignore case");
            m.note = Some(match m.note.take() {
                Some(n) => format!("{n}; {note}"),
                None => note,
            });
        }
    }
}

fn lower(path: &[String]) -> Vec<String> {
    path.iter().map(|l| l.to_lowercase()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapped(id: i64, path: &str) -> MappedFolder {
        MappedFolder {
            source_id: id,
            source: path.into(),
            target: Some(path.split('/').map(str::to_owned).collect()),
            note: None,
        }
    }

    #[test]
    fn case_variants_merge_into_the_first_spelling_and_are_reported() {
        let target = TargetFolders {
            delimiter: '/',
            existing: [vec!["INBOX".to_owned()], vec!["Archive".to_owned()]]
                .into_iter()
                .collect(),
            ..TargetFolders::default()
        };
        let mut m = vec![
            mapped(0, "PROJECTS/Q1"),
            mapped(1, "Projects"),
            mapped(2, "projects"),
            mapped(4, "archive/2020"),
            mapped(5, "Other"),
        ];
        merge_case_variants(&mut m, &target);
        let paths: Vec<String> = m
            .iter()
            .map(|f| f.target.as_ref().unwrap().join("/"))
            .collect();
        assert_eq!(
            paths,
            [
                "Projects/Q1",
                "Projects",
                "Projects",
                "Archive/2020",
                "Other"
            ]
        );
        assert_eq!(m[1].note, None);
        assert!(
            m[2].note
                .as_deref()
                .unwrap()
                .contains("merged with source folder \"Projects\""),
            "{:?}",
            m[1].note
        );
        assert!(
            m[3].note
                .as_deref()
                .unwrap()
                .contains("target's existing \"Archive\"")
        );
        assert_eq!(m[4].note, None);
    }
}

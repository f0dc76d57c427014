//! The caps decided in SQL, against a real index file.

use super::*;
use crate::catalog::{BatchSettings, EndpointSettings, Security};
use crate::stage::index::{FolderInfo, NewMailbox};

use ListedVerdict::{Fetch, SkippedItemCap, SkippedSize};

/// An index with one mailbox of three folders; returns it, the mailbox and the folder ids.
fn fixture(dir: &std::path::Path) -> (Index, i64, Vec<i64>) {
    let mut idx = Index::open(&dir.join("index.sqlite")).unwrap();
    idx.add_endpoint(&EndpointSettings::new("src", "imap.x", 993, Security::Ssl))
        .unwrap();
    let mb = NewMailbox {
        email: "a@x.test".into(),
        login_name: "a".into(),
        user_root: None,
        target_user: None,
    };
    idx.create_batch_with_mailboxes(&BatchSettings::new("b", "src"), &[mb])
        .unwrap();
    let mailbox_id = idx.mailboxes("b").unwrap()[0].id;
    let folders = ["INBOX", "Sent", "Archive"]
        .iter()
        .map(|name| {
            let f = FolderInfo {
                wire_name: name.as_bytes().to_vec(),
                name: (*name).into(),
                delimiter: Some('/'),
                special_use: None,
            };
            idx.upsert_folder(mailbox_id, &f, 1).unwrap()
        })
        .collect();
    (idx, mailbox_id, folders)
}

/// (folder position, UID, size, INTERNALDATE)
type Cand = (u32, u32, u64, Option<i64>);

/// Lists `cands` afresh, decides the caps and returns each candidate's verdict, in order.
fn decide(
    idx: &mut Index,
    mailbox_id: i64,
    folders: &[i64],
    cands: &[Cand],
    caps: (u64, u64, u64),
) -> (Vec<ListedVerdict>, ListedTotals) {
    idx.clear_listed(mailbox_id).unwrap();
    let rows: Vec<ListedMessage> = cands
        .iter()
        .map(|&(pos, uid, size, date)| ListedMessage {
            folder_id: folders[pos as usize],
            folder_pos: pos,
            uid,
            size,
            internaldate: None,
            internaldate_unix: date,
            flags: String::new(),
        })
        .collect();
    // Written in two transactions, as a pass writes groups.
    let (a, b) = rows.split_at(rows.len() / 2);
    idx.record_listed(mailbox_id, a).unwrap();
    idx.record_listed(mailbox_id, b).unwrap();
    let totals = idx
        .decide_listed_caps(mailbox_id, caps.0, caps.1, caps.2)
        .unwrap();
    let mut decided = Vec::new();
    for &f in folders {
        // Read back in small chunks, as the pass walks them.
        let mut after = 0;
        loop {
            let chunk = idx.listed_after(f, after, 2).unwrap();
            let Some(last) = chunk.last() else { break };
            after = last.0.uid;
            decided.extend(chunk);
        }
    }
    let verdicts = cands
        .iter()
        .map(|&(pos, uid, ..)| {
            let at = decided
                .iter()
                .position(|(m, _)| m.folder_pos == pos && m.uid == uid)
                .unwrap();
            decided[at].1
        })
        .collect();
    (verdicts, totals)
}

#[test]
fn size_cap_is_inclusive_and_item_cap_keeps_the_newest_across_folders() {
    let dir = tempfile::tempdir().unwrap();
    let (mut idx, mb, folders) = fixture(dir.path());
    let cands = [
        (0, 1, 100, Some(10)),
        (1, 1, 100, Some(30)),
        (0, 2, 101, Some(40)),
        (1, 2, 100, Some(20)),
        (0, 3, 100, Some(5)),
    ];
    let (v, totals) = decide(&mut idx, mb, &folders, &cands, (100, 2, 0));
    assert_eq!(
        v,
        [SkippedItemCap, Fetch, SkippedSize, Fetch, SkippedItemCap]
    );
    let expected = ListedTotals {
        fetch: 2,
        fetch_bytes: 200,
        skipped_size: 1,
        skipped_item_cap: 2,
    };
    assert_eq!(totals, expected);
    assert!(idx.listed_to_fetch(folders[1]).unwrap());
    assert!(!idx.listed_to_fetch(folders[0]).unwrap());

    let (v, _) = decide(&mut idx, mb, &folders, &cands, (100, 3, 2));
    assert_eq!(
        v.iter().filter(|&&v| v == Fetch).count(),
        1,
        "room for one more"
    );
    assert_eq!(v[1], Fetch);
    let (v, _) = decide(&mut idx, mb, &folders, &cands, (100, 5, 9));
    assert!(v.iter().all(|&v| v != Fetch));
}

#[test]
fn ties_go_to_the_earlier_folder_then_the_lower_uid_and_no_date_is_oldest() {
    let dir = tempfile::tempdir().unwrap();
    let (mut idx, mb, folders) = fixture(dir.path());
    let cands = [
        (2, 1, 1, Some(7)),
        (1, 9, 1, Some(7)),
        (1, 3, 1, Some(7)),
        (0, 4, 1, None),
        (2, 2, 1, Some(i64::MIN + 1)),
    ];
    let (v, _) = decide(&mut idx, mb, &folders, &cands, (10, 2, 0));
    assert_eq!(
        v,
        [SkippedItemCap, Fetch, Fetch, SkippedItemCap, SkippedItemCap]
    );
    let (v, _) = decide(&mut idx, mb, &folders, &cands, (10, 4, 0));
    assert_eq!(v, [Fetch, Fetch, Fetch, SkippedItemCap, Fetch]);
}

#[test]
fn a_resumed_pass_decides_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let (mut idx, mb, folders) = fixture(dir.path());
    let cands: Vec<Cand> = (0..150u32)
        .map(|i| (i % 3, i + 1, 10, Some(i64::from(i % 50))))
        .collect();
    let (first, _) = decide(&mut idx, mb, &folders, &cands, (100, 100, 0));
    // Pretend the first 40 fetches were staged; the rest (and the skips) are listed again.
    let staged: Vec<usize> = (0..cands.len())
        .filter(|&i| first[i] == Fetch)
        .take(40)
        .collect();
    let rest: Vec<(usize, Cand)> = cands
        .iter()
        .copied()
        .enumerate()
        .filter(|(i, _)| !staged.contains(i))
        .collect();
    let again_cands: Vec<Cand> = rest.iter().map(|(_, c)| *c).collect();
    let (again, _) = decide(&mut idx, mb, &folders, &again_cands, (100, 100, 40));
    for (k, (i, _)) in rest.iter().enumerate() {
        assert_eq!(again[k], first[*i], "candidate {i}");
    }
}

#[test]
fn listing_again_replaces_and_clearing_forgets() {
    let dir = tempfile::tempdir().unwrap();
    let (mut idx, mb, folders) = fixture(dir.path());
    let (_, totals) = decide(&mut idx, mb, &folders, &[(0, 1, 5, None)], (10, 10, 0));
    assert_eq!(totals.fetch, 1);
    let again = ListedMessage {
        folder_id: folders[0],
        folder_pos: 0,
        uid: 1,
        size: 50,
        internaldate: Some("01-Jan-2020 00:00:00 +0000".into()),
        internaldate_unix: Some(1),
        flags: "\\Seen".into(),
    };
    idx.record_listed(mb, std::slice::from_ref(&again)).unwrap();
    let totals = idx.decide_listed_caps(mb, 10, 10, 0).unwrap();
    assert_eq!((totals.fetch, totals.skipped_size), (0, 1));
    assert_eq!(
        idx.listed_after(folders[0], 0, 10).unwrap(),
        [(again, SkippedSize)]
    );
    idx.clear_listed(mb).unwrap();
    assert!(idx.listed_after(folders[0], 0, 10).unwrap().is_empty());
}

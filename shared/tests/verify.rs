//! `verify` finds every kind of damage and names the affected messages.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use mailstage::stage::verify::{Damage, verify};

fn writable(path: &std::path::Path) {
    fs::set_permissions(path, fs::Permissions::from_mode(0o644)).unwrap();
}

#[test]
fn a_clean_stage_verifies_clean() {
    let dir = tempfile::tempdir().unwrap();
    let (mut stage, mailbox) = common::stage_with_mailbox(dir.path());
    let folder = common::folder(&stage, mailbox, "INBOX");
    let bodies: Vec<_> = (0..50).map(common::message).collect();
    common::stage_messages(&mut stage, folder, &bodies);
    let report = verify(&stage).unwrap();
    assert_eq!((report.blobs_checked, report.rows_checked), (50, 50));
    assert_eq!(
        report.bytes_hashed,
        bodies.iter().map(|b| b.len() as u64).sum::<u64>()
    );
    assert!(report.is_clean(), "{}", report.render_text());
    assert_eq!(report.exit_code(), 0);
}

#[test]
fn flipped_truncated_and_missing_blobs_are_named_by_mailbox_folder_and_uid() {
    let dir = tempfile::tempdir().unwrap();
    let (mut stage, mailbox) = common::stage_with_mailbox(dir.path());
    let folder = common::folder(&stage, mailbox, "Archive/2024");
    let hashes = common::stage_messages(
        &mut stage,
        folder,
        &[common::message(1), common::message(2), common::message(3)],
    );

    let flipped = stage.blobs().path_of(&hashes[0]);
    writable(&flipped);
    let mut bytes = fs::read(&flipped).unwrap();
    bytes[10] ^= 0x01;
    fs::write(&flipped, &bytes).unwrap();

    let truncated = stage.blobs().path_of(&hashes[1]);
    writable(&truncated);
    let len = fs::metadata(&truncated).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&truncated)
        .unwrap()
        .set_len(len - 5)
        .unwrap();

    fs::remove_file(stage.blobs().path_of(&hashes[2])).unwrap();

    let report = verify(&stage).unwrap();
    assert_eq!(report.exit_code(), 1);
    assert_eq!(report.damaged.len(), 3, "{}", report.render_text());
    let find = |h: &mailstage::stage::BlobHash| {
        report
            .damaged
            .iter()
            .find(|d| d.blob == h.to_hex())
            .unwrap()
    };
    assert!(
        matches!(find(&hashes[0]).damage, Damage::ContentMismatch { actual_len, .. } if actual_len == len)
    );
    assert!(
        matches!(find(&hashes[1]).damage, Damage::ContentMismatch { actual_len, .. } if actual_len == len - 5)
    );
    assert_eq!(find(&hashes[2]).damage, Damage::Missing);
    for (uid, h) in hashes.iter().enumerate() {
        let m = &find(h).messages[0];
        assert_eq!(
            (m.email.as_str(), m.folder.as_str(), m.uid),
            ("alice@example.com", "Archive/2024", uid as u32 + 1)
        );
    }
    let text = report.render_text();
    assert!(
        text.contains("needed by alice@example.com / Archive/2024 / UID 2"),
        "{text}"
    );
    assert!(text.contains("must be extracted again"), "{text}");
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["damaged"].as_array().unwrap().len(), 3);
}

#[test]
fn one_blob_shared_by_two_messages_names_both() {
    let dir = tempfile::tempdir().unwrap();
    let (mut stage, mailbox) = common::stage_with_mailbox(dir.path());
    let folder = common::folder(&stage, mailbox, "INBOX");
    let same = common::message(9);
    let hashes = common::stage_messages(&mut stage, folder, &[same.clone(), same]);
    assert_eq!(hashes[0], hashes[1]);
    assert_eq!(
        verify(&stage).unwrap().blobs_checked,
        1,
        "identical bytes stored once"
    );
    fs::remove_file(stage.blobs().path_of(&hashes[0])).unwrap();
    let report = verify(&stage).unwrap();
    let uids: Vec<u32> = report.damaged[0].messages.iter().map(|m| m.uid).collect();
    assert_eq!(uids, vec![1, 2]);
}

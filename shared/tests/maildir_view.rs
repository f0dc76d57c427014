//! The maildir audit view on real files.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;

use mailstage::stage::maildir::build_maildir;

#[test]
fn the_view_hard_links_every_staged_message_under_safe_names() {
    let dir = tempfile::tempdir().unwrap();
    let (mut stage, mailbox) = common::stage_with_mailbox(&dir.path().join("stage"));
    let inbox = common::folder(&stage, mailbox, "INBOX");
    let hostile = common::folder(&stage, mailbox, "../../etc");
    let hashes =
        common::stage_messages(&mut stage, inbox, &[common::message(1), common::message(2)]);
    common::stage_messages(&mut stage, hostile, &[common::message(3)]);

    let out = dir.path().join("view");
    let report = build_maildir(&stage, &out, None).unwrap();
    assert_eq!(
        (
            report.mailboxes,
            report.folders,
            report.messages,
            report.linked
        ),
        (1, 2, 3, 3)
    );

    let inbox_cur = out.join("alice@example.com/INBOX/cur");
    let mut names: Vec<String> = fs::read_dir(&inbox_cur)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec!["837596665.7_1.mailstage:2,S", "837596665.7_2.mailstage:2,S"]
    );
    let linked = fs::metadata(inbox_cur.join(&names[0])).unwrap();
    assert_eq!(
        linked.ino(),
        fs::metadata(stage.blobs().path_of(&hashes[0]))
            .unwrap()
            .ino(),
        "a hard link, not a copy"
    );
    for sub in ["new", "tmp"] {
        assert!(out.join("alice@example.com/INBOX").join(sub).is_dir());
    }
    assert!(
        out.join("alice@example.com/%2E%2E.%2E%2E.etc/cur").is_dir(),
        "hostile name stays inside"
    );
    assert!(!dir.path().join("etc").exists());
}

#[test]
fn rebuilding_replaces_the_view_and_foreign_directories_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (mut stage, mailbox) = common::stage_with_mailbox(&dir.path().join("stage"));
    let inbox = common::folder(&stage, mailbox, "INBOX");
    common::stage_messages(&mut stage, inbox, &[common::message(1)]);
    let out = dir.path().join("view");
    build_maildir(&stage, &out, None).unwrap();
    fs::write(out.join("alice@example.com/INBOX/cur/stray"), b"x").unwrap();
    build_maildir(&stage, &out, Some("b1")).unwrap();
    assert!(
        !out.join("alice@example.com/INBOX/cur/stray").exists(),
        "rebuilt from the index"
    );
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        2,
        "no building/old directories left: {leftovers:?}"
    );

    let foreign = dir.path().join("home");
    fs::create_dir(&foreign).unwrap();
    fs::write(foreign.join("thesis.tex"), b"precious").unwrap();
    let err = build_maildir(&stage, &foreign, None).unwrap_err();
    assert!(
        err.to_string()
            .contains("not a maildir view made by mailstage"),
        "{err}"
    );
    assert_eq!(fs::read(foreign.join("thesis.tex")).unwrap(), b"precious");

    let err = build_maildir(&stage, &out, Some("nope")).unwrap_err();
    assert!(err.to_string().contains("no batch named \"nope\""), "{err}");
}

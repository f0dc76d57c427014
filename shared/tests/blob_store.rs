//! The blob store on real files: streaming, hashing, group persist, dedup, cleanup.

mod common;

use std::process::Command;
use std::sync::Arc;

use mailstage::stage::{Access, BlobHash, BlobStore, Stage};
use proptest::prelude::*;

fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p)
            } else {
                out.push(p)
            }
        }
    }
    out
}

#[test]
fn concurrent_writers_of_the_same_content_store_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(BlobStore::open(dir.path()).unwrap());
    let body: Arc<Vec<u8>> = Arc::new((0..300_000u32).map(|i| (i % 251) as u8).collect());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (store, body) = (store.clone(), body.clone());
            std::thread::spawn(move || {
                let mut w = store.writer().unwrap();
                for chunk in body.chunks(1000 + t * 777) {
                    w.write_chunk(chunk).unwrap();
                }
                store.persist(vec![w.finish().unwrap()]).unwrap()[0]
            })
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let expected = BlobHash::of(&body);
    assert!(
        results
            .iter()
            .all(|r| r.hash == expected && r.len == body.len() as u64)
    );
    let blobs = files_under(&dir.path().join("blobs"));
    assert_eq!(blobs, vec![store.path_of(&expected)], "stored exactly once");
    assert_eq!(std::fs::read(&blobs[0]).unwrap(), *body);
    assert!(
        files_under(&dir.path().join("tmp")).is_empty(),
        "no temporary file left"
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&blobs[0]).unwrap().permissions(),
    );
    assert_eq!(mode & 0o222, 0, "blobs are read-only");
}

#[test]
fn abandoned_writers_leave_nothing_referenced_and_gc_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let (mut stage, mailbox) = common::stage_with_mailbox(dir.path());
    let folder = common::folder(&stage, mailbox, "INBOX");
    let kept = common::stage_messages(&mut stage, folder, &[common::message(1)]);

    // A writer dropped mid-stream removes its file; one that never gets to drop (as in a
    // killed process) leaves its file in tmp/.
    let mut dropped = stage.blobs().writer().unwrap();
    dropped.write_chunk(b"half a message").unwrap();
    drop(dropped);
    assert!(files_under(stage.blobs().tmp_dir()).is_empty());
    let mut killed = stage.blobs().writer().unwrap();
    killed.write_chunk(b"half a message").unwrap();
    std::mem::forget(killed);
    // And a durable blob whose rows were never committed.
    let orphan = stage.blobs().put(b"durable but never committed").unwrap();

    let report = mailstage::stage::verify::verify(&stage).unwrap();
    assert!(report.damaged.is_empty());
    assert_eq!(report.orphans.len(), 1);
    assert_eq!(report.tmp_leftovers, 1);
    assert_eq!(report.exit_code(), 2);

    let gc = stage.gc().unwrap();
    assert_eq!((gc.tmp_files, gc.orphan_blobs), (1, 1));
    assert_eq!(gc.orphan_bytes, orphan.len);
    assert!(!stage.blobs().contains(&orphan.hash));
    assert!(stage.blobs().contains(&kept[0]), "referenced blob kept");
    assert_eq!(
        mailstage::stage::verify::verify(&stage)
            .unwrap()
            .exit_code(),
        0
    );
}

#[test]
fn reopening_for_write_clears_tmp_and_locks_out_other_writers() {
    let dir = tempfile::tempdir().unwrap();
    let stage = Stage::open(dir.path(), Access::Write).unwrap();
    let mut w = stage.blobs().writer().unwrap();
    w.write_chunk(b"x").unwrap();
    std::mem::forget(w);
    let busy = Stage::open(dir.path(), Access::Write).unwrap_err();
    assert!(
        busy.to_string()
            .contains("in use by another mailstage process"),
        "{busy}"
    );
    assert!(
        Stage::open(dir.path(), Access::Read).is_err(),
        "a writer excludes readers"
    );
    drop(stage);
    let r1 = Stage::open(dir.path(), Access::Read).unwrap();
    let _r2 = Stage::open(dir.path(), Access::Read).expect("readers share the stage");
    // The forgotten writer's file, beside the `partial/` directory the stage keeps.
    assert_eq!(
        std::fs::read_dir(r1.blobs().tmp_dir()).unwrap().count(),
        2,
        "readers leave tmp/ alone"
    );
    drop((r1, _r2));
    let stage = Stage::open(dir.path(), Access::Write).unwrap();
    let left: Vec<_> = std::fs::read_dir(stage.blobs().tmp_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        left,
        ["partial"],
        "a writer clears tmp/ but for partial bodies"
    );
}

#[test]
fn reading_a_missing_stage_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = Stage::open(&dir.path().join("nope"), Access::Read).unwrap_err();
    assert!(err.to_string().contains("no stage at"), "{err}");
}

fn sha256sum(path: &std::path::Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum runs");
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn any_chunking_gives_the_hash_sha256sum_gives(
        body in prop::collection::vec(any::<u8>(), 0..200_000),
        cuts in prop::collection::vec(0usize..200_000, 0..20),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(body.len())).collect();
        cuts.push(body.len());
        cuts.sort_unstable();
        let mut w = store.writer().unwrap();
        let mut at = 0;
        for cut in cuts {
            w.write_chunk(&body[at..cut]).unwrap();
            at = cut;
        }
        let stored = store.persist(vec![w.finish().unwrap()]).unwrap()[0];
        let path = store.path_of(&stored.hash);
        prop_assert_eq!(stored.hash.to_hex(), sha256sum(&path));
        prop_assert_eq!(std::fs::read(&path).unwrap(), body);
    }
}

#[test]
fn partials_survive_reopening_and_gc_removes_only_those_no_pass_can_resume() {
    let dir = tempfile::tempdir().unwrap();
    let (mut stage, mailbox) = common::stage_with_mailbox(dir.path());
    let folder = common::folder(&stage, mailbox, "INBOX"); // UIDVALIDITY 7
    common::stage_messages(&mut stage, folder, &[common::message(1)]);
    let key = |uidvalidity, uid| mailstage::stage::PartialKey {
        endpoint: "127.0.0.1:143".into(),
        mailbox_id: mailbox,
        folder_id: folder,
        uidvalidity,
        uid,
        size: 5000,
    };
    // UID 1 is staged since; UID 2 has no row yet; UID 3 is of an older UIDVALIDITY.
    for (v, uid) in [(7, 1), (7, 2), (6, 3)] {
        let mut w = stage.blobs().partial_writer(&key(v, uid), 0).unwrap();
        w.write_chunk(&[b'x'; 3000]).unwrap();
    }
    drop(stage);
    let stage = Stage::open(dir.path(), Access::Write).unwrap();
    let report = mailstage::stage::verify::verify(&stage).unwrap();
    assert_eq!((report.partials, report.tmp_leftovers), (3, 0));
    assert!(report.is_clean(), "partials are not garbage");

    let gc = stage.gc().unwrap();
    assert_eq!((gc.stale_partials, gc.stale_partial_bytes), (2, 6000));
    assert_eq!(
        stage.blobs().partial_len(&key(7, 2)),
        3000,
        "the live one stays"
    );
    assert_eq!(stage.blobs().partial_len(&key(7, 1)), 0);
    assert_eq!(stage.blobs().partial_len(&key(6, 3)), 0);
}

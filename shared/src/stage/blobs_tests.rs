//! `BlobStore` unit tests: groups under either durability, descriptors of synced blobs.

use super::*;

/// A store of each durability: one syncfs per group (when this machine trusts it) and
/// an fsync per file.
fn stores(dir: &Path) -> Vec<BlobStore> {
    let mut out =
        vec![BlobStore::open_with(&dir.join("f"), |_| Durability::PerFile("test".into())).unwrap()];
    let chosen = BlobStore::open(&dir.join("s")).unwrap();
    if !chosen.durability().per_file() {
        out.push(chosen);
    }
    out
}

#[test]
fn a_group_persists_under_either_durability_and_duplicates_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    for store in stores(dir.path()) {
        let finished = |bytes: &[u8]| {
            let mut w = store.writer().unwrap();
            w.write_chunk(bytes).unwrap();
            w.finish().unwrap()
        };
        let group = vec![finished(b"one"), finished(b"two"), finished(b"one")];
        assert!(
            group
                .iter()
                .all(|b| b.needs_sync() == store.durability().per_file())
        );
        let stored = store.persist(group).unwrap();
        let dedup: Vec<bool> = stored.iter().map(|s| s.deduplicated).collect();
        assert_eq!(
            dedup,
            [false, false, true],
            "{}",
            store.durability().describe()
        );
        for (s, bytes) in stored.iter().zip([&b"one"[..], b"two", b"one"]) {
            assert_eq!(s.hash, BlobHash::of(bytes));
            assert_eq!(fs::read(store.path_of(&s.hash)).unwrap(), bytes);
        }
        let left: Vec<_> = fs::read_dir(store.tmp_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            left,
            ["partial"],
            "only the partial directory stays in tmp/"
        );
    }
}

#[test]
fn a_synced_blob_holds_no_descriptor_and_persists_like_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open_with(dir.path(), |_| Durability::PerFile("test".into())).unwrap();
    let finished = |bytes: &[u8]| {
        let mut w = store.writer().unwrap();
        w.write_chunk(bytes).unwrap();
        w.finish().unwrap()
    };
    let synced = finished(b"one").sync().unwrap();
    assert!(
        synced.file.is_none(),
        "the descriptor is closed once synced"
    );
    let unsynced = finished(b"two");
    assert!(unsynced.file.is_some());
    let stored = store.persist(vec![synced, unsynced]).unwrap();
    for (s, bytes) in stored.iter().zip([&b"one"[..], b"two"]) {
        assert_eq!(s.hash, BlobHash::of(bytes));
        assert_eq!(fs::read(store.path_of(&s.hash)).unwrap(), bytes);
    }
    assert_eq!(
        fs::read_dir(store.tmp_dir()).unwrap().count(),
        1,
        "tmp/partial/ only"
    );
}

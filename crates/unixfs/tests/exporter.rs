//! The exporter over in-memory DAGs: `cat` with ranges over balanced and trickle files, raw and
//! identity CIDs, `ls` of plain and HAMT directories, path resolution through HAMTs and
//! dag-cbor, and the errors.

mod common;

use bytes::Bytes;
use cairn_unixfs::exporter::{self, NodeKind};
use cairn_unixfs::{Cid, UnixfsError};
use common::*;
use futures::TryStreamExt;
use multihash_codetable::{Code, MultihashDigest};

async fn cat_range(store: &MemStore, root: &Cid, offset: u64, len: Option<u64>) -> Vec<u8> {
    let (_, s) = exporter::cat(store, root, offset, len).await.unwrap();
    let chunks: Vec<Bytes> = s.try_collect().await.unwrap();
    assert!(chunks.iter().all(|c| !c.is_empty()), "no empty chunks");
    chunks.concat()
}

#[tokio::test]
async fn balanced_file_ranges_and_chunk_boundaries() {
    for raw in [true, false] {
        let store = MemStore::default();
        let bytes = data(10_000, 1);
        // 100-byte leaves, 3 links per node: 100 leaves, depth 5.
        let (root, _) = add_file(&store, &bytes, 100, 3, raw);
        assert_eq!(cat_range(&store, &root, 0, None).await, bytes);
        let (size, _) = exporter::cat(&store, &root, 0, None).await.unwrap();
        assert_eq!(size, 10_000);
        for (off, len) in [
            (100, 100),
            (99, 2),
            (100, 1),
            (0, 1),
            (9_900, 100),
            (9_999, 5),
            (250, 1_000),
            (5_000, 0),
        ] {
            let got = cat_range(&store, &root, off, Some(len)).await;
            let end = (off + len).min(10_000) as usize;
            assert_eq!(
                got,
                &bytes[off as usize..end],
                "raw={raw} offset={off} length={len}"
            );
        }
        assert!(cat_range(&store, &root, 10_000, None).await.is_empty());
    }
}

#[tokio::test]
async fn a_range_skips_other_subtrees() {
    let store = MemStore::default();
    let bytes = data(10_000, 2);
    let (root, _) = add_file(&store, &bytes, 100, 3, true);
    store.clear_log();
    // Exactly one leaf: bytes 4200..4300.
    assert_eq!(
        cat_range(&store, &root, 4_200, Some(100)).await,
        &bytes[4_200..4_300]
    );
    let asked = store.asked();
    let leaves = asked.iter().filter(|c| c.codec() == 0x55).count();
    assert_eq!(leaves, 1, "only the one leaf in range is read: {asked:?}");
    // Root plus one node per level down to that leaf (depth 5 for 100 leaves of fan-out 3).
    assert!(asked.len() <= 6, "read {} blocks", asked.len());
    // Length 0 reads only the root.
    store.clear_log();
    assert!(cat_range(&store, &root, 50, Some(0)).await.is_empty());
    assert_eq!(store.asked(), vec![root]);
}

#[tokio::test]
async fn offset_past_end_is_empty_and_reads_only_the_root() {
    // Kubo's `cat` carries an offset past a file's end over to the next path; for one file the
    // output is empty, and the size tells the caller how much offset to carry.
    let store = MemStore::default();
    let (root, _) = add_file(&store, &data(1_000, 3), 100, 3, true);
    store.clear_log();
    let (size, s) = exporter::cat(&store, &root, 1_001, Some(5)).await.unwrap();
    assert_eq!(size, 1_000);
    assert!(s.try_collect::<Vec<Bytes>>().await.unwrap().is_empty());
    assert_eq!(store.asked(), vec![root]);
}

#[tokio::test]
async fn trickle_file_reads_whole_and_in_ranges() {
    let store = MemStore::default();
    let (root, bytes) = trickle_file(&store, 64);
    assert_eq!(cat_range(&store, &root, 0, None).await, bytes);
    for (off, len) in [(64 * 8, 64), (64 * 3 - 1, 130), (64 * 9 + 10, 1_000)] {
        let end = (off + len).min(bytes.len() as u64) as usize;
        assert_eq!(
            cat_range(&store, &root, off, Some(len)).await,
            &bytes[off as usize..end]
        );
    }
}

#[tokio::test]
async fn raw_and_identity_roots() {
    let store = MemStore::default();
    let raw = put_raw(&store, b"hello world\n");
    assert_eq!(cat_range(&store, &raw, 6, Some(5)).await, b"world");
    // An identity CID is read from the CID itself; the store is never asked.
    let id = Cid::new_v1(
        0x55,
        multihash::Multihash::<64>::wrap(0, b"inline").unwrap(),
    );
    store.clear_log();
    assert_eq!(cat_range(&store, &id, 0, None).await, b"inline");
    assert!(store.asked().is_empty());
}

#[tokio::test]
async fn missing_blocks_are_errors() {
    let store = MemStore::default();
    let bytes = data(1_000, 4);
    let (root, _) = add_file(&store, &bytes, 100, 3, true);
    let leaf = Cid::new_v1(0x55, Code::Sha2_256.digest(&bytes[500..600]));
    store.remove(&leaf);
    let (_, s) = exporter::cat(&store, &root, 0, None).await.unwrap();
    let err = s.try_collect::<Vec<_>>().await.unwrap_err();
    assert!(
        matches!(err, UnixfsError::BlockNotFound(c) if c == leaf),
        "{err}"
    );
    // Reading around the missing leaf works.
    assert_eq!(cat_range(&store, &root, 0, Some(500)).await, &bytes[..500]);
    // A missing root fails before streaming.
    let absent = Cid::new_v1(0x55, Code::Sha2_256.digest(b"absent"));
    let err = exporter::cat(&store, &absent, 0, None).await.err().unwrap();
    assert!(matches!(err, UnixfsError::BlockNotFound(c) if c == absent));
}

#[tokio::test]
async fn plain_directory_listing_and_resolve() {
    let store = MemStore::default();
    let root = add_tree(
        &store,
        &[
            ("d/a.txt", data(300, 1)),
            ("d/sub/b.bin", data(1_000, 2)),
            ("d/e", Vec::new()),
        ],
        None,
    );
    let entries = exporter::ls_all(&store, &root, true).await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].name, "d");
    assert_eq!(entries[0].kind, Some(NodeKind::Directory));
    let d = entries[0].cid;
    let entries = exporter::ls_all(&store, &d, true).await.unwrap();
    let names: Vec<_> = entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["a.txt", "e", "sub"]);
    assert_eq!(entries[0].size(), 300);
    assert_eq!(entries[0].kind.as_ref().unwrap().kubo_type(), 2);
    assert_eq!(entries[2].kind.as_ref().unwrap().kubo_type(), 1);
    assert!(entries[0].tsize >= 300);
    // Without resolving kinds, only the directory block is read.
    store.clear_log();
    let bare = exporter::ls_all(&store, &d, false).await.unwrap();
    assert!(bare.iter().all(|e| e.kind.is_none()));
    assert_eq!(store.asked(), vec![d]);

    let (cid, segs) = exporter::parse_path(&format!("/ipfs/{root}/d/sub/b.bin")).unwrap();
    let r = exporter::resolve(&store, &cid, &segs).await.unwrap();
    assert_eq!(
        exporter::read_to_vec(&store, &r.cid, 1 << 20)
            .await
            .unwrap(),
        data(1_000, 2)
    );
    assert!(r.remainder.is_empty());

    let err = exporter::resolve(&store, &root, &["d".into(), "nope".into()])
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), format!("no link named \"nope\" under {d}"));
    let err = exporter::resolve(&store, &root, &["d".into(), "a.txt".into(), "x".into()])
        .await
        .unwrap_err();
    let a = exporter::resolve(&store, &d, &["a.txt".into()])
        .await
        .unwrap()
        .cid;
    assert_eq!(err.to_string(), format!("no link named \"x\" under {a}"));
    let err = exporter::cat(&store, &d, 0, None).await.err().unwrap();
    assert_eq!(err.to_string(), "this dag node is a directory");
}

#[tokio::test]
async fn hamt_directory_listing_and_lookup() {
    let store = MemStore::default();
    let files: Vec<(String, Vec<u8>)> = (0..300)
        .map(|i| (format!("dir/file-{i:03}"), data(10 + i, i as u8)))
        .collect();
    let refs: Vec<(&str, Vec<u8>)> = files.iter().map(|(p, d)| (p.as_str(), d.clone())).collect();
    let root = add_tree(&store, &refs, Some(1_000));
    let dir = exporter::resolve(&store, &root, &["dir".into()])
        .await
        .unwrap()
        .cid;
    let block = store.blocks.lock().unwrap().get(&dir).cloned().unwrap();
    assert_eq!(
        exporter::node_kind(&dir, &block),
        NodeKind::HamtShard,
        "the builder sharded it"
    );

    let entries = exporter::ls_all(&store, &dir, true).await.unwrap();
    assert_eq!(entries.len(), 300);
    let mut names: Vec<_> = entries.iter().map(|e| e.name.clone()).collect();
    names.sort();
    let want: Vec<_> = (0..300).map(|i| format!("file-{i:03}")).collect();
    assert_eq!(names, want);
    for e in &entries {
        let i: usize = e.name[5..].parse().unwrap();
        assert_eq!(e.size(), 10 + i as u64, "{}", e.name);
    }
    // Lookups through the shards, and a miss in Kubo's words.
    for i in [0usize, 137, 299] {
        let r = exporter::resolve(&store, &dir, &[format!("file-{i:03}")])
            .await
            .unwrap();
        assert_eq!(
            exporter::read_to_vec(&store, &r.cid, 1 << 20)
                .await
                .unwrap(),
            data(10 + i, i as u8)
        );
    }
    let err = exporter::resolve(&store, &dir, &["file-300".into()])
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("no link named \"file-300\" under {dir}")
    );
}

#[tokio::test]
async fn dag_cbor_paths_leave_a_remainder() {
    use ipld_core::ipld::Ipld;
    let store = MemStore::default();
    let leaf = put_raw(&store, b"leaf");
    let mut inner = std::collections::BTreeMap::new();
    inner.insert("deep".to_string(), Ipld::String("value".into()));
    inner.insert("leaf".to_string(), Ipld::Link(leaf));
    let inner_bytes = serde_ipld_dagcbor::to_vec(&Ipld::Map(inner)).unwrap();
    let inner_cid = Cid::new_v1(0x71, Code::Sha2_256.digest(&inner_bytes));
    store.put(inner_cid, inner_bytes);
    let mut outer = std::collections::BTreeMap::new();
    outer.insert("a".to_string(), Ipld::List(vec![Ipld::Link(inner_cid)]));
    let outer_bytes = serde_ipld_dagcbor::to_vec(&Ipld::Map(outer)).unwrap();
    let root = Cid::new_v1(0x71, Code::Sha2_256.digest(&outer_bytes));
    store.put(root, outer_bytes);

    let r = exporter::resolve(&store, &root, &["a".into(), "0".into(), "deep".into()])
        .await
        .unwrap();
    assert_eq!((r.cid, r.rem_path()), (inner_cid, "deep".to_string()));
    let r = exporter::resolve(&store, &root, &["a".into(), "0".into(), "leaf".into()])
        .await
        .unwrap();
    assert_eq!((r.cid, r.rem_path()), (leaf, String::new()));
    let err = exporter::resolve(&store, &root, &["b".into()])
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), format!("no link named \"b\" under {root}"));

    let got = cairn_unixfs::codec::dag_get(&store, &format!("/ipfs/{root}/a/0/deep"), 0x0129)
        .await
        .unwrap();
    assert_eq!(got, br#""value""#);
    let got = cairn_unixfs::codec::dag_get(&store, &format!("{root}/a"), 0x0129)
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8(got).unwrap(),
        format!(r#"[{{"/":"{inner_cid}"}}]"#)
    );
}

#[tokio::test]
async fn garbage_blocks_are_errors_not_panics() {
    let store = MemStore::default();
    // The last two made rust-unixfs's protobuf reader overflow (found by fuzz/unixfs_decode;
    // the last one, a UnixFS `mtime` of the single byte 0x00, by a CI run on 2026-12-01).
    for junk in [
        &b""[..],
        b"\xff\xff\xff",
        b"\x0a\x05abc",
        b"\x12\x00",
        b"\x12\x01\x00\x00\x62\x12",
        b"\x0a\x12\x38\x90\x0d\x00\x0b\x42\x01\x00\x00\x00\x00\xed\xed\x3b\x02\xff\xff\x12",
    ] {
        let cid = Cid::new_v1(0x70, Code::Sha2_256.digest(junk));
        store.put(cid, junk.to_vec());
        let _ = exporter::node_kind(&cid, junk);
        let _ = exporter::cat(&store, &cid, 0, None).await;
        let _ = exporter::ls_all(&store, &cid, true).await;
        let _ = exporter::resolve(&store, &cid, &["x".into()]).await;
        let _ = exporter::resolve(&store, &cid, &["a".into(), "0".into()]).await;
    }
}

#[tokio::test]
async fn the_stream_reads_blocks_only_as_it_is_polled() {
    let store = MemStore::default();
    let bytes = data(100_000, 8);
    let (root, _) = add_file(&store, &bytes, 1_000, 10, true);
    store.clear_log();
    let (_, s) = exporter::cat(&store, &root, 0, None).await.unwrap();
    let mut s = Box::pin(s);
    assert_eq!(store.asked(), vec![root], "only the root before polling");
    let first = s.try_next().await.unwrap().unwrap();
    assert_eq!(&first[..], &bytes[..1_000]);
    // Root, one node per level (100 leaves at fan-out 10: 2 levels), the first leaf.
    assert_eq!(store.asked().len(), 3, "{:?}", store.asked());
}

//! Behaviour of the blockstore through its public API: storage, pins, GC, bad input.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cairn_blockstore::codec::{DAG_CBOR, DAG_PB, RAW};
use cairn_blockstore::engine::{Keyspace, MemoryEngine, StorageEngine};
use cairn_blockstore::{
    Block, Blockstore, BlockstoreConfig, BlockstoreError, Cid, Code, PinFilter, PinKind, PinMode,
    PinState,
};
use ipld_core::ipld::Ipld;
use ipld_dagpb::{PbLink, PbNode};
use multihash_codetable::MultihashDigest;

fn raw(data: &str) -> Block {
    Block::from_data(RAW, Bytes::copy_from_slice(data.as_bytes())).unwrap()
}

fn dag_pb(children: &[&Block]) -> Block {
    let node = PbNode {
        links: children
            .iter()
            .enumerate()
            .map(|(i, c)| PbLink {
                cid: *c.cid(),
                name: Some(format!("{i}")),
                size: Some(c.len() as u64),
            })
            .collect(),
        data: Some(Bytes::from_static(b"\x08\x01")),
    };
    Block::from_data(DAG_PB, node.into_bytes()).unwrap()
}

fn dag_cbor(children: &[&Block]) -> Block {
    let list = children.iter().map(|c| Ipld::Link(*c.cid())).collect();
    Block::from_data(
        DAG_CBOR,
        serde_ipld_dagcbor::to_vec(&Ipld::List(list)).unwrap(),
    )
    .unwrap()
}

/// A small DAG: cbor root -> (pb middle -> leaves a, b), leaf c.
struct Dag {
    root: Block,
    middle: Block,
    leaves: [Block; 3],
}

fn dag() -> Dag {
    let leaves = [raw("leaf a"), raw("leaf b"), raw("leaf c")];
    let middle = dag_pb(&[&leaves[0], &leaves[1]]);
    let root = dag_cbor(&[&middle, &leaves[2]]);
    Dag {
        root,
        middle,
        leaves,
    }
}

impl Dag {
    fn all(&self) -> Vec<Block> {
        let mut v = vec![self.root.clone(), self.middle.clone()];
        v.extend(self.leaves.iter().cloned());
        v
    }
}

fn stores() -> Vec<(Blockstore, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    vec![
        (Blockstore::in_memory(), None),
        (Blockstore::open(dir.path()).unwrap(), Some(dir)),
    ]
}

#[test]
fn put_get_has_size_delete_list_stat() {
    for (store, _dir) in stores() {
        let a = raw("alpha");
        let b = raw("beta!");
        assert!(store.put(&a).unwrap());
        assert!(
            !store.put(&a).unwrap(),
            "second put of the same block is not new"
        );
        assert!(store.put(&b).unwrap());
        assert_eq!(store.get(a.cid()).unwrap().unwrap(), a);
        assert!(store.has(b.cid()).unwrap());
        assert_eq!(store.size(b.cid()).unwrap(), Some(5));
        let stat = store.stat().unwrap();
        assert_eq!((stat.blocks, stat.bytes), (2, 10));
        let mut listed: Vec<Cid> = store.list().map(|r| r.unwrap()).collect();
        listed.sort();
        let mut want = vec![*a.cid(), *b.cid()];
        want.sort();
        assert_eq!(listed, want);
        assert!(store.delete(a.cid()).unwrap());
        assert!(!store.delete(a.cid()).unwrap());
        assert_eq!(store.get(a.cid()).unwrap(), None);
        assert_eq!(store.size(a.cid()).unwrap(), None);
        assert_eq!(store.op_counts().puts, 2);
    }
}

#[test]
fn cidv0_and_cidv1_share_one_entry() {
    let store = Blockstore::in_memory();
    let node = dag_pb(&[]);
    let v0 = Cid::new_v0(*node.cid().hash()).unwrap();
    let v1 = *node.cid();
    assert!(
        store
            .put(&Block::new(v0, node.data().clone()).unwrap())
            .unwrap()
    );
    assert!(
        !store.put(&node).unwrap(),
        "v1 of the same bytes is already stored"
    );
    assert_eq!(store.get(&v1).unwrap().unwrap().data(), node.data());
    assert_eq!(store.get(&v0).unwrap().unwrap().cid(), &v0);
    assert_eq!(store.stat().unwrap().blocks, 1);
    let raw_view = Cid::new_v1(RAW, *node.cid().hash());
    assert!(
        store.has(&raw_view).unwrap(),
        "any CID with the multihash finds it"
    );
}

#[test]
fn identity_blocks_are_answered_without_storage() {
    let store = Blockstore::in_memory();
    let mh = multihash::Multihash::<64>::wrap(0, b"inline").unwrap();
    let cid = Cid::new_v1(RAW, mh);
    assert!(store.has(&cid).unwrap());
    assert_eq!(store.get(&cid).unwrap().unwrap().data().as_ref(), b"inline");
    assert!(
        !store
            .put(&Block::new(cid, &b"inline"[..]).unwrap())
            .unwrap()
    );
    assert_eq!(store.stat().unwrap().blocks, 0);
}

#[test]
fn failed_put_many_changes_nothing() {
    let store = Blockstore::with_engine(
        Arc::new(MemoryEngine::new()),
        BlockstoreConfig::default().with_max_block_size(8),
    );
    store.put(&raw("kept")).unwrap();
    let before: Vec<_> = store.list().map(|r| r.unwrap()).collect();
    let batch = vec![raw("one"), raw("two"), raw("far too large"), raw("three")];
    let err = store.put_many(batch).unwrap_err();
    assert!(
        err.to_string().contains("over the 8-byte limit"),
        "unexpected message: {err}"
    );
    let after: Vec<_> = store.list().map(|r| r.unwrap()).collect();
    assert_eq!(before, after);
    // A batch that is fine goes in whole, duplicates counted once.
    assert_eq!(
        store
            .put_many(vec![raw("one"), raw("two"), raw("one")])
            .unwrap(),
        2
    );
    assert_eq!(store.stat().unwrap().blocks, 3);
}

#[test]
fn bad_input_gives_typed_errors_with_clear_messages() {
    let good = raw("x");
    // Wrong hash.
    let err = Block::new(*good.cid(), &b"y"[..]).unwrap_err();
    assert!(matches!(err, BlockstoreError::HashMismatch { .. }));
    assert!(
        err.to_string()
            .starts_with("block data does not match bafk"),
        "{err}"
    );
    // Unknown codec.
    let err = cairn_blockstore::codec::codec_from_name("dag-unknown").unwrap_err();
    assert_eq!(err.to_string(), "unknown codec \"dag-unknown\"");
    // Truncated CID.
    let bytes = good.cid().to_bytes();
    let err = cairn_blockstore::parse_cid_bytes(&bytes[..bytes.len() - 1]).unwrap_err();
    assert!(matches!(err, BlockstoreError::InvalidCid { .. }));
    assert!(err.to_string().starts_with("invalid CID"), "{err}");
    // Missing block on pin.
    let d = dag();
    let store = Blockstore::in_memory();
    for b in d.all() {
        if b != d.leaves[1] {
            store.put(&b).unwrap();
        }
    }
    let err = store.pin(d.root.cid(), PinMode::Recursive).unwrap_err();
    match &err {
        BlockstoreError::PinMissingBlock { root, missing } => {
            assert_eq!(**root, *d.root.cid());
            assert_eq!(**missing, *d.leaves[1].cid());
        }
        other => panic!("wrong error {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        format!(
            "cannot pin {}: block {} is not in the local store",
            d.root.cid(),
            d.leaves[1].cid()
        )
    );
    assert!(
        store.pins(PinFilter::All).unwrap().is_empty(),
        "a failed pin leaves no pin"
    );
    // A codec a walk cannot read.
    let odd = Block::from_data(0x78 /* git-raw */, &b"tree"[..]).unwrap();
    store.put(&odd).unwrap();
    let err = store.pin(odd.cid(), PinMode::Recursive).unwrap_err();
    assert!(matches!(
        err,
        BlockstoreError::UnsupportedDagCodec { codec: 0x78, .. }
    ));
    store.pin(odd.cid(), PinMode::Direct).unwrap();
}

#[test]
fn pins_follow_kubo_rules_and_list_indirect() {
    let d = dag();
    let store = Blockstore::in_memory();
    store.put_many(d.all()).unwrap();
    let loose = raw("loose");
    store.put(&loose).unwrap();

    store.pin(loose.cid(), PinMode::Direct).unwrap();
    store
        .pin_named(d.root.cid(), PinMode::Recursive, "my dag")
        .unwrap();
    let err = store.pin(d.root.cid(), PinMode::Direct).unwrap_err();
    assert!(matches!(err, BlockstoreError::AlreadyPinnedRecursively(_)));

    let all = store.pins(PinFilter::All).unwrap();
    let kinds: Vec<_> = all.iter().map(|p| (p.cid, p.kind)).collect();
    assert_eq!(kinds[0], (*d.root.cid(), PinKind::Recursive));
    assert_eq!(all[0].name, "my dag");
    assert_eq!(kinds[1], (*loose.cid(), PinKind::Direct));
    let mut indirect: Vec<_> = kinds[2..].iter().map(|(c, k)| (*k, *c)).collect();
    indirect.sort();
    let mut want: Vec<_> = [&d.middle, &d.leaves[0], &d.leaves[1], &d.leaves[2]]
        .iter()
        .map(|b| (PinKind::Indirect, *b.cid()))
        .collect();
    want.sort();
    assert_eq!(indirect, want);
    assert_eq!(store.pins(PinFilter::Recursive).unwrap().len(), 1);
    assert_eq!(store.pins(PinFilter::Direct).unwrap().len(), 1);
    assert_eq!(store.pins(PinFilter::Indirect).unwrap().len(), 4);

    assert_eq!(
        store.pin_state(d.leaves[0].cid()).unwrap(),
        Some(PinState::Indirect { via: *d.root.cid() })
    );
    assert_eq!(
        store.pin_state(loose.cid()).unwrap(),
        Some(PinState::Direct)
    );

    // Deleting protected blocks is refused with Kubo's wording.
    let err = store.delete(d.leaves[0].cid()).unwrap_err();
    assert!(
        err.to_string()
            .ends_with(&format!("pinned via {}", d.root.cid())),
        "{err}"
    );
    let err = store.delete(d.root.cid()).unwrap_err();
    assert!(err.to_string().ends_with("pinned: recursive"), "{err}");

    // Unpin rules.
    let err = store.unpin(d.root.cid(), false).unwrap_err();
    assert!(matches!(err, BlockstoreError::PinnedRecursively(_)));
    let err = store.unpin(d.middle.cid(), true).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{} is not pinned or pinned indirectly", d.middle.cid())
    );
    store.unpin(loose.cid(), true).unwrap();
    store.unpin(d.root.cid(), true).unwrap();
    assert!(store.pins(PinFilter::All).unwrap().is_empty());

    // Recursive pin replaces a direct one.
    store.pin(d.root.cid(), PinMode::Direct).unwrap();
    store.pin(d.root.cid(), PinMode::Recursive).unwrap();
    assert_eq!(
        store.pin_state(d.root.cid()).unwrap(),
        Some(PinState::Recursive)
    );
}

#[test]
fn gc_removes_exactly_the_unpinned_blocks() {
    for (store, _dir) in stores() {
        let d = dag();
        store.put_many(d.all()).unwrap();
        let direct = raw("direct");
        let junk = [raw("junk 1"), raw("junk 2")];
        store.put(&direct).unwrap();
        store.put_many(junk.clone()).unwrap();
        store.pin(d.root.cid(), PinMode::Recursive).unwrap();
        store.pin(direct.cid(), PinMode::Direct).unwrap();

        let report = store.gc().unwrap();
        let mut removed = report.removed.clone();
        removed.sort();
        let mut want: Vec<Cid> = junk.iter().map(|b| *b.cid()).collect();
        want.sort();
        assert_eq!(removed, want);
        assert_eq!(report.freed_bytes, 12);
        for b in d.all().iter().chain([&direct]) {
            assert!(
                store.has(b.cid()).unwrap(),
                "pinned block {} was collected",
                b.cid()
            );
        }
        assert!(
            store.gc().unwrap().removed.is_empty(),
            "a second GC finds nothing"
        );
    }
}

#[test]
fn gc_with_an_incomplete_pinned_dag_removes_nothing() {
    let engine = Arc::new(MemoryEngine::new());
    let store = Blockstore::with_engine(engine.clone(), BlockstoreConfig::default());
    let d = dag();
    store.put_many(d.all()).unwrap();
    store.put(&raw("junk")).unwrap();
    store.pin(d.root.cid(), PinMode::Recursive).unwrap();
    // Lose a block behind the API's back (its record and its bytes).
    for ks in [Keyspace::Index, Keyspace::Blocks] {
        engine
            .delete(ks, &d.leaves[2].cid().hash().to_bytes())
            .unwrap();
    }
    let err = store.gc().unwrap_err();
    assert!(
        matches!(err, BlockstoreError::GcIncompletePin { .. }),
        "{err}"
    );
    assert_eq!(
        store.stat_by_walking().unwrap().blocks,
        5,
        "nothing removed"
    );
}

#[test]
fn gc_waits_for_an_in_flight_import_holding_a_guard() {
    let store = Blockstore::in_memory();
    let d = dag();
    let stale = raw("stale, unpinned");
    store.put(&stale).unwrap();

    // An import: hold the guard, write the DAG, and only then pin it.
    let guard = store.gc_guard();
    store.put_many(d.all()).unwrap();

    let gc = std::thread::spawn({
        let store = store.clone();
        move || store.gc()
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while !store.gc_waiting() {
        assert!(Instant::now() < deadline, "GC never started waiting");
        std::thread::yield_now();
    }
    assert!(!gc.is_finished(), "GC ran while an import held the guard");
    // A nested writer call while the GC waits must not deadlock.
    store.pin(d.root.cid(), PinMode::Recursive).unwrap();
    drop(guard);

    let report = gc.join().unwrap().unwrap();
    assert_eq!(report.removed, vec![*stale.cid()]);
    for b in d.all() {
        assert!(store.has(b.cid()).unwrap());
    }
}

#[test]
fn verify_on_read_catches_corruption() {
    let engine = Arc::new(MemoryEngine::new());
    let checked = Blockstore::with_engine(
        engine.clone(),
        BlockstoreConfig::default().with_verify_on_read(true),
    );
    let trusting = Blockstore::with_engine(
        engine.clone(),
        BlockstoreConfig::default().with_verify_on_read(false),
    );
    let b = raw("precious");
    checked.put(&b).unwrap();
    engine
        .put(Keyspace::Blocks, &b.cid().hash().to_bytes(), b"rotten!!")
        .unwrap();
    let err = checked.get(b.cid()).unwrap_err();
    assert!(matches!(err, BlockstoreError::Corrupt(_)));
    assert!(err.to_string().contains("is damaged on disk"));
    assert_eq!(
        trusting.get(b.cid()).unwrap().unwrap().data().as_ref(),
        b"rotten!!"
    );
}

#[test]
fn everything_survives_a_clean_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let d = dag();
    {
        let store = Blockstore::open(dir.path()).unwrap();
        store.put_many(d.all()).unwrap();
        store
            .pin_named(d.root.cid(), PinMode::Recursive, "keep")
            .unwrap();
        store.flush().unwrap();
    }
    let store = Blockstore::open(dir.path()).unwrap();
    for b in d.all() {
        assert_eq!(store.get(b.cid()).unwrap().unwrap(), b);
    }
    let pins = store.pins(PinFilter::Recursive).unwrap();
    assert_eq!(pins[0].name, "keep");
}

#[test]
fn other_hash_functions_store_and_find() {
    let store = Blockstore::in_memory();
    for code in [
        Code::Sha2_512,
        Code::Sha3_256,
        Code::Blake2b256,
        Code::Blake3_256,
    ] {
        let b = Block::from_data_with(RAW, code, &b"multi-hash"[..]).unwrap();
        store.put(&b).unwrap();
        let cid = Cid::new_v1(DAG_CBOR, code.digest(b"multi-hash"));
        assert!(store.has(&cid).unwrap());
    }
    assert_eq!(store.stat().unwrap().blocks, 4);
}

/// Node records (`get_record`/`put_record`) survive a reopen, are kept apart from the store's
/// bookkeeping (keys must start with `/`), and can be removed.
#[test]
fn node_records_persist_and_refuse_foreign_keys() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Blockstore::open(dir.path()).unwrap();
        assert_eq!(store.get_record(b"/local/filesroot").unwrap(), None);
        store.put_record(b"/local/filesroot", b"root-1").unwrap();
        store.put_record(b"/local/filesroot", b"root-2").unwrap();
        assert!(store.put_record(b"layout", b"x").is_err());
        assert!(store.get_record(b"").is_err());
        assert!(store.put_record(&[b'/'; 1025], b"x").is_err());
    }
    let store = Blockstore::open(dir.path()).unwrap();
    assert_eq!(
        store.get_record(b"/local/filesroot").unwrap().as_deref(),
        Some(&b"root-2"[..])
    );
    assert!(store.delete_record(b"/local/filesroot").unwrap());
    assert!(!store.delete_record(b"/local/filesroot").unwrap());
    assert_eq!(store.get_record(b"/local/filesroot").unwrap(), None);
}

//! Named roots (`Blockstore::set_root`, what the node keeps its MFS root in): durable, and GC
//! keeps what is reachable from them, best effort.

use cairn_blockstore::{Block, Blockstore};

/// A dag-pb node linking to `children` (each link: Hash, empty Name, Tsize 0), no Data.
fn pb_node(children: &[&Block]) -> Block {
    let mut out = Vec::new();
    for c in children {
        let cid = c.cid().to_bytes();
        let mut link = vec![0x0a, cid.len() as u8];
        link.extend_from_slice(&cid);
        link.extend_from_slice(&[0x12, 0x00, 0x18, 0x00]);
        out.push(0x12);
        out.push(link.len() as u8);
        out.extend_from_slice(&link);
    }
    Block::from_data(0x70, out).unwrap()
}

#[test]
fn gc_keeps_what_a_named_root_reaches() {
    let store = Blockstore::in_memory();
    let leaf = Block::from_data(0x55, b"leaf".to_vec()).unwrap();
    let missing = Block::from_data(0x55, b"never stored".to_vec()).unwrap();
    let root = pb_node(&[&leaf, &missing]);
    let loose = Block::from_data(0x55, b"loose".to_vec()).unwrap();
    store
        .put_many([leaf.clone(), root.clone(), loose.clone()])
        .unwrap();
    assert_eq!(store.root("filesroot").unwrap(), None);
    store.set_root("filesroot", Some(root.cid())).unwrap();
    assert_eq!(store.root("filesroot").unwrap(), Some(*root.cid()));
    // A child missing under the root does not stop GC (Kubo's best-effort MFS root).
    let report = store.gc().unwrap();
    assert_eq!(report.removed.len(), 1);
    assert!(store.has(root.cid()).unwrap() && store.has(leaf.cid()).unwrap());
    assert!(!store.has(loose.cid()).unwrap());
    store.set_root("filesroot", None).unwrap();
    assert_eq!(store.root("filesroot").unwrap(), None);
    store.gc().unwrap();
    assert!(!store.has(root.cid()).unwrap() && !store.has(leaf.cid()).unwrap());
}

#[test]
fn a_named_root_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let block = Block::from_data(0x55, b"x".to_vec()).unwrap();
    {
        let store = Blockstore::open(dir.path()).unwrap();
        store.put(&block).unwrap();
        store.set_root("filesroot", Some(block.cid())).unwrap();
    }
    let store = Blockstore::open(dir.path()).unwrap();
    assert_eq!(store.root("filesroot").unwrap(), Some(*block.cid()));
    store.gc().unwrap();
    assert!(store.has(block.cid()).unwrap());
}

/// `local_size` counts as Kubo's `files stat --with-local` walk does: every link's subtree,
/// a shared one once per link, missing blocks as 0 bytes and `local = false`.
#[test]
fn local_size_counts_like_kubos_tree_walk() {
    let store = Blockstore::in_memory();
    let shared = Block::from_data(0x55, b"shared leaf".to_vec()).unwrap();
    let missing = Block::from_data(0x55, b"never stored".to_vec()).unwrap();
    let mid = pb_node(&[&shared, &shared]);
    let whole = pb_node(&[&mid, &shared]);
    let partial = pb_node(&[&mid, &missing]);
    store
        .put_many([shared.clone(), mid.clone(), whole.clone(), partial.clone()])
        .unwrap();
    let size = |b: &Block| b.data().len() as u64;
    let mid_size = size(&mid) + 2 * size(&shared);
    assert_eq!(
        store.local_size(whole.cid()).unwrap(),
        (true, size(&whole) + mid_size + size(&shared))
    );
    assert_eq!(
        store.local_size(partial.cid()).unwrap(),
        (false, size(&partial) + mid_size)
    );
    assert_eq!(store.local_size(missing.cid()).unwrap(), (false, 0));
    assert_eq!(
        store.local_size(shared.cid()).unwrap(),
        (true, size(&shared))
    );
}

//! Test helpers: an in-memory [`BlockSource`] that records what it was asked for, and DAG
//! builders on `rust-unixfs` (balanced files, directories, HAMTs) and by hand (trickle files,
//! malicious directories).
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;
use cairn_unixfs::{BlockSource, BoxError, BoxFuture, Cid};
use multihash_codetable::{Code, MultihashDigest};
use rust_unixfs::dir::builder::{BufferingTreeBuilder, TreeOptions};
use rust_unixfs::file::adder::{BalancedCollector, Chunker, FileAdder};

/// Blocks in a map; every `get` is logged.
#[derive(Default)]
pub struct MemStore {
    pub blocks: Mutex<HashMap<Cid, Bytes>>,
    pub asked: Mutex<Vec<Cid>>,
}

impl MemStore {
    pub fn put(&self, cid: Cid, data: impl Into<Bytes>) {
        self.blocks.lock().unwrap().insert(cid, data.into());
    }
    pub fn remove(&self, cid: &Cid) {
        self.blocks.lock().unwrap().remove(cid);
    }
    pub fn asked(&self) -> Vec<Cid> {
        self.asked.lock().unwrap().clone()
    }
    pub fn clear_log(&self) {
        self.asked.lock().unwrap().clear();
    }
    pub fn len(&self) -> usize {
        self.blocks.lock().unwrap().len()
    }
}

impl BlockSource for MemStore {
    fn get<'a>(&'a self, cid: &'a Cid) -> BoxFuture<'a, Result<Option<Bytes>, BoxError>> {
        self.asked.lock().unwrap().push(*cid);
        let b = self.blocks.lock().unwrap().get(cid).cloned();
        Box::pin(async move { Ok(b) })
    }
}

/// Deterministic pseudo-random bytes.
pub fn data(len: usize, seed: u8) -> Vec<u8> {
    let mut x = (seed as u32).wrapping_mul(2654435761) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// Adds a balanced file: `chunk`-byte leaves, `fanout` links per node.
pub fn add_file(
    store: &MemStore,
    bytes: &[u8],
    chunk: usize,
    fanout: usize,
    raw: bool,
) -> (Cid, u64) {
    let mut adder = FileAdder::builder()
        .with_chunker(Chunker::Size(chunk))
        .with_collector(BalancedCollector::with_branching_factor(fanout))
        .with_raw_leaves(raw)
        .build();
    let mut last = None;
    let mut total = 0u64;
    let mut put = |cid: Cid, block: Vec<u8>| {
        total += block.len() as u64;
        store.put(cid, block);
        last = Some(cid);
    };
    let mut rest = bytes;
    while !rest.is_empty() {
        let (blocks, used) = adder.push(rest);
        for (c, b) in blocks {
            put(c, b);
        }
        rest = &rest[used..];
    }
    for (c, b) in adder.finish() {
        put(c, b);
    }
    (last.expect("a file has a root"), total)
}

/// Builds a directory tree of `(path, bytes)` files; `shard` sets the HAMT threshold.
pub fn add_tree(store: &MemStore, files: &[(&str, Vec<u8>)], shard: Option<u64>) -> Cid {
    let mut opts = TreeOptions::default();
    opts.shard_threshold(shard);
    opts.wrap_with_directory();
    let mut tree = BufferingTreeBuilder::new(opts);
    for (path, bytes) in files {
        let (cid, size) = add_file(store, bytes, 256, 174, true);
        tree.put_link(path, cid, size).unwrap();
    }
    let mut root = None;
    for node in tree.build() {
        let node = node.unwrap();
        store.put(node.cid, node.block.to_vec());
        root = Some(node.cid);
    }
    root.unwrap()
}

/// Protobuf helpers for hand-built UnixFS nodes.
fn varint(mut n: u64, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push(n as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// UnixFS `Data`: type, optional data, filesize, blocksizes.
pub fn unixfs_data(
    ty: u64,
    data: Option<&[u8]>,
    filesize: Option<u64>,
    blocksizes: &[u64],
) -> Vec<u8> {
    let mut out = Vec::new();
    varint(1 << 3, &mut out);
    varint(ty, &mut out);
    if let Some(d) = data {
        varint(2 << 3 | 2, &mut out);
        varint(d.len() as u64, &mut out);
        out.extend_from_slice(d);
    }
    if let Some(s) = filesize {
        varint(3 << 3, &mut out);
        varint(s, &mut out);
    }
    for b in blocksizes {
        varint(4 << 3, &mut out);
        varint(*b, &mut out);
    }
    out
}

/// A dag-pb node from its data and `(name, cid, tsize)` links; stored, CIDv1 sha2-256.
pub fn put_pb(store: &MemStore, data: Vec<u8>, links: Vec<(&str, Cid, u64)>) -> Cid {
    let node = ipld_dagpb::PbNode {
        links: links
            .into_iter()
            .map(|(name, cid, size)| ipld_dagpb::PbLink {
                cid,
                name: Some(name.to_string()),
                size: Some(size),
            })
            .collect(),
        data: Some(Bytes::from(data)),
    };
    let bytes = node.into_bytes();
    let cid = Cid::new_v1(0x70, Code::Sha2_256.digest(&bytes));
    store.put(cid, bytes);
    cid
}

/// A raw block, stored.
pub fn put_raw(store: &MemStore, bytes: &[u8]) -> Cid {
    let cid = Cid::new_v1(0x55, Code::Sha2_256.digest(bytes));
    store.put(cid, bytes.to_vec());
    cid
}

/// A trickle-shaped file (Kubo's `--trickle` layout with 2 direct leaves per layer and
/// subtrees of increasing depth): root[l0 l1 | sub(depth1)[l2 l3] sub(depth1)[l4 l5] |
/// sub(depth2)[l6 l7 sub[l8 l9]]]. Returns root and the file bytes.
pub fn trickle_file(store: &MemStore, chunk: usize) -> (Cid, Vec<u8>) {
    let bytes = data(chunk * 10, 7);
    let leaves: Vec<Cid> = bytes.chunks(chunk).map(|c| put_raw(store, c)).collect();
    let c = chunk as u64;
    let file_node = |store: &MemStore, kids: Vec<(Cid, u64)>| {
        let sizes: Vec<u64> = kids.iter().map(|k| k.1).collect();
        let total: u64 = sizes.iter().sum();
        let cid = put_pb(
            store,
            unixfs_data(2, None, Some(total), &sizes),
            kids.iter().map(|k| ("", k.0, k.1)).collect(),
        );
        (cid, total)
    };
    let sub1a = file_node(store, vec![(leaves[2], c), (leaves[3], c)]);
    let sub1b = file_node(store, vec![(leaves[4], c), (leaves[5], c)]);
    let inner = file_node(store, vec![(leaves[8], c), (leaves[9], c)]);
    let sub2 = file_node(store, vec![(leaves[6], c), (leaves[7], c), inner]);
    let root = file_node(
        store,
        vec![(leaves[0], c), (leaves[1], c), sub1a, sub1b, sub2],
    );
    (root.0, bytes)
}

/// `n` pseudo-random bytes: xorshift64* words, little-endian, from `seed` (the generator the
/// Kubo, JS and Go comparisons share, so their fixtures stay reproducible).
pub fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut s = seed | 1;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        out.extend_from_slice(&s.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(n);
    out
}

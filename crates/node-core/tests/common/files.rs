//! Test content: deterministic pseudo-random bytes, imported as Kubo's `ipfs add` does (CIDv0,
//! dag-pb leaves, 256 KiB chunks, balanced, 174 links) with rust-unixfs.

use cairn_blockstore::{Block, Cid};
use cairn_node_core::Node;
use rust_unixfs::file::adder::FileAdder;
use sha2::Digest;

/// `len` bytes from a xorshift generator seeded with `seed` (fast, and different per seed).
pub fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The blocks of `data` as a Kubo-default UnixFS file; the root is the last.
pub fn unixfs_blocks(data: &[u8]) -> Vec<Block> {
    let mut adder = FileAdder::builder()
        .with_cid_version(cid::Version::V0)
        .build();
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let (blocks, n) = adder.push(rest);
        out.extend(blocks);
        rest = &rest[n..];
    }
    out.extend(adder.finish());
    out.into_iter()
        .map(|(cid, bytes)| Block::new(cid, bytes).expect("the adder's CIDs verify"))
        .collect()
}

/// Stores `data` as a UnixFS file on `node` (through `put_block`, so it is announced) and
/// returns the root and every block.
pub async fn import(node: &Node, data: &[u8]) -> (Cid, Vec<Block>) {
    let blocks = unixfs_blocks(data);
    for b in &blocks {
        node.put_block(b).await.unwrap();
    }
    (*blocks.last().unwrap().cid(), blocks)
}

/// The file's bytes, read back from `node`'s local store through the UnixFS DAG.
pub async fn read_file(node: &Node, root: &Cid) -> Vec<u8> {
    use rust_unixfs::file::visit::IdleFileVisit;
    let store = node.blockstore().unwrap();
    let get = |c: &Cid| store.get(c).unwrap().expect("every block is stored");
    let mut out = Vec::new();
    let first = get(root);
    let (content, _, _, mut next) = IdleFileVisit::default()
        .start(first.data())
        .expect("a UnixFS file");
    out.extend_from_slice(content);
    let mut cache = None;
    while let Some(walk) = next {
        let link = *walk.pending_links().0;
        let block = get(&link);
        let (content, rest) = walk.continue_walk(block.data(), &mut cache).unwrap();
        out.extend_from_slice(content);
        next = rest;
    }
    out
}

/// Hex sha256.
pub fn sha256(data: &[u8]) -> String {
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

//! HAMT-sharded directories, as boxo's `ipld/unixfs/hamt` writes them.
//!
//! Each name is hashed with murmur3-x64-64 (the first 64-bit half of murmur3-x64-128, seed 0,
//! read big-endian); each level of the trie consumes the next `log2(fanout)` bits of the hash,
//! most significant first. A slot holding one entry links to it under the name `XX<name>`
//! (`XX`: the slot index in upper-case hex, zero-padded to the width of `fanout-1`); a slot
//! holding several entries links (name `XX`) to a child shard of the same fanout. A shard's
//! `Data` is UnixFS `HAMTShard` with the slot bitfield (big-endian, bit `i` = slot `i`, leading
//! zero bytes dropped as go-bitfield's `Bytes()` does), `hashType` 0x22 (murmur3-x64-64) and
//! `fanout`; only the root shard carries the directory's mode and mtime.
//!
//! The structure only depends on the set of names, so building it in one pass from the sorted
//! entries gives the same blocks as boxo's insert-one-at-a-time shard.

use std::collections::BTreeMap;
use std::io::Cursor;

use cid::Cid;

use crate::importer::options::{DAG_PB, ResolvedOptions};
use crate::importer::pb::{DataType, Mtime, PbLink, UnixfsData, encode_node};
use crate::{Block, UnixfsError};

/// The multicodec of murmur3-x64-64, UnixFS's `hashType` for HAMT shards.
const HASH_MURMUR3: u64 = 0x22;

/// The 64-bit murmur3 hash of a name, as boxo's `hamt.hash`.
pub(crate) fn hash_name(name: &str) -> u64 {
    // Reading from an in-memory cursor cannot fail.
    let h = murmur3::murmur3_x64_128(&mut Cursor::new(name.as_bytes()), 0).unwrap_or(0);
    h as u64
}

/// A directory entry waiting for its slot.
struct Entry {
    /// The link as the plain directory would hold it (name without prefix).
    link: PbLink,
    /// `hash_name(link.name)`: which slot it takes at each level.
    hash: u64,
}

/// Builds the shards for `links` (the directory's entries, any order); returns the root shard's
/// CID and cumulative size. Blocks are appended children first.
pub(crate) fn build(
    options: &ResolvedOptions,
    links: Vec<PbLink>,
    mode: Option<u32>,
    mtime: Option<Mtime>,
    out: &mut Vec<Block>,
) -> Result<(Cid, u64), UnixfsError> {
    let entries = links
        .into_iter()
        .map(|link| Entry {
            hash: hash_name(&link.name),
            link,
        })
        .collect();
    let fanout = options.hamt_fanout;
    let bits = fanout.trailing_zeros();
    let pad = format!("{:X}", fanout - 1).len();
    shard(options, entries, 0, bits, pad, (mode, mtime), out)
}

/// Builds one shard over `entries`, which all share the hash bits consumed so far
/// (`consumed` bits; each level takes the next `bits`). `pad` is the width of slot prefixes;
/// `meta` (mode, mtime) is only set for the root shard.
fn shard(
    options: &ResolvedOptions,
    entries: Vec<Entry>,
    consumed: u32,
    bits: u32,
    pad: usize,
    meta: (Option<u32>, Option<Mtime>),
    out: &mut Vec<Block>,
) -> Result<(Cid, u64), UnixfsError> {
    if consumed + bits > 64 {
        return Err(UnixfsError::InvalidArgument(
            "sharded directory too deep".into(),
        ));
    }
    let mut slots: BTreeMap<usize, Vec<Entry>> = BTreeMap::new();
    for e in entries {
        let idx = ((e.hash << consumed) >> (64 - bits)) as usize;
        slots.entry(idx).or_default().push(e);
    }
    let fanout = 1usize << bits;
    let mut bitfield = vec![0u8; fanout.div_ceil(8)];
    let mut links = Vec::with_capacity(slots.len());
    let last = bitfield.len() - 1;
    for (idx, mut group) in slots {
        bitfield[last - idx / 8] |= 1 << (idx % 8);
        let prefix = format!("{idx:0pad$X}");
        if group.len() == 1 {
            let Some(mut e) = group.pop() else { continue };
            e.link.name = format!("{prefix}{}", e.link.name);
            links.push(e.link);
        } else {
            let (cid, tsize) = shard(
                options,
                group,
                consumed + bits,
                bits,
                pad,
                (None, None),
                out,
            )?;
            links.push(PbLink {
                cid,
                name: prefix,
                tsize,
            });
        }
    }
    let first_set = bitfield
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(bitfield.len());
    let mut d = UnixfsData::new(DataType::HamtShard);
    if first_set < bitfield.len() {
        d.data = Some(&bitfield[first_set..]);
    }
    d.hash_type = Some(HASH_MURMUR3);
    d.fanout = Some(fanout as u64);
    d.mode = meta.0;
    d.mtime = meta.1;
    let block = options
        .cids
        .block(DAG_PB, encode_node(&links, &d.encode()))?;
    let size = block.len() as u64 + links.iter().map(|l| l.tsize).sum::<u64>();
    let cid = *block.cid();
    out.push(block);
    Ok((cid, size))
}

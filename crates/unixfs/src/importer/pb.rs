//! Protobuf encoding of the UnixFS `Data` message and of dag-pb `PBNode`s, byte for byte as boxo
//! writes them (Go's proto2 marshaller for `Data`, go-codec-dagpb for `PBNode`).
//!
//! Hand-written because the importer only ever *writes* these two small messages and the exact
//! bytes decide the CIDs: fields in field-number order, optional fields only when set, every
//! dag-pb link with its `Name` (even empty) and `Tsize`, links before `Data` (dag-pb's canonical
//! order). Decoding is the exporter's business; the unit tests decode with `ipld-dagpb` to check.

use cid::Cid;

/// UnixFS `Data.Type` values (unixfs.proto).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DataType {
    /// `Raw`: boxo's trickle layout uses it for its non-raw leaves.
    Raw = 0,
    /// `Directory`: a plain directory.
    Directory = 1,
    /// `File`: a file node, leaf or internal.
    File = 2,
    /// `Symlink`: the target is the node's `Data`.
    Symlink = 4,
    /// `HAMTShard`: one node of a sharded directory.
    HamtShard = 5,
}

/// A UnixFS 1.5 modification time: seconds since the Unix epoch (may be negative) and the
/// nanoseconds within that second (`0..1_000_000_000`; 0 is not stored, as boxo does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Mtime {
    /// Whole seconds since 1970-01-01T00:00:00Z.
    pub seconds: i64,
    /// Nanoseconds within the second, `0..1_000_000_000`.
    pub nanos: u32,
}

/// The fields of a UnixFS `Data` message the importer writes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UnixfsData<'a> {
    /// Field 1 `Type` (required, always written).
    pub kind: DataType,
    /// Field 2 `Data`: file bytes of a dag-pb leaf, a symlink's target, a HAMT bitfield.
    pub data: Option<&'a [u8]>,
    /// Field 3 `filesize`: file bytes under this node (files only; 0 is written for the empty
    /// file, as boxo's `NewFSNode` always sets it).
    pub filesize: Option<u64>,
    /// Field 4 `blocksizes`: file bytes under each child link, in link order.
    pub blocksizes: &'a [u64],
    /// Field 5 `hashType`: 0x22 (murmur3-x64-64) on HAMT shards.
    pub hash_type: Option<u64>,
    /// Field 6 `fanout`: on HAMT shards.
    pub fanout: Option<u64>,
    /// Field 7 `mode` (UnixFS 1.5): permission bits.
    pub mode: Option<u32>,
    /// Field 8 `mtime` (UnixFS 1.5).
    pub mtime: Option<Mtime>,
}

impl<'a> UnixfsData<'a> {
    /// A message of the given type with every optional field unset.
    pub(crate) fn new(kind: DataType) -> Self {
        UnixfsData {
            kind,
            data: None,
            filesize: None,
            blocksizes: &[],
            hash_type: None,
            fanout: None,
            mode: None,
            mtime: None,
        }
    }

    /// The encoded message.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.data.map_or(0, <[u8]>::len));
        put_key(&mut out, 1, 0);
        put_varint(&mut out, self.kind as u64);
        if let Some(d) = self.data {
            put_bytes(&mut out, 2, d);
        }
        if let Some(s) = self.filesize {
            put_key(&mut out, 3, 0);
            put_varint(&mut out, s);
        }
        // proto2 `repeated uint64` without [packed=true]: one key per value, as Go writes it.
        for &b in self.blocksizes {
            put_key(&mut out, 4, 0);
            put_varint(&mut out, b);
        }
        if let Some(h) = self.hash_type {
            put_key(&mut out, 5, 0);
            put_varint(&mut out, h);
        }
        if let Some(f) = self.fanout {
            put_key(&mut out, 6, 0);
            put_varint(&mut out, f);
        }
        if let Some(m) = self.mode {
            put_key(&mut out, 7, 0);
            put_varint(&mut out, u64::from(m));
        }
        if let Some(t) = self.mtime {
            let mut ts = Vec::with_capacity(16);
            put_key(&mut ts, 1, 0);
            // int64 is written as its two's complement (10 bytes when negative).
            put_varint(&mut ts, t.seconds as u64);
            if t.nanos > 0 {
                put_key(&mut ts, 2, 5);
                ts.extend_from_slice(&t.nanos.to_le_bytes());
            }
            put_bytes(&mut out, 8, &ts);
        }
        out
    }
}

/// One dag-pb link as the importer writes it.
#[derive(Debug, Clone)]
pub(crate) struct PbLink {
    /// `Hash`: the child's CID, as bytes.
    pub cid: Cid,
    /// `Name`: empty in file nodes, the entry name in directories, `XX`+name in HAMT shards.
    pub name: String,
    /// `Tsize`: the child's cumulative DAG size in bytes.
    pub tsize: u64,
}

/// Encodes a dag-pb node: every link (`Hash`, `Name`, `Tsize`) in the given order, then `Data`.
pub(crate) fn encode_node(links: &[PbLink], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 8 + links.len() * 48);
    let mut link = Vec::with_capacity(96);
    for l in links {
        link.clear();
        put_bytes(&mut link, 1, &l.cid.to_bytes());
        put_bytes(&mut link, 2, l.name.as_bytes());
        put_key(&mut link, 3, 0);
        put_varint(&mut link, l.tsize);
        put_bytes(&mut out, 2, &link);
    }
    put_bytes(&mut out, 1, data);
    out
}

/// Appends a field key: the field number and wire type (0 varint, 2 bytes, 5 fixed32).
fn put_key(out: &mut Vec<u8>, field: u32, wire: u8) {
    put_varint(out, (u64::from(field) << 3) | u64::from(wire));
}

/// Appends a length-delimited field (bytes, string or embedded message).
fn put_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_key(out, field, 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Appends `v` as a protobuf (LEB128) varint.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_data_is_kubos() {
        // QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH is `0a 04 08 02 18 00`.
        let mut d = UnixfsData::new(DataType::File);
        d.filesize = Some(0);
        assert_eq!(d.encode(), [0x08, 0x02, 0x18, 0x00]);
        assert_eq!(
            encode_node(&[], &d.encode()),
            [0x0a, 0x04, 0x08, 0x02, 0x18, 0x00]
        );
    }

    #[test]
    fn mtime_and_negative_seconds() {
        let mut d = UnixfsData::new(DataType::Directory);
        d.mode = Some(0o755);
        d.mtime = Some(Mtime {
            seconds: -1,
            nanos: 5,
        });
        let e = d.encode();
        assert_eq!(&e[..5], &[0x08, 0x01, 0x38, 0xed, 0x03]);
        // field 8, length 16: key + 10-byte varint of -1, key + fixed32.
        assert_eq!(&e[5..7], &[0x42, 16]);
        assert_eq!(e.len(), 7 + 16);
        assert_eq!(&e[e.len() - 5..], &[0x15, 5, 0, 0, 0]);
    }

    #[test]
    fn node_decodes_with_ipld_dagpb() {
        let cid: Cid = "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"
            .parse()
            .unwrap();
        let links = vec![PbLink {
            cid,
            name: String::new(),
            tsize: 6,
        }];
        let bytes = encode_node(&links, &[0x08, 0x02]);
        let node = ipld_dagpb::PbNode::from_bytes(bytes.clone().into()).unwrap();
        assert_eq!(node.links.len(), 1);
        assert_eq!(node.links[0].cid, cid);
        assert_eq!(node.links[0].name.as_deref(), Some(""));
        assert_eq!(node.links[0].size, Some(6));
        // Re-encoding through ipld-dagpb gives the same bytes: ours are canonical dag-pb.
        assert_eq!(&node.into_bytes()[..], &bytes[..]);
    }
}

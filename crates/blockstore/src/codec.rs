//! IPLD codecs: the multicodec names Kubo accepts, and link extraction for the codecs a DAG walk needs.

use cid::Cid;
use ipld_core::codec::Links;

use crate::error::{BlockstoreError, Result};

/// `raw`: opaque bytes, no links.
pub const RAW: u64 = 0x55;
/// `dag-pb`: the protobuf DAG format of UnixFS.
pub const DAG_PB: u64 = 0x70;
/// `dag-cbor`: CBOR with CIDs as tag 42.
pub const DAG_CBOR: u64 = 0x71;
/// `libp2p-key`: a public key, no links.
pub const LIBP2P_KEY: u64 = 0x72;
/// `dag-json`: JSON with CIDs as `{"/": ...}`.
pub const DAG_JSON: u64 = 0x0129;
/// `json`: plain JSON, no links.
pub const JSON: u64 = 0x0200;
/// `cbor`: plain CBOR, no links.
pub const CBOR: u64 = 0x51;

/// Codec names and codes, as go-cid's `Codecs` table names them (the ones IPFS users meet).
const NAMES: &[(&str, u64)] = &[
    ("raw", RAW),
    ("dag-pb", DAG_PB),
    ("protobuf", DAG_PB),
    ("dag-cbor", DAG_CBOR),
    ("cbor", CBOR),
    ("libp2p-key", LIBP2P_KEY),
    ("dag-json", DAG_JSON),
    ("json", JSON),
    ("dag-jose", 0x85),
    ("git-raw", 0x78),
    ("eth-block", 0x90),
    ("eth-block-list", 0x91),
    ("eth-tx-trie", 0x92),
    ("eth-tx", 0x93),
    ("eth-tx-receipt-trie", 0x94),
    ("eth-tx-receipt", 0x95),
    ("eth-state-trie", 0x96),
    ("eth-account-snapshot", 0x97),
    ("eth-storage-trie", 0x98),
    ("bitcoin-block", 0xb0),
    ("bitcoin-tx", 0xb1),
    ("zcash-block", 0xc0),
    ("zcash-tx", 0xc1),
    ("fil-commitment-unsealed", 0xf101),
    ("fil-commitment-sealed", 0xf102),
];

/// The code of a codec name (`"dag-pb"` → `0x70`); `protobuf` is Kubo's legacy alias of dag-pb.
pub fn codec_from_name(name: &str) -> Result<u64> {
    NAMES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, c)| *c)
        .ok_or_else(|| BlockstoreError::UnknownCodec(format!("{name:?}")))
}

/// The canonical name of a codec code (`0x70` → `"dag-pb"`).
pub fn codec_name(code: u64) -> Result<&'static str> {
    NAMES
        .iter()
        .find(|(_, c)| *c == code)
        .map(|(n, _)| *n)
        .ok_or_else(|| BlockstoreError::UnknownCodec(format!("0x{code:x}")))
}

/// Whether `code` is a codec this store knows by name.
pub fn is_known_codec(code: u64) -> bool {
    codec_name(code).is_ok()
}

/// The CIDs that a block links to, in the order its encoding lists them.
///
/// `raw`, `libp2p-key`, `json` and `cbor` blocks have no links; `dag-pb` and `dag-cbor` are decoded.
/// Any other codec is [`BlockstoreError::UnsupportedDagCodec`]: a DAG walk must not guess.
pub fn links(cid: &Cid, data: &[u8]) -> Result<Vec<Cid>> {
    let decode = |reason: String| BlockstoreError::Decode { cid: *cid, reason };
    match cid.codec() {
        RAW | LIBP2P_KEY | JSON | CBOR => Ok(Vec::new()),
        DAG_PB => {
            let mut out = Vec::new();
            ipld_dagpb::links(data, &mut out).map_err(|e| decode(e.to_string()))?;
            Ok(out)
        }
        DAG_CBOR => Ok(serde_ipld_dagcbor::codec::DagCborCodec::links(data)
            .map_err(|e| decode(e.to_string()))?
            .collect()),
        codec => Err(BlockstoreError::UnsupportedDagCodec { cid: *cid, codec }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Block;

    #[test]
    fn names_round_trip() {
        assert_eq!(codec_from_name("dag-pb").unwrap(), DAG_PB);
        assert_eq!(codec_from_name("protobuf").unwrap(), DAG_PB);
        assert_eq!(codec_name(DAG_CBOR).unwrap(), "dag-cbor");
        let err = codec_from_name("dag-nonsense").unwrap_err();
        assert_eq!(err.to_string(), r#"unknown codec "dag-nonsense""#);
        assert!(matches!(
            codec_name(0x12345),
            Err(BlockstoreError::UnknownCodec(_))
        ));
    }

    #[test]
    fn dag_cbor_links_are_found() {
        let leaf = Block::from_data(RAW, b"leaf".to_vec()).unwrap();
        let mut map = std::collections::BTreeMap::new();
        map.insert("a".to_string(), ipld_core::ipld::Ipld::Link(*leaf.cid()));
        map.insert(
            "b".to_string(),
            ipld_core::ipld::Ipld::List(vec![ipld_core::ipld::Ipld::Link(*leaf.cid())]),
        );
        let bytes = serde_ipld_dagcbor::to_vec(&ipld_core::ipld::Ipld::Map(map)).unwrap();
        let node = Block::from_data(DAG_CBOR, bytes).unwrap();
        assert_eq!(
            links(node.cid(), node.data()).unwrap(),
            vec![*leaf.cid(); 2]
        );
    }

    #[test]
    fn garbage_is_a_decode_error() {
        let cid = Block::from_data(DAG_PB, vec![0xff, 0xff, 0xff]).unwrap();
        assert!(matches!(
            links(cid.cid(), cid.data()),
            Err(BlockstoreError::Decode { .. })
        ));
        let cid = Block::from_data(DAG_CBOR, vec![0x9f; 10_000]).unwrap();
        assert!(matches!(
            links(cid.cid(), cid.data()),
            Err(BlockstoreError::Decode { .. })
        ));
    }
}

//! The wire format of js-libp2p's `@libp2p/pubsub-peer-discovery`: on the topic
//! [`DISCOVERY_TOPIC`], each peer periodically publishes a protobuf `Peer { bytes publicKey = 1;
//! repeated bytes addrs = 2; }` (its protobuf-encoded public key and its multiaddrs in binary).
//! The gossipsub message carrying it is signed, so a record cannot claim another peer's key.

use libp2p::identity::PublicKey;
use libp2p::{Multiaddr, PeerId};
use prost::Message;

use crate::error::BootstrapError;

/// The topic js-libp2p's pubsub peer discovery uses by default.
pub const DISCOVERY_TOPIC: &str = "_peer-discovery._p2p._pubsub";

/// The largest record accepted: a key and a few dozen addresses fit easily.
pub const MAX_RECORD: usize = 16 * 1024;

#[derive(Clone, PartialEq, prost::Message)]
struct PeerPb {
    #[prost(bytes = "vec", tag = "1")]
    public_key: Vec<u8>,
    #[prost(bytes = "vec", repeated, tag = "2")]
    addrs: Vec<Vec<u8>>,
}

/// A decoded announcement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerRecord {
    /// The announcing peer (derived from its public key).
    pub peer_id: PeerId,
    /// Its addresses (undecodable ones are skipped).
    pub addrs: Vec<Multiaddr>,
}

/// Encodes this node's announcement.
pub fn encode_record(key: &PublicKey, addrs: &[Multiaddr]) -> Vec<u8> {
    PeerPb {
        public_key: key.encode_protobuf(),
        addrs: addrs.iter().map(|a| a.to_vec()).collect(),
    }
    .encode_to_vec()
}

/// Decodes an announcement; a bad record is an error, never a panic.
pub fn decode_record(bytes: &[u8]) -> Result<PeerRecord, BootstrapError> {
    let bad = |m: String| BootstrapError::InvalidEntry {
        entry: "pubsub discovery record".into(),
        reason: m,
    };
    if bytes.len() > MAX_RECORD {
        return Err(bad(format!(
            "{} bytes, over the {MAX_RECORD}-byte limit",
            bytes.len()
        )));
    }
    let pb = PeerPb::decode(bytes).map_err(|e| bad(e.to_string()))?;
    let key = PublicKey::try_decode_protobuf(&pb.public_key)
        .map_err(|e| bad(format!("public key: {e}")))?;
    let addrs = pb
        .addrs
        .into_iter()
        .filter_map(|a| Multiaddr::try_from(a).ok())
        .collect();
    Ok(PeerRecord {
        peer_id: key.to_peer_id(),
        addrs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        let key = libp2p::identity::Keypair::generate_ed25519();
        let addrs: Vec<Multiaddr> = vec!["/ip4/127.0.0.1/tcp/4001".parse().unwrap()];
        let rec = decode_record(&encode_record(&key.public(), &addrs)).unwrap();
        assert_eq!(rec.peer_id, key.public().to_peer_id());
        assert_eq!(rec.addrs, addrs);
        assert!(decode_record(b"\xff\xff\xff").is_err());
        assert!(decode_record(&[]).is_err(), "no key");
        assert!(decode_record(&vec![0u8; MAX_RECORD + 1]).is_err());
    }
}

//! Value records in the DHT (`PUT_VALUE`/`GET_VALUE`): which ones cairn accepts, and which of
//! several wins. This is Kubo's namespaced validator (go-libp2p-record's
//! `NamespacedValidator` with the `ipns` and `pk` namespaces): a key is `/<namespace>/<bytes>`,
//! and a record under a namespace nobody validates is refused, so the DHT only ever carries
//! IPNS records and public keys.
//!
//! - `/ipns/<multihash of a peer id>`: a signed IPNS record ([`cairn_ipns`]), valid and not
//!   expired, signed by that peer's key; among several, the IPNS ordering picks the best.
//! - `/pk/<multihash of a peer id>`: a libp2p `PublicKey` protobuf whose peer id is that one.
//!   Any valid one is as good as another.

use std::cmp::Ordering;
use std::time::SystemTime;

/// The largest value record cairn stores or sends, in bytes: the IPNS record limit (10 KiB, the
/// IPNS spec's); a public key is smaller.
pub const MAX_VALUE_BYTES: usize = cairn_ipns::MAX_RECORD_SIZE;

/// Why a value record is refused; the texts are Kubo's (go-libp2p-record, boxo `ipns`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The key has no `/<namespace>/` prefix.
    #[error("invalid record keytype")]
    BadKey,
    /// The namespace is not `ipns` or `pk`.
    #[error("invalid record keytype")]
    UnknownNamespace,
    /// A `/pk/` record whose key does not hash to the peer id in the key, or is no key.
    #[error("public key does not match storage key")]
    PublicKeyMismatch,
    /// A put of a record worse than the one this node holds (go-libp2p-kad-dht's text).
    #[error("can't replace a newer value with an older value")]
    Outdated,
    /// An IPNS record that failed validation.
    #[error("{0}")]
    Ipns(String),
}

/// The namespace of a record key, `ipns` in `/ipns/...`.
fn namespace(key: &[u8]) -> Result<(&[u8], &[u8]), RecordError> {
    let rest = key.strip_prefix(b"/").ok_or(RecordError::BadKey)?;
    let slash = rest
        .iter()
        .position(|b| *b == b'/')
        .ok_or(RecordError::BadKey)?;
    Ok((&rest[..slash], &rest[slash + 1..]))
}

/// Checks `value` as a record under `key` at time `now`.
///
/// # Errors
/// [`RecordError`] saying why it is refused.
pub fn validate(key: &[u8], value: &[u8], now: SystemTime) -> Result<(), RecordError> {
    match namespace(key)? {
        (b"ipns", _) => cairn_ipns::validate_routing_record(key, value, now)
            .map(|_| ())
            .map_err(|e| RecordError::Ipns(e.to_string())),
        (b"pk", _) => cairn_ipns::validate_public_key_record(key, value)
            .map(|_| ())
            .map_err(|_| RecordError::PublicKeyMismatch),
        _ => Err(RecordError::UnknownNamespace),
    }
}

/// How record `a` compares with record `b` under `key` (both already valid): `Greater` if `a`
/// is better. For IPNS, the higher sequence, then the later end of validity (the spec's
/// order); for anything else they are equal, and the first one seen stays.
pub fn compare(key: &[u8], a: &[u8], b: &[u8]) -> Ordering {
    if let Ok((b"ipns", _)) = namespace(key)
        && let (Ok(a), Ok(b)) = (
            cairn_ipns::IpnsRecord::decode(a),
            cairn_ipns::IpnsRecord::decode(b),
        )
    {
        return cairn_ipns::compare(&a, &b);
    }
    Ordering::Equal
}

/// The index of the best of `values` under `key` (the first of equals), if any.
pub fn select(key: &[u8], values: &[Vec<u8>]) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, v) in values.iter().enumerate() {
        match best {
            None => best = Some(i),
            Some(b) if compare(key, v, &values[b]) == Ordering::Greater => best = Some(i),
            Some(_) => {}
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_key_records_must_match_their_key() {
        let kp = libp2p::identity::Keypair::generate_ed25519();
        let other = libp2p::identity::Keypair::generate_ed25519();
        let key = [b"/pk/".as_slice(), &kp.public().to_peer_id().to_bytes()].concat();
        let now = SystemTime::now();
        assert_eq!(validate(&key, &kp.public().encode_protobuf(), now), Ok(()));
        assert_eq!(
            validate(&key, &other.public().encode_protobuf(), now),
            Err(RecordError::PublicKeyMismatch)
        );
        assert_eq!(
            validate(&key, b"junk", now),
            Err(RecordError::PublicKeyMismatch)
        );
    }

    #[test]
    fn other_namespaces_are_refused() {
        let now = SystemTime::now();
        assert_eq!(
            validate(b"/v/x", b"y", now),
            Err(RecordError::UnknownNamespace)
        );
        assert_eq!(validate(b"plain", b"y", now), Err(RecordError::BadKey));
        assert_eq!(validate(b"", b"", now), Err(RecordError::BadKey));
    }
}

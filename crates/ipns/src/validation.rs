//! Record verification (<https://specs.ipfs.tech/ipns/ipns-record/#record-verification>), as
//! boxo's `ipns.ValidateWithName`, and the two DHT record validators Kubo registers: `/ipns/`
//! (boxo `ipns.Validator`) and `/pk/` (go-libp2p-record `PublicKeyValidator`).

use std::time::SystemTime;

use libp2p::identity::{PeerId, PublicKey};

use crate::record::{
    KEY_SEQUENCE, KEY_TTL, KEY_VALIDITY, KEY_VALIDITY_TYPE, KEY_VALUE, signature_v2_payload,
};
use crate::{IpnsError, IpnsRecord, MAX_RECORD_SIZE};

/// The DHT key prefix of IPNS records: `/ipns/` ++ the name's multihash bytes.
pub const IPNS_PREFIX: &[u8] = b"/ipns/";

/// The DHT key prefix of public keys: `/pk/` ++ the peer id's multihash bytes.
pub const PK_PREFIX: &[u8] = b"/pk/";

/// Verifies `record` for the name `name` at time `now`, following the spec's steps and boxo's
/// order, failing on the first error:
///
/// 1. the record is at most 10 KiB ([`IpnsError::RecordTooLarge`]);
/// 2. `signatureV2` is present ([`IpnsError::MissingSignatureV2`]; V1-only records, which have no
///    `data` either, are already refused by [`IpnsRecord::decode`]);
/// 3. the public key: the embedded one, which must hash to `name`
///    ([`IpnsError::PublicKeyMismatch`]), or the one `name` inlines
///    ([`IpnsError::PublicKeyNotFound`] for RSA/ECDSA names without an embedded key);
/// 4. `signatureV2` verifies over `"ipns-signature:" ++ data` ([`IpnsError::Signature`]);
/// 5. if `signatureV1` or `value` is present, every V1 field equals its DAG-CBOR counterpart
///    ([`IpnsError::FieldMismatch`]; an absent V1 field counts as empty or zero, as in Go);
/// 6. the validity type is EOL ([`IpnsError::UnrecognizedValidity`]) and the EOL parses
///    ([`IpnsError::InvalidValidity`]);
/// 7. `now` is not after the EOL ([`IpnsError::Expired`]; a record is still valid at its EOL);
/// 8. the TTL is not negative ([`IpnsError::NegativeTtl`], as boxo since v0.26).
///
/// # Errors
///
/// The first failed check, as listed.
pub fn validate(record: &IpnsRecord, name: &PeerId, now: SystemTime) -> Result<(), IpnsError> {
    let size = record.as_bytes().len();
    if size > MAX_RECORD_SIZE {
        return Err(IpnsError::RecordTooLarge { size });
    }
    let signature = record.signature_v2().ok_or(IpnsError::MissingSignatureV2)?;
    let key = record.public_key(name)?;
    verify_signature_v2(record, &key, signature)?;
    if record.signature_v1().is_some()
        || record
            .entry()
            .value
            .as_deref()
            .is_some_and(|v| !v.is_empty())
    {
        check_v1_fields(record)?;
    }
    let eol = record.validity()?;
    if now > eol {
        return Err(IpnsError::Expired {
            eol: String::from_utf8_lossy(record.validity_bytes()).into_owned(),
        });
    }
    if record.ttl_nanos_signed().is_some_and(|ttl| ttl < 0) {
        return Err(IpnsError::NegativeTtl);
    }
    Ok(())
}

/// Checks `signatureV2` against `key`.
fn verify_signature_v2(
    record: &IpnsRecord,
    key: &PublicKey,
    signature: &[u8],
) -> Result<(), IpnsError> {
    if key.verify(&signature_v2_payload(record.data()), signature) {
        Ok(())
    } else {
        Err(IpnsError::Signature)
    }
}

/// Spec step 7 (boxo `validateCborDataMatchesPbData`): the legacy protobuf copies must equal the
/// signed DAG-CBOR fields. Go's getters read an absent field as empty bytes or zero.
fn check_v1_fields(record: &IpnsRecord) -> Result<(), IpnsError> {
    let entry = record.entry();
    let mismatch = |field| Err(IpnsError::FieldMismatch { field });
    if entry.value.as_deref().unwrap_or_default() != record.value() {
        return mismatch(KEY_VALUE);
    }
    if entry.validity.as_deref().unwrap_or_default() != record.validity_bytes() {
        return mismatch(KEY_VALIDITY);
    }
    // Go: int64(entry.GetValidityType()) != ndInt.
    if i64::from(entry.validity_type.unwrap_or(0)) as u64 != record.validity_type() {
        return mismatch(KEY_VALIDITY_TYPE);
    }
    if entry.sequence.unwrap_or(0) != record.sequence() {
        return mismatch(KEY_SEQUENCE);
    }
    // Go fails here when data has no TTL (the lookup errors); a mismatch says as much.
    if Some(entry.ttl.unwrap_or(0)) != record.ttl_raw() {
        return mismatch(KEY_TTL);
    }
    Ok(())
}

/// The DHT key of a name's IPNS record: `b"/ipns/"` ++ the peer id's multihash bytes (the spec's
/// "routing record" key; binary, not text).
pub fn routing_key(peer: &PeerId) -> Vec<u8> {
    let mut key = IPNS_PREFIX.to_vec();
    key.extend_from_slice(&peer.to_bytes());
    key
}

/// The name a DHT `/ipns/` key is for, as boxo's `ipns.NameFromRoutingKey`.
///
/// # Errors
///
/// [`IpnsError::InvalidName`] when the key lacks the `/ipns/` prefix or the rest is not a peer id
/// (an identity or SHA-256 multihash).
pub fn peer_from_routing_key(key: &[u8]) -> Result<PeerId, IpnsError> {
    let id = key.strip_prefix(IPNS_PREFIX).ok_or_else(|| {
        IpnsError::InvalidName("the routing key does not start with /ipns/".into())
    })?;
    PeerId::from_bytes(id).map_err(|e| IpnsError::InvalidName(format!("routing key: {e}")))
}

/// The DHT validator for `/ipns/` keys (boxo `ipns.Validator.Validate` without a key book):
/// decodes `value` and validates it for the name in `key` at `now`.
///
/// # Errors
///
/// [`IpnsError::InvalidName`] for a bad key, then those of [`IpnsRecord::decode`] and
/// [`validate`].
pub fn validate_routing_record(
    key: &[u8],
    value: &[u8],
    now: SystemTime,
) -> Result<IpnsRecord, IpnsError> {
    let name = peer_from_routing_key(key)?;
    let record = IpnsRecord::decode(value)?;
    validate(&record, &name, now)?;
    Ok(record)
}

/// The DHT key of a peer's public key: `b"/pk/"` ++ the peer id's multihash bytes.
pub fn public_key_routing_key(peer: &PeerId) -> Vec<u8> {
    let mut key = PK_PREFIX.to_vec();
    key.extend_from_slice(&peer.to_bytes());
    key
}

/// The DHT validator for `/pk/` keys (go-libp2p-record `PublicKeyValidator`): `value` is a public
/// key in libp2p's protobuf encoding whose peer id must be the multihash after `/pk/` in `key`.
/// Returns the key. (Any valid value is as good as another: such a validator's `Select` always
/// takes the first.)
///
/// # Errors
///
/// [`IpnsError::InvalidPublicKeyRecord`] when the key is not `/pk/<multihash>`, the value is not
/// a public key, or the key's peer id differs.
pub fn validate_public_key_record(key: &[u8], value: &[u8]) -> Result<PublicKey, IpnsError> {
    let invalid = |why: String| IpnsError::InvalidPublicKeyRecord(why);
    let hash = key
        .strip_prefix(PK_PREFIX)
        .ok_or_else(|| invalid("namespace not 'pk'".into()))?;
    multihash::Multihash::<64>::from_bytes(hash)
        .map_err(|e| invalid(format!("key did not contain valid multihash: {e}")))?;
    let public =
        PublicKey::try_decode_protobuf(value).map_err(|e| invalid(format!("value: {e}")))?;
    if public.to_peer_id().to_bytes() != hash {
        return Err(invalid("public key does not match storage key".into()));
    }
    Ok(public)
}

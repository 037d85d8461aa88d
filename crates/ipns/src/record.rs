//! [`IpnsRecord`]: decoding, creating and ordering IPNS records
//! (<https://specs.ipfs.tech/ipns/ipns-record/#ipns-record>), as boxo's `ipns.Record`,
//! `ipns.NewRecord` and `ipns.Validator.Select` (boxo v0.11, Kubo 0.22, and unchanged since in
//! what matters for the bytes).
//!
//! A decoded record keeps the bytes it was decoded from: they are what is stored, republished and
//! compared, never a re-encoding.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use cid::Cid;
use ipld_core::ipld::Ipld;
use libp2p::identity::{Keypair, PeerId, PublicKey};
use prost::Message;

use crate::proto::{IpnsEntry, ValidityType};
use crate::validity::{format_validity, parse_validity};
use crate::{IpnsError, MAX_RECORD_SIZE};

/// The DAG-CBOR key of the content path.
pub(crate) const KEY_VALUE: &str = "Value";
/// The DAG-CBOR key of the EOL string.
pub(crate) const KEY_VALIDITY: &str = "Validity";
/// The DAG-CBOR key of the validity type.
pub(crate) const KEY_VALIDITY_TYPE: &str = "ValidityType";
/// The DAG-CBOR key of the sequence number.
pub(crate) const KEY_SEQUENCE: &str = "Sequence";
/// The DAG-CBOR key of the TTL (nanoseconds).
pub(crate) const KEY_TTL: &str = "TTL";

/// The prefix of the bytes signed by `signatureV2`: `"ipns-signature:" ++ data`.
pub const SIGNATURE_V2_PREFIX: &[u8] = b"ipns-signature:";

/// The value boxo reads an empty `Value` as: the identity CID of zero bytes.
pub const NOOP_VALUE: &str = "/ipfs/bafkqaaa";

/// The multihash code of `identity`: a peer id that inlines its public key.
const IDENTITY: u64 = 0x00;

/// An IPNS record, decoded (or created) but not yet validated: see [`crate::validate`].
///
/// The accessors read the signed DAG-CBOR `data`, never the legacy V1 protobuf copies (which
/// [`crate::validate`] checks against it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpnsRecord {
    /// The serialized protobuf, as received or as created.
    raw: Vec<u8>,
    /// The decoded protobuf.
    entry: IpnsEntry,
    /// `data[Value]`.
    value: Vec<u8>,
    /// `data[Validity]`.
    validity: Vec<u8>,
    /// `data[ValidityType]`, as Go's `uint64(int64)` reads it.
    validity_type: u64,
    /// `data[Sequence]`, as Go's `uint64(int64)` reads it.
    sequence: u64,
    /// `data[TTL]` in nanoseconds as Go's `uint64(int64)` reads it; `None` when absent.
    ttl: Option<u64>,
    /// The parsed EOL, when the validity type is EOL and the string parses.
    eol: Option<SystemTime>,
}

impl IpnsRecord {
    /// Decodes a serialized record (the protobuf `IpnsEntry`), as boxo's `ipns.UnmarshalRecord`.
    ///
    /// Checks, in order: the size (at most [`MAX_RECORD_SIZE`], 10 KiB), the protobuf, that
    /// `data` is present, and that it is a DAG-CBOR map with `Value` (bytes), `Validity`
    /// (bytes), `ValidityType` (integer) and `Sequence` (integer); `TTL` is optional (an
    /// integer when present). Extension keys are kept in [`IpnsRecord::data`] and otherwise
    /// ignored. Signatures, the V1 copies, the validity type and the EOL are left to
    /// [`crate::validate`].
    ///
    /// boxo reads the map's fields lazily, so it decodes a record without `Value` or `Sequence`
    /// and fails later when it needs them; the spec makes all five fields mandatory, and this
    /// requires the four it cannot work without up front.
    ///
    /// # Errors
    ///
    /// [`IpnsError::RecordTooLarge`], [`IpnsError::DataMissing`] (a V1-only record) or
    /// [`IpnsError::Malformed`].
    pub fn decode(bytes: &[u8]) -> Result<IpnsRecord, IpnsError> {
        if bytes.len() > MAX_RECORD_SIZE {
            return Err(IpnsError::RecordTooLarge { size: bytes.len() });
        }
        let entry =
            IpnsEntry::decode(bytes).map_err(|e| IpnsError::Malformed(format!("protobuf: {e}")))?;
        let data = match entry.data.as_deref() {
            Some(data) if !data.is_empty() => data,
            _ => return Err(IpnsError::DataMissing),
        };
        let map = match serde_ipld_dagcbor::from_slice::<Ipld>(data) {
            Ok(Ipld::Map(map)) => map,
            Ok(_) => return Err(IpnsError::Malformed("data is not a DAG-CBOR map".into())),
            Err(e) => return Err(IpnsError::Malformed(format!("data: {e}"))),
        };
        let value = required_bytes(&map, KEY_VALUE)?;
        let validity = required_bytes(&map, KEY_VALIDITY)?;
        let validity_type = required_int(&map, KEY_VALIDITY_TYPE)?;
        let sequence = required_int(&map, KEY_SEQUENCE)?;
        let ttl = match map.get(KEY_TTL) {
            None => None,
            Some(ttl) => Some(go_uint(ttl, KEY_TTL)?),
        };
        let eol = if validity_type == ValidityType::Eol as u64 {
            parse_validity(&validity).ok()
        } else {
            None
        };
        Ok(IpnsRecord {
            raw: bytes.to_vec(),
            entry,
            value,
            validity,
            validity_type,
            sequence,
            ttl,
            eol,
        })
    }

    /// Creates and signs a record, as boxo's `ipns.NewRecord` (Kubo's `name publish`).
    ///
    /// - `value`: the content path, e.g. `b"/ipfs/bafy..."` (stored as given).
    /// - `sequence`: the version; a republish of a newer value must use a higher one.
    /// - `eol`: when the record stops being valid (Kubo's default: 48 hours from now), written
    ///   as Go's `time.RFC3339Nano` in UTC (nanosecond precision).
    /// - `ttl`: how long resolvers may cache the record (Kubo's default: 5 minutes), stored in
    ///   nanoseconds and capped at `i64::MAX` nanoseconds (about 292 years), Go's
    ///   `time.Duration` range.
    /// - `v1_compatible`: also fill the legacy V1 fields (1 to 6) and `signatureV1` over
    ///   `value ++ validity ++ "EOL"`, for nodes older than go-ipfs 0.9 (boxo's default: on).
    /// - `embed_public_key`: embed the public key even when the peer id inlines it. It is always
    ///   embedded when the peer id cannot give it back (RSA and ECDSA ids are a SHA-256 of the
    ///   key; ed25519 and secp256k1 ids inline it).
    ///
    /// `data` is the DAG-CBOR map `{Value, Validity, ValidityType: 0, Sequence, TTL}` in DAG-CBOR
    /// key order (length first), signed as `"ipns-signature:" ++ data` (`signatureV2`). As in Go,
    /// `Sequence` is written as a signed 64-bit integer, so sequences above `i64::MAX` wrap to
    /// negative CBOR integers (and read back as the same `u64`).
    ///
    /// # Errors
    ///
    /// [`IpnsError::InvalidValidity`] when `eol` is outside years 0000 to 9999,
    /// [`IpnsError::Signing`] when the key fails to sign, [`IpnsError::RecordTooLarge`] when the
    /// record would exceed 10 KiB (spec, record creation step 6).
    pub fn create(
        keypair: &Keypair,
        value: &[u8],
        sequence: u64,
        eol: SystemTime,
        ttl: Duration,
        v1_compatible: bool,
        embed_public_key: bool,
    ) -> Result<IpnsRecord, IpnsError> {
        let validity = format_validity(eol)?.into_bytes();
        let ttl_nanos = i64::try_from(ttl.as_nanos()).unwrap_or(i64::MAX);
        let data = encode_data(value, &validity, sequence, ttl_nanos)?;
        let sign = |bytes: &[u8]| {
            keypair
                .sign(bytes)
                .map_err(|e| IpnsError::Signing(e.to_string()))
        };
        let signature_v2 = sign(&signature_v2_payload(&data))?;

        let mut entry = IpnsEntry {
            data: Some(data),
            signature_v2: Some(signature_v2),
            ..IpnsEntry::default()
        };
        if v1_compatible {
            entry.value = Some(value.to_vec());
            entry.validity_type = Some(ValidityType::Eol as i32);
            entry.sequence = Some(sequence);
            entry.validity = Some(validity);
            entry.ttl = Some(ttl_nanos as u64);
            entry.signature_v1 = Some(sign(&signature_v1_payload(&entry))?);
        }
        let public = keypair.public();
        if embed_public_key || !peer_inlines_key(&public.to_peer_id()) {
            entry.pub_key = Some(public.encode_protobuf());
        }
        let raw = entry.encode_to_vec();
        IpnsRecord::decode(&raw)
    }

    /// The serialized record (the bytes it was decoded from, or created as).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.raw.clone()
    }

    /// The serialized record, borrowed.
    pub fn as_bytes(&self) -> &[u8] {
        &self.raw
    }

    /// The decoded protobuf, legacy V1 fields included.
    pub fn entry(&self) -> &IpnsEntry {
        &self.entry
    }

    /// The signed value, `data[Value]`: normally a content path such as `/ipfs/bafy...` or
    /// `/ipns/k51...`; may be empty or, from old publishers, a binary CID (see
    /// [`IpnsRecord::value_path`]).
    pub fn value(&self) -> &[u8] {
        &self.value
    }

    /// The value as a content path string, as boxo's `Record.Value`: an empty value reads as
    /// [`NOOP_VALUE`], a value starting with `/` is taken as a path (it must be UTF-8; its
    /// segments are not checked here), anything else must be a binary CID and reads as
    /// `/ipfs/<cid>`.
    ///
    /// # Errors
    ///
    /// [`IpnsError::InvalidPath`] when the value is none of these.
    pub fn value_path(&self) -> Result<String, IpnsError> {
        if self.value.is_empty() {
            return Ok(NOOP_VALUE.to_owned());
        }
        if self.value[0] == b'/' {
            return String::from_utf8(self.value.clone())
                .map_err(|_| IpnsError::InvalidPath("the path is not UTF-8".into()));
        }
        let cid = Cid::try_from(self.value.as_slice())
            .map_err(|e| IpnsError::InvalidPath(format!("neither a path nor a binary CID: {e}")))?;
        Ok(format!("/ipfs/{cid}"))
    }

    /// The sequence number, `data[Sequence]`: higher is newer.
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// The validity type, `data[ValidityType]`: 0 (EOL) is the only one defined.
    pub fn validity_type(&self) -> u64 {
        self.validity_type
    }

    /// The signed validity string, `data[Validity]` (for EOL, an RFC 3339 time stamp).
    pub fn validity_bytes(&self) -> &[u8] {
        &self.validity
    }

    /// The end of life: the time after which the record is expired.
    ///
    /// # Errors
    ///
    /// [`IpnsError::UnrecognizedValidity`] when the validity type is not EOL,
    /// [`IpnsError::InvalidValidity`] when the string is not an RFC 3339 time stamp.
    pub fn validity(&self) -> Result<SystemTime, IpnsError> {
        if self.validity_type != ValidityType::Eol as u64 {
            return Err(IpnsError::UnrecognizedValidity(self.validity_type));
        }
        match self.eol {
            Some(eol) => Ok(eol),
            None => parse_validity(&self.validity),
        }
    }

    /// The cache hint, `data[TTL]` (nanoseconds on the wire); `None` when absent or negative.
    pub fn ttl(&self) -> Option<Duration> {
        let nanos = i64::try_from(self.ttl?).ok()?;
        Some(Duration::from_nanos(nanos as u64))
    }

    /// `data[TTL]` as a signed number of nanoseconds, as boxo reads it (`None` when absent).
    pub(crate) fn ttl_nanos_signed(&self) -> Option<i64> {
        self.ttl.map(|t| t as i64)
    }

    /// `data[TTL]` as Go's `uint64` (`None` when absent), for the V1 comparison.
    pub(crate) fn ttl_raw(&self) -> Option<u64> {
        self.ttl
    }

    /// The embedded public key (libp2p protobuf encoding), when the record carries one.
    pub fn public_key_bytes(&self) -> Option<&[u8]> {
        self.entry.pub_key.as_deref().filter(|k| !k.is_empty())
    }

    /// The legacy V1 signature, when present. Never used for verification.
    pub fn signature_v1(&self) -> Option<&[u8]> {
        self.entry.signature_v1.as_deref().filter(|s| !s.is_empty())
    }

    /// The V2 signature over `"ipns-signature:" ++ data`, when present.
    pub fn signature_v2(&self) -> Option<&[u8]> {
        self.entry.signature_v2.as_deref().filter(|s| !s.is_empty())
    }

    /// The signed DAG-CBOR document, as received (never empty: [`IpnsRecord::decode`] refuses
    /// records without it).
    pub fn data(&self) -> &[u8] {
        self.entry.data.as_deref().unwrap_or_default()
    }

    /// The public key to verify this record with, for the name `name`, as boxo's
    /// `ipns.ExtractPublicKey`: the embedded key, which must hash to `name`, or else the key the
    /// peer id inlines (identity multihash: ed25519, secp256k1).
    ///
    /// # Errors
    ///
    /// [`IpnsError::InvalidPublicKey`], [`IpnsError::PublicKeyMismatch`] or
    /// [`IpnsError::PublicKeyNotFound`].
    pub fn public_key(&self, name: &PeerId) -> Result<PublicKey, IpnsError> {
        if let Some(bytes) = self.public_key_bytes() {
            let key = PublicKey::try_decode_protobuf(bytes)
                .map_err(|e| IpnsError::InvalidPublicKey(e.to_string()))?;
            if key.to_peer_id() != *name {
                return Err(IpnsError::PublicKeyMismatch);
            }
            return Ok(key);
        }
        inlined_public_key(name)?.ok_or(IpnsError::PublicKeyNotFound)
    }
}

/// The public key a peer id inlines (identity multihash), `Ok(None)` for hashed ids (RSA, ECDSA).
///
/// # Errors
///
/// [`IpnsError::InvalidPublicKey`] when the inlined bytes are not a public key.
pub fn inlined_public_key(peer: &PeerId) -> Result<Option<PublicKey>, IpnsError> {
    let multihash: &multihash::Multihash<64> = peer.as_ref();
    if multihash.code() != IDENTITY {
        return Ok(None);
    }
    PublicKey::try_decode_protobuf(multihash.digest())
        .map(Some)
        .map_err(|e| IpnsError::InvalidPublicKey(format!("inlined in the name: {e}")))
}

/// Whether a peer id inlines its public key (identity multihash).
fn peer_inlines_key(peer: &PeerId) -> bool {
    let multihash: &multihash::Multihash<64> = peer.as_ref();
    multihash.code() == IDENTITY
}

/// The bytes `signatureV2` signs: `"ipns-signature:" ++ data`.
pub fn signature_v2_payload(data: &[u8]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(SIGNATURE_V2_PREFIX.len() + data.len());
    payload.extend_from_slice(SIGNATURE_V2_PREFIX);
    payload.extend_from_slice(data);
    payload
}

/// The bytes the legacy `signatureV1` signs: `value ++ validity ++ validityType`, the type as Go
/// prints the enum (`"EOL"` for 0, the number otherwise).
pub fn signature_v1_payload(entry: &IpnsEntry) -> Vec<u8> {
    let mut payload = entry.value.clone().unwrap_or_default();
    payload.extend_from_slice(entry.validity.as_deref().unwrap_or_default());
    match entry.validity_type.unwrap_or(0) {
        0 => payload.extend_from_slice(b"EOL"),
        other => payload.extend_from_slice(other.to_string().as_bytes()),
    }
    payload
}

/// The DAG-CBOR `data` map boxo's `createNode` writes (keys in DAG-CBOR order: `TTL`, `Value`,
/// `Sequence`, `Validity`, `ValidityType`).
fn encode_data(
    value: &[u8],
    validity: &[u8],
    sequence: u64,
    ttl_nanos: i64,
) -> Result<Vec<u8>, IpnsError> {
    let map = BTreeMap::from([
        (KEY_VALUE.to_owned(), Ipld::Bytes(value.to_vec())),
        (KEY_VALIDITY.to_owned(), Ipld::Bytes(validity.to_vec())),
        (
            KEY_VALIDITY_TYPE.to_owned(),
            Ipld::Integer(ValidityType::Eol as i128),
        ),
        // Go: basicnode.NewInt(int64(seq)).
        (
            KEY_SEQUENCE.to_owned(),
            Ipld::Integer(i128::from(sequence as i64)),
        ),
        (KEY_TTL.to_owned(), Ipld::Integer(i128::from(ttl_nanos))),
    ]);
    serde_ipld_dagcbor::to_vec(&Ipld::Map(map))
        .map_err(|e| IpnsError::Malformed(format!("encoding data: {e}")))
}

/// A required byte-string field of `data`.
fn required_bytes(map: &BTreeMap<String, Ipld>, key: &'static str) -> Result<Vec<u8>, IpnsError> {
    match map.get(key) {
        Some(Ipld::Bytes(bytes)) => Ok(bytes.clone()),
        Some(_) => Err(IpnsError::Malformed(format!(
            "data[{key}] is not a byte string"
        ))),
        None => Err(IpnsError::Malformed(format!("data[{key}] is missing"))),
    }
}

/// A required integer field of `data`, as Go reads it.
fn required_int(map: &BTreeMap<String, Ipld>, key: &'static str) -> Result<u64, IpnsError> {
    match map.get(key) {
        Some(value) => go_uint(value, key),
        None => Err(IpnsError::Malformed(format!("data[{key}] is missing"))),
    }
}

/// An integer of `data` as boxo reads it, `uint64(node.AsInt())`: a signed 64-bit integer
/// reinterpreted as unsigned. CBOR unsigned integers above `i64::MAX` (which Go refuses, and
/// js-ipns may write for huge sequences) are taken as they are.
fn go_uint(value: &Ipld, key: &'static str) -> Result<u64, IpnsError> {
    let Ipld::Integer(int) = value else {
        return Err(IpnsError::Malformed(format!(
            "data[{key}] is not an integer"
        )));
    };
    if let Ok(signed) = i64::try_from(*int) {
        return Ok(signed as u64);
    }
    u64::try_from(*int).map_err(|_| IpnsError::Malformed(format!("data[{key}] is out of range")))
}

/// Orders two records by recency, as boxo's `ipns.Validator.Select` (spec: "records can be
/// compared using the sequence number"): `Greater` means `a` is the better (newer) record.
///
/// 1. a record with a V2 signature beats one without;
/// 2. the higher sequence number wins;
/// 3. at equal sequence the later EOL wins (a record whose EOL cannot be read loses to one whose
///    can; boxo gives up on the whole selection instead);
/// 4. as boxo's final tie-break, the greater serialized bytes (lexicographic) win, so that every
///    node picks the same record; only identical records compare `Equal`.
///
/// It does not validate: check the records with [`crate::validate`] first.
pub fn compare(a: &IpnsRecord, b: &IpnsRecord) -> Ordering {
    a.signature_v2()
        .is_some()
        .cmp(&b.signature_v2().is_some())
        .then(a.sequence.cmp(&b.sequence))
        .then_with(|| a.validity().ok().cmp(&b.validity().ok()))
        .then_with(|| a.raw.cmp(&b.raw))
}

/// The index of the best record by [`compare`] (the first of equals), `None` for no records.
pub fn select_best(records: &[IpnsRecord]) -> Option<usize> {
    let mut best = 0;
    for (i, record) in records.iter().enumerate().skip(1) {
        if compare(&records[best], record) == Ordering::Less {
            best = i;
        }
    }
    (!records.is_empty()).then_some(best)
}

/// The DHT's `Select` for `/ipns/` values: the index of the best serialized record, as boxo's
/// `ipns.Validator.Select`.
///
/// # Errors
///
/// [`IpnsError::NoRecords`] for an empty list; the decoding error of the first value that does
/// not decode (boxo refuses the whole set then too).
pub fn select<V: AsRef<[u8]>>(values: &[V]) -> Result<usize, IpnsError> {
    let records = values
        .iter()
        .map(|v| IpnsRecord::decode(v.as_ref()))
        .collect::<Result<Vec<_>, _>>()?;
    select_best(&records).ok_or(IpnsError::NoRecords)
}

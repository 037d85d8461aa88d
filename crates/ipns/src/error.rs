//! The errors of the IPNS crate.
//!
//! The messages follow boxo's (`boxo/ipns/errors.go`) and go-ipns' older wording that Kubo users
//! see ("record signature verification failed", "record has expired", ...), so cairn's command
//! line and RPC can print them as Kubo does.

use crate::MAX_RECORD_SIZE;

/// Why an IPNS record, name or routing entry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IpnsError {
    /// The serialized record is over the spec's 10 KiB limit ([`MAX_RECORD_SIZE`]).
    #[error("record exceeds allowed size limit ({size} bytes, the limit is {MAX_RECORD_SIZE})")]
    RecordTooLarge {
        /// The record's size in bytes.
        size: usize,
    },
    /// The protobuf or its DAG-CBOR `data` could not be decoded, or a required field of `data`
    /// is missing or of the wrong type.
    #[error("record is malformed: {0}")]
    Malformed(String),
    /// The record has no DAG-CBOR `data` (field 9): a V1-only record, which boxo refuses.
    #[error("record is missing the dag-cbor data field")]
    DataMissing,
    /// The record has no `signatureV2` (field 8); V1 signatures are never trusted.
    #[error("record signature verification failed: the record has no signatureV2")]
    MissingSignatureV2,
    /// `signatureV2` does not verify against the public key.
    #[error("record signature verification failed")]
    Signature,
    /// A legacy V1 protobuf field differs from the signed DAG-CBOR field of the same name.
    #[error("field \"{field}\" did not match between protobuf and CBOR")]
    FieldMismatch {
        /// The DAG-CBOR key: `Value`, `Validity`, `ValidityType`, `Sequence` or `TTL`.
        field: &'static str,
    },
    /// `ValidityType` is not 0 (EOL), the only type the spec defines.
    #[error("record contains an unrecognized validity type {0}")]
    UnrecognizedValidity(u64),
    /// The EOL is not an RFC 3339 time stamp as Go's `time.RFC3339Nano` parses it, or a time to
    /// write is outside years 0000 to 9999.
    #[error("record contains an invalid validity: {0}")]
    InvalidValidity(String),
    /// The EOL (validity) is before the time the record was checked at.
    #[error("record has expired (validity {eol})")]
    Expired {
        /// The record's validity string, as signed.
        eol: String,
    },
    /// `TTL` is negative (boxo refuses this since v0.26: the spec's TTL is an unsigned cache hint).
    #[error("record is malformed: negative TTL")]
    NegativeTtl,
    /// The public key in the record does not hash to the name it was looked up under.
    #[error("record public key does not match the expected public key")]
    PublicKeyMismatch,
    /// The record carries no public key and the name does not inline one (RSA and ECDSA names
    /// are a hash of the key).
    #[error("public key not found: the record has none and the name does not inline it")]
    PublicKeyNotFound,
    /// The embedded public key could not be decoded.
    #[error("public key invalid: {0}")]
    InvalidPublicKey(String),
    /// An IPNS name (string or routing key) could not be parsed.
    #[error("name is invalid: {0}")]
    InvalidName(String),
    /// The name looks like a domain: DNSLink names are resolved through DNS, not IPNS records.
    #[error("{0:?} is a domain name: DNSLink is not supported here, only key names")]
    DnsLinkUnsupported(String),
    /// The record's `Value` is not a content path nor a binary CID.
    #[error("value is not a valid content path: {0}")]
    InvalidPath(String),
    /// The private key could not sign (a hardware or RSA backend failure).
    #[error("could not sign the record: {0}")]
    Signing(String),
    /// A `/pk/` routing entry is malformed or does not match its key.
    #[error("invalid public key record: {0}")]
    InvalidPublicKeyRecord(String),
    /// [`crate::select`] was given no records.
    #[error("no usable records in given set")]
    NoRecords,
}

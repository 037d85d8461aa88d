//! The IPNS record's wire form: the `IpnsEntry` protobuf of the spec
//! (<https://specs.ipfs.tech/ipns/ipns-record/#record-serialization-format>), which boxo calls
//! `IpnsRecord` (`boxo/ipns/pb/record.proto`), written out as prost structs by hand (no `protoc`).
//!
//! Every field has explicit presence (`optional`), as in boxo: a V1-compatible record carries
//! `validityType = EOL (0)` on the wire (`18 00`), which a proto3 field without presence would
//! drop. prost writes fields in the order declared here, which is field-number order, the order Go's
//! `proto.Marshal` uses, so a record built from the same values has the same bytes as Kubo's.

/// One IPNS record as carried on the wire (at most [`crate::MAX_RECORD_SIZE`] bytes).
///
/// Fields 1 to 6 are the legacy V1 copies of the signed DAG-CBOR document in `data` (field 9);
/// only `signature_v2` over `data` is trusted (see [`crate::validate`]).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct IpnsEntry {
    /// Legacy V1 copy of `data[Value]`: the content path, e.g. `/ipfs/bafy...`.
    #[prost(bytes = "vec", optional, tag = "1")]
    pub value: Option<Vec<u8>>,
    /// Legacy V1 signature over `value ++ validity ++ "EOL"`; never used for verification.
    #[prost(bytes = "vec", optional, tag = "2")]
    pub signature_v1: Option<Vec<u8>>,
    /// Legacy V1 copy of `data[ValidityType]` ([`ValidityType`]).
    #[prost(enumeration = "ValidityType", optional, tag = "3")]
    pub validity_type: Option<i32>,
    /// Legacy V1 copy of `data[Validity]`: the EOL as an RFC 3339 ASCII string.
    #[prost(bytes = "vec", optional, tag = "4")]
    pub validity: Option<Vec<u8>>,
    /// Legacy V1 copy of `data[Sequence]`.
    #[prost(uint64, optional, tag = "5")]
    pub sequence: Option<u64>,
    /// Legacy V1 copy of `data[TTL]`, in nanoseconds.
    #[prost(uint64, optional, tag = "6")]
    pub ttl: Option<u64>,
    /// The signer's public key in libp2p's protobuf encoding, when the name cannot inline it (RSA,
    /// ECDSA).
    #[prost(bytes = "vec", optional, tag = "7")]
    pub pub_key: Option<Vec<u8>>,
    /// The V2 signature over `"ipns-signature:" ++ data`: the one that is verified.
    #[prost(bytes = "vec", optional, tag = "8")]
    pub signature_v2: Option<Vec<u8>>,
    /// The signed DAG-CBOR map (`Value`, `Validity`, `ValidityType`, `Sequence`, `TTL`, and any
    /// extension keys).
    #[prost(bytes = "vec", optional, tag = "9")]
    pub data: Option<Vec<u8>>,
}

/// How a record's validity is expressed. The spec defines only [`ValidityType::Eol`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum ValidityType {
    /// `Validity` is an end-of-life time stamp: the record is valid until then.
    Eol = 0,
}

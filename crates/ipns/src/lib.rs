//! IPNS records for cairn: create, decode, validate and order them, byte-compatible with Kubo
//! 0.22 and later (boxo `ipns`, v0.11 on).
//!
//! An IPNS name is the multihash of a public key (a libp2p peer id, [`Name`]); an IPNS record
//! ([`IpnsRecord`], the spec's `IpnsEntry` protobuf, at most [`MAX_RECORD_SIZE`] bytes) says
//! which content path that name points at, signed by the key, with a sequence number and an end
//! of life. Spec: <https://specs.ipfs.tech/ipns/ipns-record/>.
//!
//! - [`IpnsRecord::create`] makes a record as Kubo's `ipfs name publish` does (V2 signature over
//!   the DAG-CBOR `data`, optional V1 fields and signature, the public key embedded when the name
//!   cannot carry it).
//! - [`IpnsRecord::decode`] reads one from the wire, keeping its bytes.
//! - [`validate`] is the spec's record verification; [`compare`], [`select_best`] and [`select`]
//!   pick the newest of several.
//! - [`routing_key`], [`peer_from_routing_key`], [`validate_routing_record`] and
//!   [`validate_public_key_record`] are what a DHT needs for the `/ipns/` and `/pk/` namespaces.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use cairn_ipns::{IpnsRecord, Name, validate};
//! use libp2p::identity::Keypair;
//!
//! let key = Keypair::generate_ed25519();
//! let now = SystemTime::now();
//! let record = IpnsRecord::create(&key, b"/ipfs/bafkqaaa", 1, now + Duration::from_secs(48 * 3600),
//!     Duration::from_secs(300), true, false)?;
//! let bytes = record.to_bytes();                     // what goes to the DHT
//!
//! let name = Name::from_peer_id(key.public().to_peer_id());
//! println!("published to /ipns/{name}");            // k51qzi5uqu5d...
//! let received = IpnsRecord::decode(&bytes)?;
//! validate(&received, &name.peer_id(), now)?;
//! assert_eq!(received.value(), b"/ipfs/bafkqaaa");
//! # Ok::<(), cairn_ipns::IpnsError>(())
//! ```

pub mod error;
pub mod name;
pub mod proto;
pub mod record;
pub mod validation;
pub mod validity;

pub use error::IpnsError;
pub use name::Name;
pub use record::{IpnsRecord, NOOP_VALUE, compare, inlined_public_key, select, select_best};
pub use validation::{
    peer_from_routing_key, public_key_routing_key, routing_key, validate,
    validate_public_key_record, validate_routing_record,
};
pub use validity::{format_validity, parse_validity};

use std::time::Duration;

/// The largest serialized record accepted or created, in bytes: 10 KiB (spec, "Record Size
/// Limit"; boxo `ipns.MaxRecordSize`).
pub const MAX_RECORD_SIZE: usize = 10 * 1024;

/// How long Kubo makes records valid by default (`ipfs name publish --lifetime`): 48 hours, the
/// DHT's record expiry (boxo `ipns.DefaultRecordLifetime`).
pub const DEFAULT_RECORD_LIFETIME: Duration = Duration::from_secs(48 * 60 * 60);

/// The cache hint Kubo writes by default (`ipfs name publish --ttl`): 5 minutes (boxo
/// `ipns.DefaultRecordTTL`; the spec's suggestion).
pub const DEFAULT_RECORD_TTL: Duration = Duration::from_secs(5 * 60);

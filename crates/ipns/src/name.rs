//! [`Name`]: an IPNS name (<https://specs.ipfs.tech/ipns/ipns-record/#ipns-name>), the multihash
//! of a public key, i.e. a libp2p peer id, as boxo's `ipns.Name`.
//!
//! Parsed from any of its spellings (boxo `ipns.NameFromString`, go-libp2p `peer.Decode`):
//!
//! - `k51qzi5uqu5d...`: CIDv1, codec `libp2p-key` (0x72), base36 (what Kubo prints);
//! - `bafzaajaiaejc...` or any other multibase of that CIDv1 (base32 is the gateway subdomain
//!   form);
//! - `12D3KooW...` (ed25519, identity multihash) or `Qm...` (RSA, SHA-256) base58btc peer ids;
//!
//! each with or without the `/ipns/` prefix. Printed as Kubo's `name publish` prints it: CIDv1
//! `libp2p-key` in base36 (`k51...`). DNSLink names (`/ipns/example.com`) are resolved through DNS,
//! not records: they are refused with [`IpnsError::DnsLinkUnsupported`].

use std::fmt;
use std::str::FromStr;

use cid::Cid;
use libp2p::identity::PeerId;
use multibase::Base;

use crate::IpnsError;

/// The multicodec of a CID naming a public key (`libp2p-key`).
pub const LIBP2P_KEY_CODEC: u64 = 0x72;

/// The text prefix of IPNS paths.
pub const IPNS_PATH_PREFIX: &str = "/ipns/";

/// An IPNS name: the peer id of the key that signs its records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Name(PeerId);

impl Name {
    /// The name of a peer id.
    pub fn from_peer_id(peer: PeerId) -> Name {
        Name(peer)
    }

    /// The peer id (the multihash of the public key).
    pub fn peer_id(&self) -> PeerId {
        self.0
    }

    /// Parses a name in any of the spellings listed in the [module docs](self).
    ///
    /// # Errors
    ///
    /// [`IpnsError::DnsLinkUnsupported`] for a domain name (anything with a `.`),
    /// [`IpnsError::InvalidName`] for anything else that is not a peer id or a `libp2p-key` CID.
    pub fn parse(text: &str) -> Result<Name, IpnsError> {
        let text = text.strip_prefix(IPNS_PATH_PREFIX).unwrap_or(text);
        let invalid = |why: String| IpnsError::InvalidName(format!("{text:?}: {why}"));
        if text.is_empty() {
            return Err(invalid("empty".into()));
        }
        if text.contains('.') {
            return Err(IpnsError::DnsLinkUnsupported(text.to_owned()));
        }
        // go-libp2p peer.Decode: these prefixes are base58btc multihashes, the rest CIDs.
        if text.starts_with("Qm") || text.starts_with('1') {
            let bytes = Base::Base58Btc
                .decode(text)
                .map_err(|e| invalid(format!("not base58btc: {e}")))?;
            return PeerId::from_bytes(&bytes)
                .map(Name)
                .map_err(|e| invalid(format!("not a peer id: {e}")));
        }
        let cid =
            Cid::try_from(text).map_err(|e| invalid(format!("not a peer id nor a CID: {e}")))?;
        if cid.codec() != LIBP2P_KEY_CODEC {
            return Err(invalid(format!(
                "CID codec 0x{:x} is not allowed for IPNS names, use libp2p-key (0x72)",
                cid.codec()
            )));
        }
        PeerId::from_bytes(&cid.hash().to_bytes())
            .map(Name)
            .map_err(|e| invalid(format!("the CID's multihash is not a peer id: {e}")))
    }

    /// The name as a CIDv1 with the `libp2p-key` codec.
    pub fn to_cid(&self) -> Cid {
        let multihash: &multihash::Multihash<64> = self.0.as_ref();
        Cid::new_v1(LIBP2P_KEY_CODEC, *multihash)
    }

    /// The name as an IPNS path: `/ipns/k51...`.
    pub fn to_path(&self) -> String {
        format!("{IPNS_PATH_PREFIX}{self}")
    }

    /// The DHT key of this name's records (see [`crate::routing_key`]).
    pub fn routing_key(&self) -> Vec<u8> {
        crate::routing_key(&self.0)
    }
}

impl fmt::Display for Name {
    /// Base36 CIDv1 `libp2p-key`, e.g. `k51qzi5uqu5d...`, as Kubo prints names.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self
            .to_cid()
            .to_string_of_base(Base::Base36Lower)
            .map_err(|_| fmt::Error)?;
        f.write_str(&text)
    }
}

impl FromStr for Name {
    type Err = IpnsError;

    fn from_str(text: &str) -> Result<Name, IpnsError> {
        Name::parse(text)
    }
}

impl From<PeerId> for Name {
    fn from(peer: PeerId) -> Name {
        Name(peer)
    }
}

impl From<Name> for PeerId {
    fn from(name: Name) -> PeerId {
        name.0
    }
}

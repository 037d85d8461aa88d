//! Values the node hands out: peer descriptions, events, pubsub messages, providers, and the
//! streams that carry them.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::Stream;
use libp2p::{Multiaddr, PeerId};
use tokio::sync::mpsc;

use crate::error::NodeError;

/// Which side opened a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// The remote dialled us.
    Inbound,
    /// We dialled the remote.
    Outbound,
}

/// A connected peer.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PeerInfo {
    /// The peer.
    pub peer_id: PeerId,
    /// The remote address of its first open connection.
    pub address: Multiaddr,
    /// Who opened that connection.
    pub direction: Direction,
    /// The last ping round trip, once one was measured.
    pub latency: Option<Duration>,
    /// Its identify agent version (`kubo/0.30.0`, `cairn/0.1.0`), once identified.
    pub agent_version: Option<String>,
    /// Its identify protocol list, once identified.
    pub protocols: Vec<String>,
    /// The addresses it says it listens on, once identified.
    pub listen_addrs: Vec<Multiaddr>,
    /// When the connection was established.
    pub connected_since: SystemTime,
}

/// Something that happened on the node; see [`crate::Node::events`] for the bus and
/// [`crate::events`] for the JSON form (`{"type":"peer_connected",…}`) and the kinds a
/// subscriber can filter on. New variants will be added (watch-folder imports), so match with
/// a `_` arm.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum NodeEvent {
    /// A first connection to a peer opened.
    PeerConnected {
        /// The peer.
        peer_id: PeerId,
        /// Its remote address.
        address: Multiaddr,
        /// Who dialled.
        direction: Direction,
    },
    /// The last connection to a peer closed.
    PeerDisconnected {
        /// The peer.
        peer_id: PeerId,
    },
    /// A peer answered identify: its agent and protocols are now known.
    PeerIdentified {
        /// The peer.
        peer_id: PeerId,
        /// Its agent version.
        agent_version: String,
        /// The protocols it supports.
        protocols: Vec<String>,
    },
    /// A connected peer subscribed to a pubsub topic.
    TopicSubscribed {
        /// The peer.
        peer_id: PeerId,
        /// The topic.
        topic: String,
    },
    /// The bootstrapper changed phase (connecting, backing off, connected…).
    BootstrapPhaseChanged(cairn_bootstrap::BootstrapPhase),
    /// mDNS (or pubsub discovery) found a peer.
    PeerDiscovered {
        /// The peer.
        peer_id: PeerId,
        /// Where it says it listens.
        addresses: Vec<Multiaddr>,
    },
    /// The node started listening on an address.
    ListenAddrAdded(Multiaddr),
    /// The node stopped listening on an address.
    ListenAddrRemoved(Multiaddr),
    /// A peer put a provider record to this node (a DHT `ADD_PROVIDER`), and it was stored: this
    /// node now answers `GET_PROVIDERS` for the key with that peer.
    ProviderRecordStored {
        /// The record's key: the multihash bytes of the CID (Kubo keys provider records by
        /// multihash, so CIDv0 and CIDv1 of the same bytes share one).
        key: Vec<u8>,
        /// The peer that provides it.
        provider: PeerId,
        /// Whether it came over Kubo's LAN DHT (`/ipfs/lan/kad/1.0.0`) rather than the WAN one.
        lan: bool,
    },
    /// A block was stored through the node: `block/put`, `add`, `dag/put`, `dag/import`, or
    /// received over Bitswap. Emitted whether or not the block was new to the store.
    BlockAdded {
        /// The block.
        cid: cid::Cid,
        /// Its size in bytes.
        size: usize,
    },
    /// This node announced in the DHT that it provides a block (a queued provide, a reprovide,
    /// or `routing/provide`), and the announcement finished.
    BlockProvided {
        /// The block.
        cid: cid::Cid,
    },
    /// A peer sent a block this node wanted over Bitswap.
    BitswapBlockReceived {
        /// The block.
        cid: cid::Cid,
        /// The peer it came from.
        from: PeerId,
        /// Its size in bytes.
        size: usize,
    },
    /// This node sent a block a peer wanted over Bitswap.
    BitswapBlockSent {
        /// The block.
        cid: cid::Cid,
        /// The peer it went to.
        to: PeerId,
        /// Its size in bytes.
        size: usize,
    },
    /// A service running beside the node (the daemon's RPC or metrics listener, the swarm)
    /// changed state; published with [`crate::Node::publish_event`] by whoever supervises it.
    ServiceStateChanged {
        /// The service's name (`api /ip4/127.0.0.1/tcp/5001`, `metrics …`, `swarm`).
        service: String,
        /// Its new state: `starting`, `ok`, `degraded`, `restarting`, `failed`, `stopping` or
        /// `stopped`.
        state: String,
        /// Why it failed, when it did.
        error: Option<String>,
    },
    /// An entry of the watched import folder (`cairn-watch`) changed state; published with
    /// [`crate::Node::publish_event`] by the watcher.
    WatchImport {
        /// The entry's name in the watched folder.
        path: String,
        /// Its new state: `settling`, `importing`, `imported`, `failed` or `removed`.
        state: String,
        /// The CID of its last import, if any.
        cid: Option<String>,
        /// Its size in bytes.
        size: u64,
        /// Why its import failed (state `failed`).
        error: Option<String>,
    },
}

/// A pubsub message as Kubo's `pubsub/sub` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PubsubMessage {
    /// Its author.
    pub from: Option<PeerId>,
    /// Its payload.
    pub data: Bytes,
    /// The author's sequence number.
    pub seqno: Option<u64>,
    /// The topics it was published to.
    pub topics: Vec<String>,
}

/// A peer that provides some content, with the addresses known for it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Provider {
    /// The provider.
    pub peer_id: PeerId,
    /// Addresses known for it (possibly none).
    pub addresses: Vec<Multiaddr>,
}

/// What one DHT lookup cost, from libp2p's query statistics: the requests it sent (Kademlia
/// messages, one per peer asked), how many were answered and how many failed, and its wall time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LookupStats {
    /// Requests sent (FIND_NODE or GET_PROVIDERS messages).
    pub requests: u32,
    /// Requests answered.
    pub successes: u32,
    /// Requests that failed (dial error, timeout, bad answer).
    pub failures: u32,
    /// From the first request to the end of the lookup.
    pub duration: std::time::Duration,
}

impl LookupStats {
    pub(crate) fn of(stats: &libp2p::kad::QueryStats) -> Self {
        LookupStats {
            requests: stats.num_requests(),
            successes: stats.num_successes(),
            failures: stats.num_failures(),
            duration: stats.duration().unwrap_or_default(),
        }
    }
}

/// The peers a DHT lookup found closest to a key (Kademlia's iterative FIND_NODE, as Kubo's
/// `dht query` runs it), closest first, with what the lookup cost.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClosestPeers {
    /// Up to K (20) peers, nearest to the key by XOR distance first.
    pub peers: Vec<PeerId>,
    /// The lookup's cost.
    pub stats: LookupStats,
}

/// A stream fed by the node's event loop; it ends when the loop stops feeding it.
#[derive(Debug)]
pub struct ReceiverStream<T> {
    rx: mpsc::Receiver<T>,
}

impl<T> ReceiverStream<T> {
    pub(crate) fn new(rx: mpsc::Receiver<T>) -> Self {
        ReceiverStream { rx }
    }

    /// The next item, or `None` when the stream has ended.
    pub async fn recv(&mut self) -> Option<T> {
        self.rx.recv().await
    }
}

impl<T> Stream for ReceiverStream<T> {
    type Item = T;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.rx.poll_recv(cx)
    }
}

/// Messages of one pubsub topic; dropping it ends the subscription (the node unsubscribes when
/// no subscription to a topic is left).
pub type Subscription = ReceiverStream<PubsubMessage>;

/// Providers found by a DHT query, as they arrive.
pub type ProviderStream = ReceiverStream<Provider>;

/// Parses a multiaddr, with a typed error.
pub fn parse_multiaddr(text: &str) -> Result<Multiaddr, NodeError> {
    let invalid = |reason: String| NodeError::InvalidMultiaddr {
        input: text.chars().take(256).collect(),
        reason,
    };
    // go-multiaddr refuses the empty address; so does Kubo.
    if text.trim().is_empty() {
        return Err(invalid("empty multiaddr".into()));
    }
    text.trim()
        .parse()
        .map_err(|e: libp2p::multiaddr::Error| invalid(e.to_string()))
}

/// Parses a peer id: base58 (`12D3Koo…`, `Qm…`) or a CIDv1 with the `libp2p-key` codec, as Kubo does.
pub fn parse_peer_id(text: &str) -> Result<PeerId, NodeError> {
    let invalid = |reason: String| NodeError::InvalidPeerId {
        input: text.chars().take(256).collect(),
        reason,
    };
    if let Ok(peer) = text.parse::<PeerId>() {
        return Ok(peer);
    }
    let cid = cid::Cid::try_from(text).map_err(|e| invalid(e.to_string()))?;
    if cid.codec() != 0x72 {
        return Err(invalid(format!(
            "CID codec 0x{:x} is not libp2p-key",
            cid.codec()
        )));
    }
    PeerId::from_multihash(*cid.hash()).map_err(|_| invalid("multihash is not a peer id".into()))
}

/// The peer id at the end of a multiaddr (`…/p2p/<id>`), if any.
pub fn peer_id_of(addr: &Multiaddr) -> Option<PeerId> {
    match addr.iter().last() {
        Some(libp2p::multiaddr::Protocol::P2p(peer)) => Some(peer),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_ids_parse_in_both_forms() {
        let peer = PeerId::random();
        assert_eq!(parse_peer_id(&peer.to_base58()).unwrap(), peer);
        let cid = cid::Cid::new_v1(0x72, *peer.as_ref());
        assert_eq!(parse_peer_id(&cid.to_string()).unwrap(), peer);
        let err = parse_peer_id("12D3KooWnotreally").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid peer id \"12D3KooWnotreally\""),
            "{err}"
        );
        let raw = cid::Cid::new_v1(0x55, *peer.as_ref());
        assert!(
            parse_peer_id(&raw.to_string())
                .unwrap_err()
                .to_string()
                .contains("libp2p-key")
        );
    }

    #[test]
    fn multiaddrs_parse_with_typed_errors() {
        let a = parse_multiaddr("/ip4/127.0.0.1/tcp/4001").unwrap();
        assert_eq!(peer_id_of(&a), None);
        for bad in [
            "",
            "ip4/1.2.3.4",
            "/ip4/999.0.0.1/tcp/1",
            "/ip4/1.2.3.4/tcp/notaport",
            "/p2p/xyz",
        ] {
            let err = parse_multiaddr(bad).unwrap_err();
            assert!(
                matches!(err, NodeError::InvalidMultiaddr { .. }),
                "{bad}: {err}"
            );
        }
    }
}

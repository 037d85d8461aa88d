//! The node's event bus: what [`crate::Node::events`] hands out, and the JSON form of each
//! [`NodeEvent`] that the RPC's event stream (`/api/v0/cairn/events`) sends.
//!
//! The bus is a [`tokio::sync::broadcast`] channel of [`EVENT_CAPACITY`] events. Sending costs
//! one atomic load when nobody listens (the event is not even built);
//! a receiver that falls more than [`EVENT_CAPACITY`] events behind loses the oldest ones and
//! is told so by `RecvError::Lagged(n)` on its next `recv`. The bus never waits for a receiver,
//! so a slow subscriber cannot slow the node down or make it buffer more.
//!
//! ## JSON
//!
//! Every event serialises (serde) to one object with a `type` tag in snake case; peers are
//! base58 peer ids, CIDs are strings in their own base (base32 for CIDv1, base58 for CIDv0),
//! addresses are multiaddr strings, sizes are bytes:
//!
//! | `type` | other fields | [`NodeEvent::kind`] |
//! |---|---|---|
//! | `peer_connected` | `peer`, `address`, `direction` (`inbound`/`outbound`) | `peer` |
//! | `peer_disconnected` | `peer` | `peer` |
//! | `peer_identified` | `peer`, `agent`, `protocols` (array) | `peer` |
//! | `peer_discovered` | `peer`, `addresses` (array) | `peer` |
//! | `topic_subscribed` | `peer`, `topic` | `pubsub` |
//! | `bootstrap_phase` | `phase` (`connecting`, `backing_off`, `connected`, `waiting`, `no_peers_configured`); `attempt`, `using_backup` when connecting; `retry_in_ms`, `failed_rounds` when backing off | `bootstrap` |
//! | `listen_addr_added`, `listen_addr_removed` | `address` | `listen` |
//! | `provider_record_stored` | `key` (hex multihash), `provider`, `lan` | `dht` |
//! | `block_added` | `cid`, `size` | `block` |
//! | `block_provided` | `cid` | `block` |
//! | `bitswap_block_received` | `cid`, `from`, `size` | `bitswap` |
//! | `bitswap_block_sent` | `cid`, `to`, `size` | `bitswap` |
//! | `service_state` | `service`, `state`, `error` (when it failed) | `service` |
//! | `watch_import` | `path`, `state` (`settling`, `importing`, `imported`, `failed`, `removed`), `cid`, `size`, `error` (when it failed) | `watch` |
//!
//! For example `{"type":"block_added","cid":"bafkrei…","size":5}`.

use std::time::Instant;

use cairn_blockstore::Block;
use cairn_bootstrap::BootstrapPhase;
use serde::ser::{Serialize, Serializer};
use tokio::sync::broadcast;

use crate::types::{Direction, NodeEvent};

/// How many events the bus holds for its slowest receiver before that receiver starts losing
/// the oldest ones (`RecvError::Lagged`).
pub const EVENT_CAPACITY: usize = 1024;

/// Every [`NodeEvent::kind`], for filters and documentation.
pub const EVENT_KINDS: &[&str] = &[
    "peer",
    "pubsub",
    "bootstrap",
    "listen",
    "dht",
    "block",
    "bitswap",
    "service",
    "watch",
];

impl NodeEvent {
    /// The event's family, for subscribers that filter: `peer`, `pubsub`, `bootstrap`,
    /// `listen`, `dht`, `block`, `bitswap`, `service` or `watch` (all listed in [`EVENT_KINDS`]).
    pub fn kind(&self) -> &'static str {
        match self {
            NodeEvent::PeerConnected { .. }
            | NodeEvent::PeerDisconnected { .. }
            | NodeEvent::PeerIdentified { .. }
            | NodeEvent::PeerDiscovered { .. } => "peer",
            NodeEvent::TopicSubscribed { .. } => "pubsub",
            NodeEvent::BootstrapPhaseChanged(_) => "bootstrap",
            NodeEvent::ListenAddrAdded(_) | NodeEvent::ListenAddrRemoved(_) => "listen",
            NodeEvent::ProviderRecordStored { .. } => "dht",
            NodeEvent::BlockAdded { .. } | NodeEvent::BlockProvided { .. } => "block",
            NodeEvent::BitswapBlockReceived { .. } | NodeEvent::BitswapBlockSent { .. } => {
                "bitswap"
            }
            NodeEvent::ServiceStateChanged { .. } => "service",
            NodeEvent::WatchImport { .. } => "watch",
        }
    }
}

/// The JSON shape of an event (see the module docs).
#[derive(serde::Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Wire<'a> {
    PeerConnected {
        peer: String,
        address: String,
        direction: &'static str,
    },
    PeerDisconnected {
        peer: String,
    },
    PeerIdentified {
        peer: String,
        agent: &'a str,
        protocols: &'a [String],
    },
    PeerDiscovered {
        peer: String,
        addresses: Vec<String>,
    },
    TopicSubscribed {
        peer: String,
        topic: &'a str,
    },
    BootstrapPhase {
        phase: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        attempt: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        using_backup: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_in_ms: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        failed_rounds: Option<u32>,
    },
    ListenAddrAdded {
        address: String,
    },
    ListenAddrRemoved {
        address: String,
    },
    ProviderRecordStored {
        key: String,
        provider: String,
        lan: bool,
    },
    BlockAdded {
        cid: String,
        size: usize,
    },
    BlockProvided {
        cid: String,
    },
    BitswapBlockReceived {
        cid: String,
        from: String,
        size: usize,
    },
    BitswapBlockSent {
        cid: String,
        to: String,
        size: usize,
    },
    ServiceState {
        service: &'a str,
        state: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<&'a str>,
    },
    WatchImport {
        path: &'a str,
        state: &'a str,
        cid: Option<&'a str>,
        size: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<&'a str>,
    },
}

fn bootstrap_wire(phase: &BootstrapPhase) -> Wire<'static> {
    let named = |phase| Wire::BootstrapPhase {
        phase,
        attempt: None,
        using_backup: None,
        retry_in_ms: None,
        failed_rounds: None,
    };
    match phase {
        BootstrapPhase::Connecting {
            attempt,
            using_backup,
        } => Wire::BootstrapPhase {
            phase: "connecting",
            attempt: Some(*attempt),
            using_backup: Some(*using_backup),
            retry_in_ms: None,
            failed_rounds: None,
        },
        BootstrapPhase::BackingOff {
            until,
            failed_rounds,
        } => Wire::BootstrapPhase {
            phase: "backing_off",
            attempt: None,
            using_backup: None,
            retry_in_ms: Some(until.saturating_duration_since(Instant::now()).as_millis() as u64),
            failed_rounds: Some(*failed_rounds),
        },
        BootstrapPhase::Connected => named("connected"),
        BootstrapPhase::Waiting => named("waiting"),
        BootstrapPhase::NoPeersConfigured => named("no_peers_configured"),
    }
}

impl Serialize for NodeEvent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let wire = match self {
            NodeEvent::PeerConnected {
                peer_id,
                address,
                direction,
            } => Wire::PeerConnected {
                peer: peer_id.to_base58(),
                address: address.to_string(),
                direction: match direction {
                    Direction::Inbound => "inbound",
                    Direction::Outbound => "outbound",
                },
            },
            NodeEvent::PeerDisconnected { peer_id } => Wire::PeerDisconnected {
                peer: peer_id.to_base58(),
            },
            NodeEvent::PeerIdentified {
                peer_id,
                agent_version,
                protocols,
            } => Wire::PeerIdentified {
                peer: peer_id.to_base58(),
                agent: agent_version,
                protocols,
            },
            NodeEvent::PeerDiscovered { peer_id, addresses } => Wire::PeerDiscovered {
                peer: peer_id.to_base58(),
                addresses: addresses.iter().map(|a| a.to_string()).collect(),
            },
            NodeEvent::TopicSubscribed { peer_id, topic } => Wire::TopicSubscribed {
                peer: peer_id.to_base58(),
                topic,
            },
            NodeEvent::BootstrapPhaseChanged(phase) => bootstrap_wire(phase),
            NodeEvent::ListenAddrAdded(a) => Wire::ListenAddrAdded {
                address: a.to_string(),
            },
            NodeEvent::ListenAddrRemoved(a) => Wire::ListenAddrRemoved {
                address: a.to_string(),
            },
            NodeEvent::ProviderRecordStored { key, provider, lan } => Wire::ProviderRecordStored {
                key: key.iter().map(|b| format!("{b:02x}")).collect(),
                provider: provider.to_base58(),
                lan: *lan,
            },
            NodeEvent::BlockAdded { cid, size } => Wire::BlockAdded {
                cid: cid.to_string(),
                size: *size,
            },
            NodeEvent::BlockProvided { cid } => Wire::BlockProvided {
                cid: cid.to_string(),
            },
            NodeEvent::BitswapBlockReceived { cid, from, size } => Wire::BitswapBlockReceived {
                cid: cid.to_string(),
                from: from.to_base58(),
                size: *size,
            },
            NodeEvent::BitswapBlockSent { cid, to, size } => Wire::BitswapBlockSent {
                cid: cid.to_string(),
                to: to.to_base58(),
                size: *size,
            },
            NodeEvent::ServiceStateChanged {
                service,
                state,
                error,
            } => Wire::ServiceState {
                service,
                state,
                error: error.as_deref(),
            },
            NodeEvent::WatchImport {
                path,
                state,
                cid,
                size,
                error,
            } => Wire::WatchImport {
                path,
                state,
                cid: cid.as_deref(),
                size: *size,
                error: error.as_deref(),
            },
        };
        wire.serialize(serializer)
    }
}

/// The sending side of the bus, shared by the event loop, the node handle, the provider queue
/// and the Bitswap hook. Cloning it is cheap.
#[derive(Clone, Debug)]
pub(crate) struct Emitter(broadcast::Sender<NodeEvent>);

impl Emitter {
    /// A bus of [`EVENT_CAPACITY`] events.
    pub(crate) fn new() -> Self {
        Emitter(broadcast::channel(EVENT_CAPACITY).0)
    }

    /// A new receiver, seeing events sent from now on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<NodeEvent> {
        self.0.subscribe()
    }

    /// Sends an event (dropped when nobody listens).
    pub(crate) fn emit(&self, event: NodeEvent) {
        let _ = self.0.send(event);
    }

    /// Sends the event `make` builds, building it only if somebody listens.
    pub(crate) fn emit_with(&self, make: impl FnOnce() -> NodeEvent) {
        if self.0.receiver_count() > 0 {
            let _ = self.0.send(make());
        }
    }

    /// A [`NodeEvent::BlockAdded`] for each block.
    pub(crate) fn blocks_added(&self, blocks: &[&Block]) {
        if self.0.receiver_count() > 0 {
            for b in blocks {
                let _ = self.0.send(NodeEvent::BlockAdded {
                    cid: *b.cid(),
                    size: b.len(),
                });
            }
        }
    }

    /// The Bitswap hook: transfers become [`NodeEvent::BitswapBlockReceived`] /
    /// [`NodeEvent::BitswapBlockSent`].
    pub(crate) fn bitswap_hook(&self) -> cairn_bitswap::TransferHook {
        let bus = self.clone();
        Box::new(move |t| {
            if bus.0.receiver_count() == 0 {
                return;
            }
            let event = match t {
                cairn_bitswap::Transfer::Received { cid, from, size } => {
                    NodeEvent::BitswapBlockReceived { cid, from, size }
                }
                cairn_bitswap::Transfer::Sent { cid, to, size } => {
                    NodeEvent::BitswapBlockSent { cid, to, size }
                }
                // `Transfer` is non-exhaustive: a kind this version does not know is skipped.
                _ => return,
            };
            bus.emit(event);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialise_with_a_type_tag() {
        let block = Block::new(
            cid::Cid::new_v1(0x55, multihash_of(b"hello")),
            bytes::Bytes::from_static(b"hello"),
        );
        let ev = NodeEvent::BlockAdded {
            cid: *block.as_ref().unwrap().cid(),
            size: 5,
        };
        let v = serde_json::to_value(&ev).unwrap();
        assert_eq!(v["type"], "block_added");
        assert_eq!(v["size"], 5);
        assert!(v["cid"].as_str().unwrap().starts_with("bafkrei"), "{v}");
        assert_eq!(ev.kind(), "block");
        let peer = libp2p::PeerId::random();
        let v = serde_json::to_value(NodeEvent::PeerDisconnected { peer_id: peer }).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type":"peer_disconnected","peer":peer.to_base58()})
        );
        let v = serde_json::to_value(NodeEvent::BootstrapPhaseChanged(
            BootstrapPhase::Connecting {
                attempt: 2,
                using_backup: false,
            },
        ))
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type":"bootstrap_phase","phase":"connecting","attempt":2,"using_backup":false})
        );
        for kind in [ev.kind(), "peer"] {
            assert!(EVENT_KINDS.contains(&kind));
        }
    }

    fn multihash_of(data: &[u8]) -> cid::multihash::Multihash<64> {
        use sha2::Digest as _;
        cid::multihash::Multihash::wrap(0x12, &sha2::Sha256::digest(data)).unwrap()
    }

    #[test]
    fn a_receiver_that_falls_behind_is_told_how_much_it_lost() {
        let bus = Emitter::new();
        let mut rx = bus.subscribe();
        let peer = libp2p::PeerId::random();
        for _ in 0..EVENT_CAPACITY + 10 {
            bus.emit(NodeEvent::PeerDisconnected { peer_id: peer });
        }
        assert!(matches!(
            rx.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(10))
        ));
        let mut kept = 0;
        while rx.try_recv().is_ok() {
            kept += 1;
        }
        assert_eq!(kept, EVENT_CAPACITY);
    }

    #[test]
    fn nobody_listening_builds_nothing() {
        let bus = Emitter::new();
        bus.emit_with(|| unreachable!("built without a receiver"));
        let mut rx = bus.subscribe();
        bus.emit_with(|| NodeEvent::PeerDisconnected {
            peer_id: libp2p::PeerId::random(),
        });
        assert!(matches!(
            rx.try_recv(),
            Ok(NodeEvent::PeerDisconnected { .. })
        ));
    }
}

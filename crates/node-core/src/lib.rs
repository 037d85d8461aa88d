//! # cairn-node-core
//!
//! The libp2p node behind cairn: a swarm that speaks what Kubo and Helia speak (TCP+Noise+Yamux,
//! QUIC, identify, ping, Kademlia on `/ipfs/kad/1.0.0` and Kubo's LAN DHT `/ipfs/lan/kad/1.0.0` in server mode, mDNS, gossipsub with
//! go-compatible message ids), a repo on disk laid out like Kubo's, and the [`Node`] handle that a
//! Rust program embeds.
//!
//! One task owns the swarm; [`Node`] is a cheap `Clone` handle that sends it commands over a
//! bounded channel and awaits oneshot replies. Calls after shutdown return
//! [`NodeError::NodeStopped`].
//!
//! What the node does is published on a bounded event bus ([`Node::events`], [`events`]), and
//! [`LogBus`] carries log lines to live subscribers.

pub mod add;
mod behaviour;
pub mod config;
pub mod connmgr;
pub mod dht_records;
pub mod dual_dht;
pub mod error;
mod event_loop;
pub mod events;
pub mod exchange;
pub mod files;
pub mod keystore;
pub mod limits;
pub mod logs;
pub mod mfs;
pub mod names;
mod node;
mod provider_store;
pub mod repo;
mod self_kad;
pub mod types;

pub use add::{AddEvent, AddOptions, Adder};
pub use behaviour::{
    IDENTIFY_PROTOCOL_VERSION, KAD_PROTOCOL, MAX_PUBSUB_MESSAGE, agent_version, go_message_id,
};
pub use cairn_bitswap::{DagProgress, LedgerInfo, Stat as BitswapStat};
pub use cairn_ipns as ipns;
pub use cairn_unixfs as unixfs;
pub use config::{Config, Profile};
pub use connmgr::ConnMgrLimits;
pub use error::{NodeError, RepoError};
pub use events::{EVENT_CAPACITY, EVENT_KINDS};
pub use exchange::{ProvideConfig, ProvideStat, ProvideStrategy};
pub use files::{ByteStream, CarImport, DagStat, NodeBlocks};
pub use libp2p::{Multiaddr, PeerId, identity::Keypair};
pub use logs::{LogBus, LogLevel, LogLine, LogSubscription};
pub use node::{DIAL_TIMEOUT, DagFetch, FetchOptions, Node, NodeBuilder};
pub use repo::{KeyAlgorithm, Repo, default_repo_path};
pub use tokio_util::sync::CancellationToken;
pub use types::{
    ClosestPeers, Direction, LookupStats, NodeEvent, PeerInfo, Provider, ProviderStream,
    PubsubMessage, ReceiverStream, Subscription, parse_multiaddr, parse_peer_id, peer_id_of,
};

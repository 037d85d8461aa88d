//! The libp2p behaviours of a cairn node, composed with `#[derive(NetworkBehaviour)]`; optional
//! ones (mDNS, gossipsub) sit behind `Toggle`.

use std::time::Duration;

use libp2p::gossipsub::{self, MessageAuthenticity, MessageId, ValidationMode};
use libp2p::identity::Keypair;
use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{StreamProtocol, identify, kad, mdns, ping};

use crate::limits::{Caps, ConnectionLimits, MAX_PENDING_INCOMING_PER_IP};
use crate::self_kad::SelfAnsweringKad;

/// Inbound connections in their handshake (TCP accepted, Noise/Yamux not finished) at once, from
/// all addresses together; more are closed as they are accepted. Each costs at most a socket, the
/// upgrade's buffers and a task until [`HANDSHAKE_TIMEOUT`].
pub const MAX_PENDING_INCOMING: usize = 256;

/// How long an inbound or outbound connection may take from the socket to a negotiated muxer
/// (multistream-select, Noise, Yamux). go-libp2p gives negotiation 15 s; libp2p's builder default
/// is 10 s, kept here but set explicitly so that a dependency upgrade cannot change it unseen.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Established connections to one peer at once.
pub const MAX_ESTABLISHED_PER_PEER: usize = 8;

/// The identify protocol version string Kubo sends.
pub const IDENTIFY_PROTOCOL_VERSION: &str = "ipfs/0.1.0";

/// The agent version cairn announces in identify: `cairn/<version>`.
pub fn agent_version() -> String {
    format!("cairn/{}", env!("CARGO_PKG_VERSION"))
}

/// Kubo's DHT protocol.
pub const KAD_PROTOCOL: StreamProtocol = kad::PROTOCOL_NAME;

/// The largest pubsub message, as go-libp2p allows (rust's default is 64 KiB).
pub const MAX_PUBSUB_MESSAGE: usize = 1 << 20;

/// Every behaviour of the node.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    /// The hard limits on connections (see [`crate::limits`]).
    pub limits: ConnectionLimits,
    pub identify: identify::Behaviour,
    pub ping: ping::Behaviour,
    /// The WAN DHT (`/ipfs/kad/1.0.0`); derefs to `kad::Behaviour`.
    pub kad: SelfAnsweringKad,
    /// Kubo's LAN DHT (`/ipfs/lan/kad/1.0.0`): see [`crate::dual_dht`].
    pub lan_kad: SelfAnsweringKad,
    pub mdns: Toggle<mdns::tokio::Behaviour>,
    pub gossipsub: Toggle<gossipsub::Behaviour>,
    /// Raw streams for protocols cairn speaks by hand (on-demand ping; Bitswap's outbound
    /// streams).
    pub stream: libp2p_stream::Behaviour,
    /// Bitswap's inbound streams (see [`cairn_bitswap::Inbound`]: none dropped under bursts).
    pub bitswap_inbound: cairn_bitswap::Inbound,
}

/// The protocols this node serves, as identify announces them.
pub(crate) fn local_protocols(opts: &BehaviourOptions) -> Vec<String> {
    let mut p: Vec<String> = [
        "/ipfs/id/1.0.0",
        "/ipfs/id/push/1.0.0",
        "/ipfs/ping/1.0.0",
        "/ipfs/kad/1.0.0",
        "/ipfs/lan/kad/1.0.0",
        "/ipfs/bitswap",
        "/ipfs/bitswap/1.0.0",
        "/ipfs/bitswap/1.1.0",
        "/ipfs/bitswap/1.2.0",
    ]
    .map(String::from)
    .to_vec();
    if opts.gossipsub {
        p.extend(
            [
                "/meshsub/1.0.0",
                "/meshsub/1.1.0",
                "/meshsub/1.2.0",
                "/meshsub/1.3.0",
            ]
            .map(String::from),
        );
    }
    p
}

/// What the behaviours are built from.
#[derive(Clone)]
pub(crate) struct BehaviourOptions {
    pub mdns: bool,
    pub gossipsub: bool,
    pub max_connections: u32,
    /// What the blockstore holds: the DHTs name this node as a provider of exactly that.
    pub has_block: crate::provider_store::HasBlock,
}

/// go-libp2p's `DefaultMsgIdFn`: the source peer id's bytes followed by the 8-byte big-endian
/// sequence number. Ids travel in IHAVE/IWANT, so they must match go's and js's to repair gossip.
pub fn go_message_id(message: &gossipsub::Message) -> MessageId {
    let mut id = message.source.map(|p| p.to_bytes()).unwrap_or_default();
    id.extend_from_slice(&message.sequence_number.unwrap_or_default().to_be_bytes());
    MessageId::new(&id)
}

pub(crate) fn build(
    key: &Keypair,
    opts: &BehaviourOptions,
    registry: &mut prometheus_client::registry::Registry,
) -> Result<Behaviour, String> {
    let peer_id = key.public().to_peer_id();

    let limits = ConnectionLimits::new(Caps {
        pending_incoming: Some(MAX_PENDING_INCOMING),
        pending_incoming_per_ip: Some(MAX_PENDING_INCOMING_PER_IP),
        established: Some(opts.max_connections as usize),
        established_per_peer: Some(MAX_ESTABLISHED_PER_PEER),
    });

    let identify = identify::Behaviour::new(
        identify::Config::new(IDENTIFY_PROTOCOL_VERSION.into(), key.public())
            .with_agent_version(agent_version())
            .with_push_listen_addr_updates(true),
    );

    let ping = ping::Behaviour::new(ping::Config::new().with_interval(Duration::from_secs(15)));

    let kad = dht(
        peer_id,
        KAD_PROTOCOL,
        opts.has_block.clone(),
        kad::BucketInserts::OnConnected,
    );
    // Kubo's LAN DHT, beside the WAN one: the only one Kubo speaks with peers it sees on private or
    // loopback addresses (see crate::dual_dht). Its table takes only such peers, as Kubo's
    // `PrivateRoutingTableFilter` does: kad would insert every peer it dialled that speaks the
    // protocol, public ones too, and the LAN table would then double the WAN one's bootstrap and
    // refresh work (the dht_sim bench: ~400 extra bootstraps in a 200-node join). Peers come in
    // only through `dual_dht::add_identified`, which passes their private and loopback addresses.
    let lan_kad = dht(
        peer_id,
        crate::dual_dht::LAN_KAD_PROTOCOL,
        opts.has_block.clone(),
        kad::BucketInserts::Manual,
    );

    let mdns = if opts.mdns {
        Some(
            mdns::tokio::Behaviour::new(mdns::Config::default(), peer_id)
                .map_err(|e| format!("mDNS: {e}"))?,
        )
    } else {
        None
    };

    let gossipsub = if opts.gossipsub {
        let config = gossipsub::ConfigBuilder::default()
            .max_transmit_size(MAX_PUBSUB_MESSAGE)
            .message_id_fn(go_message_id)
            .validation_mode(ValidationMode::Strict)
            // Kubo's SeenMessagesTTL.
            .duplicate_cache_time(Duration::from_secs(120))
            .flood_publish(true)
            // rust waits 5 s for the first heartbeat; js waits 100 ms. Meshes should form quickly.
            .heartbeat_initial_delay(Duration::from_millis(100))
            .build()
            .map_err(|e| format!("gossipsub config: {e}"))?;
        Some(
            gossipsub::Behaviour::new(MessageAuthenticity::Signed(key.clone()), config)
                .map_err(|e| format!("gossipsub: {e}"))?
                .with_metrics(registry, gossipsub::MetricsConfig::default()),
        )
    } else {
        None
    };

    Ok(Behaviour {
        limits,
        identify,
        ping,
        kad,
        lan_kad,
        mdns: mdns.into(),
        gossipsub: gossipsub.into(),
        stream: libp2p_stream::Behaviour::new(),
        bitswap_inbound: cairn_bitswap::Inbound::new(),
    })
}

/// A Kademlia behaviour on `protocol` in server mode, with the node's record limits.
fn dht(
    peer_id: libp2p::PeerId,
    protocol: StreamProtocol,
    has_block: crate::provider_store::HasBlock,
    inserts: kad::BucketInserts,
) -> SelfAnsweringKad {
    let mut kad_config = kad::Config::new(protocol);
    kad_config.set_kbucket_inserts(inserts);
    // go-libp2p-kad-dht's RoutingTableRefreshPeriod (Kubo's default): every refresh walks one
    // random key per bucket and, in a network larger than LowWater, opens a connection for most
    // of the peers it asks, so refreshing twice as often (rust-libp2p's 5 min) doubles the
    // node's idle dialling and CPU for no gain (the dht_sim bench showed it).
    kad_config.set_periodic_bootstrap_interval(Some(Duration::from_secs(10 * 60)));
    // Inbound records go straight to the store, which validates value records and refuses
    // invalid or outdated ones with a reset, as Kubo does (crate::provider_store); the event loop
    // then reports stored provider records as NodeEvent::ProviderRecordStored.
    kad_config.set_record_filtering(kad::StoreInserts::Unfiltered);
    // kad would re-run one query per provided key every 12 h; the node's reprovider does this in
    // batches on Provide.DHT.Interval instead (exchange.rs).
    kad_config.set_provider_publication_interval(None);
    // go-libp2p-kad-dht never re-sends others' value records, and re-sends its own only through
    // the IPNS republisher (crate::ipns_publisher, on Ipns.RepublishPeriod); kad's hourly
    // replication of every stored record would be traffic Kubo does not make.
    kad_config.set_replication_interval(None);
    kad_config.set_publication_interval(None);
    let others = kad::store::MemoryStore::with_config(
        peer_id,
        kad::store::MemoryStoreConfig {
            // Value records (`/ipns/`, `/pk/`): the IPNS spec caps a record at 10 KiB, so at
            // most 16,384 records x 10 KiB = 160 MiB per DHT (LAN and WAN each), a bound no
            // peer can push past; past it, new keys are refused (kad's MaxRecords).
            max_records: 16 * 1024,
            max_value_bytes: cairn_ipns::MAX_RECORD_SIZE,
            max_providers_per_key: 64,
            // Other peers' provider records only; this node's own come from the blockstore.
            max_provided_keys: 1 << 20,
        },
    );
    let store = crate::provider_store::ProviderStore::new(others, peer_id, has_block);
    let mut kad = kad::Behaviour::with_config(peer_id, store, kad_config);
    // Auto mode starts as a client until an external address is confirmed, and then peers would not
    // add us to their tables: a storage node always serves the DHT.
    kad.set_mode(Some(kad::Mode::Server));
    // Kubo 0.22 only keeps peers that answer FIND_NODE(self) with someone: see crate::self_kad.
    SelfAnsweringKad::new(kad, peer_id)
}

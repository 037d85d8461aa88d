//! The [`Node`] handle and its [`NodeBuilder`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), cairn_node_core::NodeError> {
//! use cairn_node_core::{Node, Profile};
//! use cairn_blockstore::{Block, codec::RAW};
//!
//! let node = Node::builder().profile(Profile::Test).build().await?;   // in memory, on 127.0.0.1
//! let block = Block::from_data(RAW, &b"hello"[..])?;
//! node.put_block(&block).await?;
//! println!("{} has {}", node.peer_id(), block.cid());
//! node.shutdown().await?;
//! # Ok(()) }
//! ```

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cairn_blockstore::{
    Block, Blockstore, BlockstoreConfig, Cid, GcReport, PinFilter, PinInfo, PinMode, PinState,
};
use libp2p::identity::Keypair;
use libp2p::{Multiaddr, PeerId, noise, tcp, yamux};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::behaviour::{self, BehaviourOptions};
use crate::config::{Config, Profile};
use crate::connmgr::ConnMgrLimits;
use crate::error::{NodeError, RepoError};
use crate::event_loop::{Command, EventLoop, LoopParts};
use crate::exchange::{NodeRouting, NodeStore, ProvideConfig, ProvideStat, Provider};
use crate::repo::{Repo, keypair_of, new_identity};
use crate::types::{
    NodeEvent, PeerInfo, ProviderStream, ReceiverStream, Subscription, parse_multiaddr,
};
use cairn_bitswap::{Bitswap, DagProgress, LedgerInfo, Stat as BitswapStat};
use cairn_bootstrap::{
    BootstrapConfig, BootstrapList, BootstrapPeer, BootstrapStatus, Bootstrapper,
};
use futures::StreamExt;
use futures::stream::BoxStream;
use libp2p::multiaddr::Protocol;
use libp2p::pnet::{PnetConfig, PreSharedKey};

/// How long a dial may take before `connect` gives up (Kubo's `swarm connect` default).
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `build` waits for the listeners to report their addresses.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);
/// The most a shutdown may take before `shutdown` returns anyway.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(2);

/// Where the node's config, identity and blocks come from.
#[derive(Debug)]
enum Source {
    /// Nothing on disk: a config in memory (defaults unless given) and an in-memory blockstore.
    Memory(Option<Box<Config>>),
    /// A repo directory (initialised already).
    Repo(PathBuf),
}

/// Builds a [`Node`]; every setting has a sensible default. Start with [`Node::builder`].
#[derive(Debug)]
#[must_use = "a builder does nothing until build() is awaited"]
pub struct NodeBuilder {
    source: Source,
    profiles: Vec<Profile>,
    keypair: Option<Keypair>,
    listen: Option<Vec<Multiaddr>>,
    bootstrap: Option<Vec<Multiaddr>>,
    mdns: Option<bool>,
    gossipsub: Option<bool>,
    ipns_pubsub: Option<bool>,
    conn_mgr: Option<ConnMgrLimits>,
    max_connections: Option<u32>,
    blockstore: Option<Blockstore>,
    blockstore_config: BlockstoreConfig,
    bootstrap_config: BootstrapConfig,
    swarm_key: Option<PreSharedKey>,
    force_pnet: Option<bool>,
    pubsub_discovery: Option<Duration>,
    dns: Option<(libp2p::dns::ResolverConfig, libp2p::dns::ResolverOpts)>,
    memory_transport: bool,
}

impl NodeBuilder {
    fn new() -> Self {
        NodeBuilder {
            source: Source::Memory(None),
            profiles: Vec::new(),
            keypair: None,
            listen: None,
            bootstrap: None,
            mdns: None,
            gossipsub: None,
            ipns_pubsub: None,
            conn_mgr: None,
            max_connections: None,
            blockstore: None,
            blockstore_config: BlockstoreConfig::default(),
            bootstrap_config: BootstrapConfig::default(),
            swarm_key: None,
            force_pnet: None,
            pubsub_discovery: None,
            dns: None,
            memory_transport: false,
        }
    }

    /// Runs the swarm on libp2p's in-process memory transport (Noise and Yamux over
    /// `/memory/<port>` channels) instead of TCP and QUIC, and listens on `/memory/0` unless
    /// [`listen_addrs`](Self::listen_addrs) says otherwise. For simulations of many nodes in one
    /// process: no sockets, no file descriptors, no kernel in the way, and the peers can only
    /// reach each other. A swarm key is refused with it ([`NodeError::PrivateNetwork`]).
    pub fn memory_transport(mut self, on: bool) -> Self {
        self.memory_transport = on;
        self
    }

    /// Uses the repo at `path` (its config, identity and sled blockstore; it must be initialised).
    pub fn repo(mut self, path: impl Into<PathBuf>) -> Self {
        self.source = Source::Repo(path.into());
        self
    }

    /// Runs from a config in memory, with no files: blocks live in memory.
    pub fn config(mut self, config: Config) -> Self {
        self.source = Source::Memory(Some(Box::new(config)));
        self
    }

    /// Applies a profile on top of the config (e.g. [`Profile::Test`] for tests).
    pub fn profile(mut self, profile: Profile) -> Self {
        self.profiles.push(profile);
        self
    }

    /// Uses this key pair instead of the config's (or a new one).
    pub fn keypair(mut self, keypair: Keypair) -> Self {
        self.keypair = Some(keypair);
        self
    }

    /// Listens on these addresses instead of the config's `Addresses.Swarm`.
    pub fn listen_addrs(mut self, addrs: impl IntoIterator<Item = Multiaddr>) -> Self {
        self.listen = Some(addrs.into_iter().collect());
        self
    }

    /// Dials these peers at start instead of the config's `Bootstrap` list; each must end in
    /// `/p2p/<peer id>`.
    pub fn bootstrap_peers(mut self, addrs: impl IntoIterator<Item = Multiaddr>) -> Self {
        self.bootstrap = Some(addrs.into_iter().collect());
        self
    }

    /// Turns mDNS discovery on or off (default: `Discovery.MDNS.Enabled`).
    pub fn mdns(mut self, on: bool) -> Self {
        self.mdns = Some(on);
        self
    }

    /// Turns IPNS over pubsub on or off (Kubo's `--enable-namesys-pubsub`; default
    /// `Ipns.UsePubsub`, off). On, it turns gossipsub on too, as Kubo's flag does.
    pub fn ipns_pubsub(mut self, on: bool) -> Self {
        self.ipns_pubsub = Some(on);
        self
    }

    /// Turns gossipsub on or off (default: `Pubsub.Enabled`, off as in Kubo).
    pub fn gossipsub(mut self, on: bool) -> Self {
        self.gossipsub = Some(on);
        self
    }

    /// Sets the connection manager's limits (default: `Swarm.ConnMgr`).
    pub fn conn_mgr(mut self, limits: ConnMgrLimits) -> Self {
        self.conn_mgr = Some(limits);
        self
    }

    /// The hard cap on established connections, inbound and outbound together, that libp2p
    /// enforces while the connection manager's grace period spares new peers (default:
    /// `max(4 × HighWater, 800)`). Connections beyond it are closed as their handshake ends.
    pub fn max_connections(mut self, limit: u32) -> Self {
        self.max_connections = Some(limit);
        self
    }

    /// Settings for the blockstore the node opens.
    pub fn blockstore_config(mut self, config: BlockstoreConfig) -> Self {
        self.blockstore_config = config;
        self
    }

    /// Timing of the bootstrapper (Kubo's defaults plus backoff unless set).
    pub fn bootstrap_config(mut self, config: BootstrapConfig) -> Self {
        self.bootstrap_config = config;
        self
    }

    /// Joins a private network with this pre-shared key (default: the repo's `swarm.key`, if any).
    /// Only TCP carries the key: QUIC listen addresses are dropped, as Kubo does.
    pub fn swarm_key(mut self, key: PreSharedKey) -> Self {
        self.swarm_key = Some(key);
        self
    }

    /// Refuses to start without a swarm key (default: `LIBP2P_FORCE_PNET=1` in the environment).
    pub fn force_private_network(mut self, force: bool) -> Self {
        self.force_pnet = Some(force);
        self
    }

    /// Announces this node on js-libp2p's pubsub peer-discovery topic every `interval`, and dials
    /// the peers announced there (needs gossipsub on).
    pub fn pubsub_discovery(mut self, interval: Duration) -> Self {
        self.pubsub_discovery = Some(interval);
        self
    }

    /// Resolves `/dns*` and `/dnsaddr` addresses with this resolver instead of the system's.
    pub fn dns_config(
        mut self,
        config: libp2p::dns::ResolverConfig,
        opts: libp2p::dns::ResolverOpts,
    ) -> Self {
        self.dns = Some((config, opts));
        self
    }

    /// Uses an existing blockstore instead of opening one.
    pub fn blockstore(mut self, store: Blockstore) -> Self {
        self.blockstore = Some(store);
        self
    }

    /// Starts the node: binds its listeners (returning once each reported an address), dials its
    /// bootstrap peers, and spawns the task that owns the swarm. Needs a tokio runtime.
    pub async fn build(self) -> Result<Node, NodeError> {
        let (mut config, repo) = match self.source {
            Source::Memory(config) => (
                config
                    .map(|c| *c)
                    .unwrap_or_else(|| Config::with_identity(new_identity().1)),
                None,
            ),
            Source::Repo(path) => {
                let repo = Repo::open(&path)?;
                (repo.config().clone(), Some(repo))
            }
        };
        for p in &self.profiles {
            p.apply(&mut config);
        }
        let keypair = match self.keypair {
            Some(k) => k,
            None if config.identity.priv_key.is_empty() => new_identity().0,
            None => keypair_of(&config.identity)?,
        };
        let blockstore = match (self.blockstore, &repo) {
            (Some(store), _) => store,
            (None, Some(repo)) => repo.open_blockstore(self.blockstore_config)?,
            (None, None) => Blockstore::with_engine(
                Arc::new(cairn_blockstore::engine::MemoryEngine::new()),
                self.blockstore_config,
            ),
        };
        let listen = match self.listen {
            Some(l) => l,
            None if self.memory_transport => vec![Multiaddr::empty().with(Protocol::Memory(0))],
            None => config
                .addresses
                .swarm
                .iter()
                .map(|a| parse_multiaddr(a))
                .collect::<Result<_, _>>()?,
        };
        let bootstrap = match self.bootstrap {
            Some(addrs) => {
                let mut list = BootstrapList::default();
                for a in addrs {
                    list.push(BootstrapPeer::from_addr(a)?);
                }
                list
            }
            None => {
                // A bad entry in the config is logged and skipped: the node runs with the rest.
                let entries = config.bootstrap_entries();
                let (list, errors) = BootstrapList::parse_lenient(&entries);
                for e in errors {
                    tracing::error!("config Bootstrap: {e}");
                }
                list
            }
        };
        let backup = repo
            .as_ref()
            .map(|r| {
                BootstrapList::parse_lenient(&r.read_backup_peers())
                    .0
                    .peers()
                    .to_vec()
            })
            .unwrap_or_default();
        let swarm_key = match (self.swarm_key, &repo) {
            (Some(k), _) => Some(k),
            (None, Some(r)) => r.swarm_key()?,
            (None, None) => None,
        };
        let force_pnet = self
            .force_pnet
            .unwrap_or_else(|| std::env::var("LIBP2P_FORCE_PNET").is_ok_and(|v| v == "1"));
        let mut listen = listen;
        if swarm_key.is_some() && self.memory_transport {
            return Err(NodeError::PrivateNetwork(
                "a swarm key needs TCP: the memory transport does not carry it".into(),
            ));
        }
        if let Some(key) = &swarm_key {
            if bootstrap.has_public_defaults() {
                return Err(NodeError::PrivateNetwork(
                    "the bootstrap list still holds Kubo's public default peers, which a private network \
                     cannot reach: replace them with your own (`cairn bootstrap rm --all`, then \
                     `cairn bootstrap add <multiaddr>`)"
                        .into(),
                ));
            }
            listen.retain(|a| {
                let quic = a.iter().any(|p| matches!(p, Protocol::QuicV1 | Protocol::Quic));
                if quic {
                    tracing::warn!(%a, "private network: QUIC cannot carry the swarm key; not listening there");
                }
                !quic
            });
            tracing::info!("Swarm is limited to private network of peers with the swarm key");
            tracing::info!("Swarm key fingerprint: {}", key.fingerprint());
        } else if force_pnet {
            return Err(NodeError::PrivateNetwork(
                "LIBP2P_FORCE_PNET is set but there is no swarm key (put one in <repo>/swarm.key)"
                    .into(),
            ));
        }
        let conn_mgr = match self.conn_mgr {
            Some(c) => c,
            None => ConnMgrLimits::from_config(&config.swarm.conn_mgr)?,
        };
        if config.pubsub.disable_signing {
            return Err(RepoError::InvalidValue {
                key: "Pubsub.DisableSigning".into(),
                reason: "unsigned pubsub is not supported: cairn always signs".into(),
            }
            .into());
        }
        // The key of a provider record is the block's multihash (as Kubo's); the store keys blocks
        // by multihash too, so the CID's version and codec here do not matter.
        let has_block: crate::provider_store::HasBlock = {
            let store = blockstore.clone();
            Arc::new(move |key: &libp2p::kad::RecordKey| {
                cid::multihash::Multihash::<64>::from_bytes(key.as_ref())
                    .ok()
                    .map(|mh| cid::Cid::new_v1(cairn_blockstore::codec::RAW, mh))
                    .is_some_and(|c| store.has(&c).unwrap_or(false))
            })
        };
        let ipns_pubsub = self.ipns_pubsub.unwrap_or_else(|| {
            config
                .extra
                .get("Ipns")
                .and_then(|i| i.get("UsePubsub"))
                .and_then(|v| v.as_bool())
                .unwrap_or(false)
        });
        let options = BehaviourOptions {
            has_block,
            mdns: self.mdns.unwrap_or(config.discovery.mdns.enabled),
            gossipsub: self.gossipsub.unwrap_or(config.pubsub_enabled())
                || self.pubsub_discovery.is_some()
                || ipns_pubsub,
            max_connections: self
                .max_connections
                .unwrap_or_else(|| (conn_mgr.high_water as u32).saturating_mul(4).max(800)),
        };

        let provide_config = ProvideConfig::from_config(&config)?;
        let ipns_timing = crate::names::IpnsTiming::from_config(&config)?;
        let keystore = match &repo {
            Some(r) => crate::keystore::Keystore::open(r.path().join("keystore"))?,
            None => crate::keystore::Keystore::in_memory(),
        };
        let identity = keypair.clone();
        let public_key = keypair.public();
        let private = swarm_key.as_ref().map(|k| k.fingerprint().to_string());
        let mut registry = prometheus_client::registry::Registry::default();
        let transport = if self.memory_transport {
            SwarmTransport::Memory
        } else {
            SwarmTransport::Network(swarm_key)
        };
        let mut swarm = build_swarm(keypair, &options, transport, self.dns, &mut registry)?;
        let metrics = libp2p::metrics::Metrics::new(&mut registry);
        let stream_control = swarm.behaviour().stream.new_control();
        let bitswap_streams = swarm
            .behaviour_mut()
            .bitswap_inbound
            .take_streams()
            .ok_or_else(|| NodeError::Swarm("bitswap streams taken twice".into()))?;
        let protocols = behaviour::local_protocols(&options);
        let mut listening = HashSet::new();
        // An address of a transport cairn does not have (Kubo's default `/webrtc-direct` and
        // `/quic-v1/webtransport`, written by `config profile apply default-networking`) is
        // skipped with a warning, as go-libp2p skips the addresses it cannot listen on while
        // another one works; any other listen error stops the start.
        let mut unsupported = Vec::new();
        for addr in &listen {
            match swarm.listen_on(addr.clone()) {
                Ok(id) => {
                    listening.insert(id);
                }
                Err(libp2p::TransportError::MultiaddrNotSupported(_)) => {
                    unsupported.push(addr.to_string());
                }
                Err(e) => {
                    return Err(NodeError::Listen {
                        addr: addr.to_string(),
                        reason: e.to_string(),
                    });
                }
            }
        }
        if let Some(first) = unsupported.first()
            && listening.is_empty()
        {
            return Err(NodeError::Listen {
                addr: first.clone(),
                reason: "no transport of cairn's listens on this address".into(),
            });
        }
        if !unsupported.is_empty() {
            tracing::warn!(
                "not listening on {} (cairn has no transport for them)",
                unsupported.join(", ")
            );
        }
        let peer_id = *swarm.local_peer_id();
        let (command_tx, command_rx) = mpsc::channel(256);
        let events = crate::events::Emitter::new();
        let (ready_tx, ready_rx) = oneshot::channel();
        let (stopped_tx, stopped_rx) = watch::channel(false);
        let cancel = CancellationToken::new();
        let store_slot: StoreSlot = Arc::new(parking_lot::RwLock::new(Some(blockstore)));
        let bitswap = Bitswap::new(
            cairn_bitswap::Config::default(),
            Arc::new(NodeStore(store_slot.clone(), events.clone())),
            Arc::new(NodeRouting(command_tx.clone())),
            stream_control.clone(),
            bitswap_streams,
            cancel.clone(),
        )
        .map_err(|e| NodeError::Swarm(e.to_string()))?;
        bitswap.register_metrics(&mut registry);
        bitswap.on_transfer(events.bitswap_hook());
        let provider = Provider::spawn(
            provide_config,
            command_tx.clone(),
            store_slot.clone(),
            events.clone(),
            cancel.clone(),
        );
        let seed = rand::random();
        let event_loop = EventLoop::new(LoopParts {
            swarm,
            commands: command_rx,
            cancel: cancel.clone(),
            events: events.clone(),
            blockstore: store_slot.clone(),
            repo,
            conn_mgr,
            listening,
            ready: ready_tx,
            stopped: stopped_tx,
            bootstrapper: Bootstrapper::new(
                self.bootstrap_config,
                bootstrap,
                backup,
                std::time::Instant::now(),
                seed,
            ),
            discovery_interval: self.pubsub_discovery,
            public_key: public_key.clone(),
            private,
            metrics,
            bitswap: bitswap.clone(),
        });
        tokio::spawn(event_loop.run());

        let node = Node {
            shared: Arc::new(Shared {
                peer_id,
                keypair: identity,
                keystore,
                name_pubsub: crate::names::NamePubsub::new(ipns_pubsub),
                commands: command_tx,
                cancel,
                events,
                blockstore: store_slot,
                stopped: stopped_rx,
                registry: Arc::new(registry),
                stream: StreamControl(stream_control),
                public_key,
                protocols,
                bitswap,
                provider,
                mfs_lock: Arc::new(tokio::sync::Mutex::new(())),
            }),
        };
        crate::names::spawn_republisher(&node, ipns_timing);
        match tokio::time::timeout(LISTEN_TIMEOUT, ready_rx).await {
            Ok(Ok(Ok(()))) => Ok(node),
            Ok(Ok(Err(e))) => {
                let _ = node.shutdown().await;
                Err(e)
            }
            Ok(Err(_)) => Err(NodeError::NodeStopped),
            Err(_) => {
                let _ = node.shutdown().await;
                Err(NodeError::Timeout("binding the listen addresses"))
            }
        }
    }
}

/// The transport and behaviours. A private network gets TCP with the pre-shared-key handshake
/// under Noise and no QUIC (QUIC cannot carry the key); otherwise TCP and QUIC. Both resolve DNS.
/// Which transports the swarm runs on.
enum SwarmTransport {
    /// TCP (with the private network's key when given) and, without a key, QUIC.
    Network(Option<PreSharedKey>),
    /// libp2p's in-process memory transport, for simulations.
    Memory,
}

fn build_swarm(
    keypair: Keypair,
    options: &BehaviourOptions,
    transport: SwarmTransport,
    dns: Option<(libp2p::dns::ResolverConfig, libp2p::dns::ResolverOpts)>,
    registry: &mut prometheus_client::registry::Registry,
) -> Result<libp2p::Swarm<behaviour::Behaviour>, NodeError> {
    type BoxError = Box<dyn std::error::Error + Send + Sync>;
    let err = |e: &dyn std::fmt::Display| NodeError::Swarm(e.to_string());
    // kad and pubsub keep connections busy; an idle one is kept a minute, not libp2p's 10 s.
    let swarm_config =
        |c: libp2p::swarm::Config| c.with_idle_connection_timeout(Duration::from_secs(60));
    macro_rules! finish {
        ($builder:expr) => {
            match dns {
                Some((config, opts)) => $builder
                    .with_dns_config(config, opts)
                    .with_bandwidth_metrics(registry)
                    .with_behaviour(|key| {
                        behaviour::build(key, options, registry).map_err(BoxError::from)
                    })
                    .map_err(|e| err(&e))?
                    .with_swarm_config(swarm_config)
                    .with_connection_timeout(behaviour::HANDSHAKE_TIMEOUT)
                    .build(),
                None => $builder
                    .with_dns()
                    .map_err(|e| err(&e))?
                    .with_bandwidth_metrics(registry)
                    .with_behaviour(|key| {
                        behaviour::build(key, options, registry).map_err(BoxError::from)
                    })
                    .map_err(|e| err(&e))?
                    .with_swarm_config(swarm_config)
                    .with_connection_timeout(behaviour::HANDSHAKE_TIMEOUT)
                    .build(),
            }
        };
    }
    let builder = libp2p::SwarmBuilder::with_existing_identity(keypair).with_tokio();
    let swarm = match transport {
        SwarmTransport::Memory => finish!(
            builder
                .with_other_transport(|key| {
                    use libp2p::Transport;
                    let noise = noise::Config::new(key)?;
                    Ok::<_, BoxError>(
                        libp2p::core::transport::MemoryTransport::default()
                            .upgrade(libp2p::core::upgrade::Version::V1Lazy)
                            .authenticate(noise)
                            .multiplex(yamux::Config::default()),
                    )
                })
                .map_err(|e| err(&e))?
        ),
        SwarmTransport::Network(Some(psk)) => finish!(
            builder
                .with_other_transport(move |key| {
                    use libp2p::Transport;
                    let noise = noise::Config::new(key)?;
                    Ok::<_, BoxError>(
                        tcp::tokio::Transport::new(tcp::Config::default().nodelay(true))
                            .and_then(move |socket, _| PnetConfig::new(psk).handshake(socket))
                            .upgrade(libp2p::core::upgrade::Version::V1Lazy)
                            .authenticate(noise)
                            .multiplex(yamux::Config::default()),
                    )
                })
                .map_err(|e| err(&e))?
        ),
        SwarmTransport::Network(None) => finish!(
            builder
                .with_tcp(
                    tcp::Config::default().nodelay(true),
                    noise::Config::new,
                    yamux::Config::default
                )
                .map_err(|e| err(&e))?
                .with_quic()
        ),
    };
    Ok(swarm)
}

/// Options for reading from the network: Kubo's global `offline` and `timeout` options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FetchOptions {
    /// Read only the local store.
    pub offline: bool,
    /// Give up after this long.
    pub timeout: Option<Duration>,
}

impl FetchOptions {
    /// Only the local store.
    pub fn offline() -> Self {
        FetchOptions {
            offline: true,
            timeout: None,
        }
    }

    /// From the network, giving up after `timeout` (none when `None`).
    pub fn with_timeout(timeout: Option<Duration>) -> Self {
        FetchOptions {
            offline: false,
            timeout,
        }
    }
}

/// The progress stream of [`Node::fetch_dag`].
pub type DagFetch = BoxStream<'static, Result<DagProgress, NodeError>>;

fn bitswap_error(e: cairn_bitswap::BitswapError) -> NodeError {
    match e {
        cairn_bitswap::BitswapError::Stopped => NodeError::NodeStopped,
        other => NodeError::Bitswap(other.to_string()),
    }
}

/// An offline DAG walk: reads the stored blocks, fails at the first missing one.
fn local_walk(store: Blockstore, root: Cid) -> DagFetch {
    let (tx, rx) = mpsc::channel(64);
    tokio::task::spawn_blocking(move || {
        let mut stack = vec![root];
        let mut seen = HashSet::from([root]);
        let (mut blocks, mut bytes) = (0u64, 0u64);
        while let Some(cid) = stack.pop() {
            let item = match store.get(&cid) {
                Ok(Some(b)) => match cairn_blockstore::codec::links(b.cid(), b.data()) {
                    Ok(links) => {
                        for l in links.into_iter().rev() {
                            if seen.insert(l) {
                                stack.push(l);
                            }
                        }
                        blocks += 1;
                        bytes += b.len() as u64;
                        Ok(DagProgress::new(cid, blocks, bytes))
                    }
                    Err(e) => Err(NodeError::Blockstore(e)),
                },
                Ok(None) => Err(NodeError::BlockNotFound(cid)),
                Err(e) => Err(NodeError::Blockstore(e)),
            };
            let stop = item.is_err();
            if tx.blocking_send(item).is_err() || stop {
                return;
            }
        }
    });
    ReceiverStream::new(rx).boxed()
}

/// The raw-stream control (libp2p-stream's has no `Debug`).
#[derive(Clone)]
struct StreamControl(libp2p_stream::Control);

impl std::fmt::Debug for StreamControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StreamControl")
    }
}

/// The blockstore, shared between the handles and the event loop until shutdown takes it.
pub(crate) type StoreSlot = Arc<parking_lot::RwLock<Option<Blockstore>>>;

#[derive(Debug)]
pub(crate) struct Shared {
    peer_id: PeerId,
    /// The identity key pair (`self`), which signs this node's IPNS records.
    pub(crate) keypair: Keypair,
    /// The other named keys (`<repo>/keystore`, or in memory).
    pub(crate) keystore: crate::keystore::Keystore,
    /// IPNS over pubsub: whether it is on, and the names followed.
    pub(crate) name_pubsub: crate::names::NamePubsub,
    commands: mpsc::Sender<Command>,
    cancel: CancellationToken,
    events: crate::events::Emitter,
    /// Emptied by the event loop at shutdown, so the store (and sled's file lock) is released.
    blockstore: StoreSlot,
    stopped: watch::Receiver<bool>,
    /// libp2p's metrics (bandwidth, swarm, kad, identify, ping, gossipsub).
    registry: Arc<prometheus_client::registry::Registry>,
    stream: StreamControl,
    public_key: libp2p::identity::PublicKey,
    protocols: Vec<String>,
    bitswap: Bitswap,
    provider: Provider,
    /// Serialises MFS commands (Kubo's MFS root has one lock too): each reads the root, makes
    /// blocks, then sets the root.
    mfs_lock: Arc<tokio::sync::Mutex<()>>,
}

impl Drop for Shared {
    /// Dropping the last handle shuts the node down, along the same path as [`Node::shutdown`].
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// A running cairn node. Cheap to clone; every clone drives the same node. When the last clone is
/// dropped the node shuts down. After shutdown every call returns [`NodeError::NodeStopped`].
#[derive(Clone, Debug)]
pub struct Node {
    shared: Arc<Shared>,
}

impl Node {
    /// A builder with defaults: in memory, Kubo's default config with a new identity.
    pub fn builder() -> NodeBuilder {
        NodeBuilder::new()
    }

    /// This node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.shared.peer_id
    }

    /// A handle that does not keep the node alive (for the node's own background tasks).
    pub(crate) fn downgrade(&self) -> std::sync::Weak<Shared> {
        Arc::downgrade(&self.shared)
    }

    /// The node behind a [`Node::downgrade`] handle, while it still has other handles.
    pub(crate) fn upgrade(weak: &std::sync::Weak<Shared>) -> Option<Node> {
        weak.upgrade().map(|shared| Node { shared })
    }

    /// The node's shared state, for the other `impl Node` blocks of the crate.
    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, NodeError>>) -> Command,
    ) -> Result<T, NodeError> {
        if self.shared.cancel.is_cancelled() {
            return Err(NodeError::NodeStopped);
        }
        let (tx, rx) = oneshot::channel();
        self.shared
            .commands
            .send(make(tx))
            .await
            .map_err(|_| NodeError::NodeStopped)?;
        rx.await.map_err(|_| NodeError::NodeStopped)?
    }

    /// The MFS command lock (see `Shared::mfs_lock`).
    pub(crate) fn mfs_lock(&self) -> Arc<tokio::sync::Mutex<()>> {
        self.shared.mfs_lock.clone()
    }

    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(Blockstore) -> Result<T, cairn_blockstore::BlockstoreError> + Send + 'static,
    ) -> Result<T, NodeError> {
        let store = self.blockstore()?;
        Ok(tokio::task::spawn_blocking(move || f(store))
            .await
            .map_err(|_| NodeError::NodeStopped)??)
    }

    /// The addresses the node listens on.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, NodeError> {
        self.call(|reply| Command::ListenAddrs { reply }).await
    }

    /// Addresses other peers observed or confirmed for this node.
    pub async fn external_addrs(&self) -> Result<Vec<Multiaddr>, NodeError> {
        self.call(|reply| Command::ExternalAddrs { reply }).await
    }

    /// Dials an address (with or without `/p2p/<id>`) and returns the peer once connected. A peer
    /// connected this way is protected from the connection manager.
    pub async fn connect(&self, addr: Multiaddr) -> Result<PeerId, NodeError> {
        let target = addr.to_string();
        match tokio::time::timeout(
            DIAL_TIMEOUT,
            self.call(|reply| Command::Connect { addr, reply }),
        )
        .await
        {
            Ok(result) => result,
            Err(_) => Err(NodeError::Dial {
                target,
                reason: "timed out".into(),
            }),
        }
    }

    /// Closes every connection to a peer.
    pub async fn disconnect(&self, peer: PeerId) -> Result<(), NodeError> {
        self.call(|reply| Command::Disconnect { peer, reply }).await
    }

    /// The connected peers, with address, direction, latency and agent.
    pub async fn peers(&self) -> Result<Vec<PeerInfo>, NodeError> {
        self.call(|reply| Command::Peers { reply }).await
    }

    /// Shields a peer from the connection manager (or removes the shield).
    pub async fn protect(&self, peer: PeerId, protect: bool) -> Result<(), NodeError> {
        self.shared
            .commands
            .send(Command::Protect { peer, protect })
            .await
            .map_err(|_| NodeError::NodeStopped)
    }

    /// Tells the DHT where a peer can be reached.
    pub async fn add_peer_address(&self, peer: PeerId, addr: Multiaddr) -> Result<(), NodeError> {
        self.shared
            .commands
            .send(Command::AddPeerAddress { peer, addr })
            .await
            .map_err(|_| NodeError::NodeStopped)
    }

    // ---- blocks ------------------------------------------------------------------------------

    /// The node's blockstore, for operations the handle does not wrap ([`NodeError::NodeStopped`]
    /// once the node has shut down and closed it).
    pub fn blockstore(&self) -> Result<Blockstore, NodeError> {
        if self.shared.cancel.is_cancelled() {
            return Err(NodeError::NodeStopped);
        }
        self.shared
            .blockstore
            .read()
            .clone()
            .ok_or(NodeError::NodeStopped)
    }

    /// Stores a block; `true` if it was new.
    ///
    /// Peers waiting for the block get it, and with `Provide.Strategy` `all` it is queued for
    /// announcement in the DHT.
    pub async fn put_block(&self, block: &Block) -> Result<bool, NodeError> {
        let b = block.clone();
        let new = self.blocking(move |s| s.put(&b)).await?;
        self.added(&[block], false);
        Ok(new)
    }

    /// Stores a block and, with `pin`, pins it recursively, holding GC off between the two (as
    /// `block/put --pin` does); `true` if the block was new. Told to Bitswap, the provider and
    /// the event bus as [`Node::put_block`] does. Errors: the store's, or
    /// [`NodeError::NodeStopped`].
    pub async fn put_block_pinned(&self, block: &Block, pin: bool) -> Result<bool, NodeError> {
        let b = block.clone();
        let new = self
            .blocking(move |s| {
                let _guard = s.gc_guard();
                let new = s.put(&b)?;
                if pin {
                    s.pin(b.cid(), PinMode::Recursive)?;
                }
                Ok(new)
            })
            .await?;
        self.added(&[block], false);
        Ok(new)
    }

    /// Tells Bitswap and the provider about blocks stored through this handle (e.g. by an import
    /// that wrote to [`Node::blockstore`] directly); `roots` marks them as DAG roots, announced
    /// first.
    ///
    /// Each block is reported as a [`NodeEvent::BlockAdded`].
    pub fn added(&self, blocks: &[&Block], roots: bool) {
        self.shared.events.blocks_added(blocks);
        self.shared
            .bitswap
            .blocks_added(blocks.iter().map(|b| (*b.cid(), b.len())).collect());
        if self.shared.provider.config.strategy == crate::exchange::ProvideStrategy::All {
            self.announce(blocks.iter().map(|b| *b.cid()).collect(), roots);
        }
    }

    /// Reads a block: from the local store, else from peers over Bitswap (asking connected peers,
    /// then providers found in the DHT). Waits until a peer delivers; dropping the future cancels
    /// the want. [`Node::get_block_with`] takes a timeout and an offline switch.
    pub async fn get_block(&self, cid: &Cid) -> Result<Block, NodeError> {
        self.get_block_with(cid, FetchOptions::default()).await
    }

    /// [`Node::get_block`] with options. Errors: [`NodeError::BlockNotFound`] when offline and the
    /// block is not stored, [`NodeError::Timeout`] when `timeout` passes first.
    pub async fn get_block_with(&self, cid: &Cid, opts: FetchOptions) -> Result<Block, NodeError> {
        if let Some(b) = self.local_block(cid).await? {
            return Ok(b);
        }
        if opts.offline {
            return Err(NodeError::BlockNotFound(*cid));
        }
        let fetch = self.shared.bitswap.get(cid);
        let block = match opts.timeout {
            Some(t) => tokio::time::timeout(t, fetch)
                .await
                .map_err(|_| NodeError::Timeout("fetching a block"))?,
            None => fetch.await,
        };
        block.map_err(bitswap_error)
    }

    /// Reads a block from the local store only.
    pub async fn local_block(&self, cid: &Cid) -> Result<Option<Block>, NodeError> {
        let cid = *cid;
        self.blocking(move |s| s.get(&cid)).await
    }

    /// Fetches `root` and every block it links to (raw, dag-pb and dag-cbor links), reading what
    /// is stored and fetching the rest over one Bitswap session, with a window of outstanding wants
    /// that grows while blocks arrive. The stream yields one [`DagProgress`] per block and ends
    /// after the last; the first error ends it ([`NodeError::BlockNotFound`] offline,
    /// [`NodeError::Timeout`] after `timeout`). Dropping it cancels the fetch.
    pub fn fetch_dag(&self, root: Cid, opts: FetchOptions) -> DagFetch {
        let deadline = opts.timeout.map(|t| tokio::time::Instant::now() + t);
        let inner: BoxStream<'static, Result<DagProgress, NodeError>> = if opts.offline {
            match self.blockstore() {
                Ok(store) => local_walk(store, root),
                Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
            }
        } else {
            let links: cairn_bitswap::LinksFn = Arc::new(|b: &Block| {
                cairn_blockstore::codec::links(b.cid(), b.data()).map_err(|e| e.to_string())
            });
            self.shared
                .bitswap
                .session()
                .fetch_dag(root, links)
                .map(|r| r.map_err(bitswap_error))
                .boxed()
        };
        match deadline {
            None => inner,
            Some(at) => {
                let mut inner = inner;
                let mut done = false;
                futures::stream::poll_fn(move |cx| {
                    use std::future::Future;
                    if done {
                        return std::task::Poll::Ready(None);
                    }
                    if let std::task::Poll::Ready(item) = inner.poll_next_unpin(cx) {
                        return std::task::Poll::Ready(item);
                    }
                    let sleep = tokio::time::sleep_until(at);
                    tokio::pin!(sleep);
                    match sleep.poll(cx) {
                        std::task::Poll::Ready(()) => {
                            done = true;
                            std::task::Poll::Ready(Some(Err(NodeError::Timeout("fetching a DAG"))))
                        }
                        std::task::Poll::Pending => std::task::Poll::Pending,
                    }
                })
                .boxed()
            }
        }
    }

    /// Bitswap's counters, wantlist and peers (Kubo's `bitswap stat`).
    pub async fn bitswap_stat(&self) -> Result<BitswapStat, NodeError> {
        self.shared.bitswap.stat().await.map_err(bitswap_error)
    }

    /// The CIDs this node is fetching, or with `Some(peer)`, what that peer wants from this node.
    pub async fn bitswap_wantlist(&self, peer: Option<PeerId>) -> Result<Vec<Cid>, NodeError> {
        self.shared
            .bitswap
            .wantlist(peer)
            .await
            .map_err(bitswap_error)
    }

    /// What Bitswap exchanged with a peer (zeros for a peer it has not talked to).
    pub async fn bitswap_ledger(&self, peer: PeerId) -> Result<LedgerInfo, NodeError> {
        self.shared
            .bitswap
            .ledger(peer)
            .await
            .map_err(bitswap_error)
    }

    /// Queues CIDs for announcement in the DHT (roots go before other blocks); returns at once.
    /// Does nothing when `Provide.Enabled` is false.
    pub fn announce(&self, cids: Vec<Cid>, roots: bool) {
        self.shared.provider.announce(cids, roots);
    }

    /// Queues everything `Provide.Strategy` selects for announcement now (Kubo's `bitswap
    /// reprovide`); returns how many CIDs were queued.
    pub async fn reprovide(&self) -> Result<u64, NodeError> {
        self.shared.provider.reprovide().await
    }

    /// The provider queue's counters (`provide stat`).
    pub fn provide_stat(&self) -> ProvideStat {
        self.shared.provider.stat()
    }

    /// The providing settings in force.
    pub fn provide_config(&self) -> ProvideConfig {
        self.shared.provider.config.clone()
    }

    /// Whether the block is stored locally.
    pub async fn has_block(&self, cid: &Cid) -> Result<bool, NodeError> {
        let cid = *cid;
        self.blocking(move |s| s.has(&cid)).await
    }

    /// Removes a block (refused for pinned blocks); `true` if it was there.
    pub async fn remove_block(&self, cid: &Cid) -> Result<bool, NodeError> {
        let cid = *cid;
        self.blocking(move |s| s.delete(&cid)).await
    }

    /// Pins a CID.
    ///
    /// With `Provide.Strategy` `pinned` or `roots`, the pinned CID is announced as a root.
    pub async fn pin(&self, cid: &Cid, mode: PinMode) -> Result<(), NodeError> {
        self.pin_named(cid, mode, "").await
    }

    /// [`Node::pin`] with a pin name (Kubo's `pin add --name`; empty for none).
    pub async fn pin_named(&self, cid: &Cid, mode: PinMode, name: &str) -> Result<(), NodeError> {
        let (c, name) = (*cid, name.to_string());
        self.blocking(move |s| s.pin_named(&c, mode, &name)).await?;
        if self.shared.provider.config.strategy != crate::exchange::ProvideStrategy::All {
            self.announce(vec![*cid], true);
        }
        Ok(())
    }

    /// Removes a pin.
    pub async fn unpin(&self, cid: &Cid, recursive: bool) -> Result<(), NodeError> {
        let cid = *cid;
        self.blocking(move |s| s.unpin(&cid, recursive)).await
    }

    /// How `cid` is pinned: `None` if not at all, else recursively, directly, or indirectly
    /// (through a recursive pin's DAG).
    pub async fn pin_state(&self, cid: &Cid) -> Result<Option<PinState>, NodeError> {
        let cid = *cid;
        self.blocking(move |s| s.pin_state(&cid)).await
    }

    /// Lists pins.
    pub async fn pins(&self, filter: PinFilter) -> Result<Vec<PinInfo>, NodeError> {
        self.blocking(move |s| s.pins(filter)).await
    }

    /// Removes every unpinned block.
    pub async fn gc(&self) -> Result<GcReport, NodeError> {
        self.blocking(|s| s.gc()).await
    }

    // ---- pubsub ------------------------------------------------------------------------------

    /// Publishes a message (needs gossipsub on).
    pub async fn publish(
        &self,
        topic: impl Into<String>,
        data: impl Into<Bytes>,
    ) -> Result<(), NodeError> {
        let (topic, data) = (topic.into(), data.into());
        self.call(|reply| Command::Publish { topic, data, reply })
            .await
    }

    /// Subscribes to a topic; the stream yields its messages (this node's own included, as Kubo does).
    pub async fn subscribe(&self, topic: impl Into<String>) -> Result<Subscription, NodeError> {
        let topic = topic.into();
        let (sender, rx) = mpsc::channel(1024);
        self.call(|reply| Command::Subscribe {
            topic,
            sender,
            reply,
        })
        .await?;
        Ok(ReceiverStream::new(rx))
    }

    /// Ends every subscription to a topic.
    pub async fn unsubscribe(&self, topic: impl Into<String>) -> Result<(), NodeError> {
        let topic = topic.into();
        self.call(|reply| Command::Unsubscribe { topic, reply })
            .await
    }

    /// The topics this node is subscribed to.
    pub async fn topics(&self) -> Result<Vec<String>, NodeError> {
        self.call(|reply| Command::Topics { reply }).await
    }

    /// Connected pubsub peers subscribed to `topic` (to any topic when `None`).
    pub async fn topic_peers(&self, topic: Option<String>) -> Result<Vec<PeerId>, NodeError> {
        self.call(|reply| Command::TopicPeers { topic, reply })
            .await
    }

    // ---- DHT ---------------------------------------------------------------------------------

    /// Announces on the DHT that this node provides `cid`; returns when the announcement finished.
    ///
    /// A success is reported as a [`NodeEvent::BlockProvided`].
    pub async fn provide(&self, cid: &Cid) -> Result<(), NodeError> {
        let cid = *cid;
        self.call(|reply| Command::Provide { cid, reply }).await?;
        self.shared
            .events
            .emit_with(|| NodeEvent::BlockProvided { cid });
        Ok(())
    }

    /// Looks up providers of `cid`; the stream ends after `limit` providers or when the query ends.
    pub async fn find_providers(
        &self,
        cid: &Cid,
        limit: usize,
    ) -> Result<ProviderStream, NodeError> {
        if self.shared.cancel.is_cancelled() {
            return Err(NodeError::NodeStopped);
        }
        let (sender, rx) = mpsc::channel(limit.clamp(1, 1024));
        self.shared
            .commands
            .send(Command::FindProviders {
                cid: *cid,
                limit: limit.max(1),
                sender,
            })
            .await
            .map_err(|_| NodeError::NodeStopped)?;
        Ok(ReceiverStream::new(rx))
    }

    /// Finds a peer's addresses (from a connection or through the DHT).
    pub async fn find_peer(&self, peer: PeerId) -> Result<Vec<Multiaddr>, NodeError> {
        self.call(|reply| Command::FindPeer { peer, reply }).await
    }

    /// Runs Kademlia's iterative FIND_NODE for `key` on the WAN DHT (`/ipfs/kad/1.0.0`), as Kubo's
    /// `dht query` does, and returns the up to 20 closest peers it found, nearest first, with the
    /// lookup's cost ([`LookupStats`](crate::LookupStats): messages sent, answered, failed, time).
    /// `key` is the raw key: a peer id's bytes, a multihash, a record key. A lookup that times
    /// out (kad's 60 s) still returns what it reached.
    ///
    /// # Errors
    /// [`NodeError::NodeStopped`] once the node has stopped.
    pub async fn closest_peers(
        &self,
        key: impl Into<Vec<u8>>,
    ) -> Result<crate::ClosestPeers, NodeError> {
        let key = key.into();
        self.call(|reply| Command::ClosestPeers { key, reply })
            .await
    }

    /// Puts a value record in the DHT, as Kubo's `routing put` does: `key` is
    /// `/ipns/<peer id bytes>` or `/pk/<peer id bytes>`, and `value` must be valid under it
    /// ([`crate::dht_records`]: a signed, unexpired IPNS record of that peer, or that peer's
    /// public key). The record is kept in this node's DHT stores (it answers `GET_VALUE` for it)
    /// and sent to the closest peers of both DHTs. Returns how many peers took it.
    ///
    /// # Errors
    /// [`NodeError::InvalidRecord`] for a record that does not validate, or is worse than the
    /// one this node holds under `key` (nothing is sent),
    /// [`NodeError::Routing`] if no peer took it (`failed to find any peer in table` on a node
    /// with empty tables), [`NodeError::NodeStopped`].
    pub async fn put_value(
        &self,
        key: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
    ) -> Result<usize, NodeError> {
        let (key, value) = (key.into(), value.into());
        crate::dht_records::validate(&key, &value, std::time::SystemTime::now())?;
        self.call(|reply| Command::PutValue { key, value, reply })
            .await
    }

    /// Every valid value record found under `key` in the DHT (this node's own store included),
    /// best first, as Kubo's `routing get` collects them (up to 16).
    ///
    /// # Errors
    /// [`NodeError::Routing`] `not found` when no valid record was found;
    /// [`NodeError::NodeStopped`].
    pub async fn get_values(&self, key: impl Into<Vec<u8>>) -> Result<Vec<Vec<u8>>, NodeError> {
        let key = key.into();
        let k = key.clone();
        let mut values = self
            .call(|reply| Command::GetValue { key: k, reply })
            .await?;
        if values.is_empty() {
            return Err(NodeError::Routing("not found".into()));
        }
        if let Some(best) = crate::dht_records::select(&key, &values) {
            values.swap(0, best);
        }
        Ok(values)
    }

    /// The best valid value record under `key` in the DHT (see [`Node::get_values`]).
    ///
    /// # Errors
    /// As [`Node::get_values`].
    pub async fn get_value(&self, key: impl Into<Vec<u8>>) -> Result<Vec<u8>, NodeError> {
        Ok(self.get_values(key).await?.swap_remove(0))
    }

    // ---- identity and diagnostics --------------------------------------------------------------

    /// This node's public key.
    pub fn public_key(&self) -> libp2p::identity::PublicKey {
        self.shared.public_key.clone()
    }

    /// The protocols this node serves (as identify announces them).
    pub fn local_protocols(&self) -> Vec<String> {
        self.shared.protocols.clone()
    }

    /// libp2p's metrics in the Prometheus text format (bandwidth, connections, kad, identify,
    /// ping, gossipsub), without the closing `# EOF`, so it can be appended to other metrics.
    pub fn libp2p_metrics(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode_registry(&mut out, &self.shared.registry);
        out
    }

    /// Bytes received and sent over all connections since start.
    pub fn bandwidth(&self) -> (u64, u64) {
        let (mut inbound, mut outbound) = (0u64, 0u64);
        for line in self
            .libp2p_metrics()
            .lines()
            .filter(|l| l.starts_with("libp2p_bandwidth_bytes_total{"))
        {
            let value = line
                .rsplit(' ')
                .next()
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0) as u64;
            if line.contains("direction=\"Inbound\"") {
                inbound += value;
            } else if line.contains("direction=\"Outbound\"") {
                outbound += value;
            }
        }
        (inbound, outbound)
    }

    /// Pings a peer once over `/ipfs/ping/1.0.0` (dialling it if needed) and returns the round trip.
    pub async fn ping(&self, peer: PeerId) -> Result<Duration, NodeError> {
        use futures::{AsyncReadExt, AsyncWriteExt};
        if self.shared.cancel.is_cancelled() {
            return Err(NodeError::NodeStopped);
        }
        let protocol = libp2p::StreamProtocol::new("/ipfs/ping/1.0.0");
        let mut control = self.shared.stream.0.clone();
        let run = async {
            let mut stream =
                control
                    .open_stream(peer, protocol)
                    .await
                    .map_err(|e| NodeError::Dial {
                        target: peer.to_string(),
                        reason: e.to_string(),
                    })?;
            let payload: [u8; 32] = rand::random();
            let started = std::time::Instant::now();
            let io = |e: std::io::Error| NodeError::Dial {
                target: peer.to_string(),
                reason: e.to_string(),
            };
            stream.write_all(&payload).await.map_err(io)?;
            stream.flush().await.map_err(io)?;
            let mut echo = [0u8; 32];
            stream.read_exact(&mut echo).await.map_err(io)?;
            if echo != payload {
                return Err(NodeError::Dial {
                    target: peer.to_string(),
                    reason: "ping reply did not match".into(),
                });
            }
            Ok(started.elapsed())
        };
        tokio::time::timeout(Duration::from_secs(20), run)
            .await
            .map_err(|_| NodeError::Timeout("ping"))?
    }

    // ---- bootstrap -----------------------------------------------------------------------------

    /// Where the bootstrapper is: connecting, backing off until when, attempts, connected
    /// bootstrap peers, the last error.
    pub async fn bootstrap_status(&self) -> Result<BootstrapStatus, NodeError> {
        self.call(|reply| Command::BootstrapStatus { reply }).await
    }

    /// Replaces the bootstrap list; the next round uses it.
    pub async fn set_bootstrap_list(&self, list: BootstrapList) -> Result<(), NodeError> {
        self.call(|reply| Command::SetBootstrapList { list, reply })
            .await
    }

    /// The peers in the DHT routing table (the WAN DHT, `/ipfs/kad/1.0.0`).
    pub async fn routing_table(&self) -> Result<Vec<PeerId>, NodeError> {
        self.call(|reply| Command::RoutingTable { lan: false, reply })
            .await
    }

    /// The peers in the LAN DHT's routing table (`/ipfs/lan/kad/1.0.0`): as in Kubo, only peers
    /// seen on private or loopback addresses (see the `dual_dht` module).
    pub async fn lan_routing_table(&self) -> Result<Vec<PeerId>, NodeError> {
        self.call(|reply| Command::RoutingTable { lan: true, reply })
            .await
    }

    // ---- lifecycle ---------------------------------------------------------------------------

    /// A receiver of the node's events from now on: peers connecting, disconnecting, identified,
    /// discovered; bootstrap phases; listen addresses; blocks added through the node or received
    /// over Bitswap, provided, sent over Bitswap (see [`NodeEvent`] and [`crate::events`] for
    /// their JSON form).
    ///
    /// The bus holds [`crate::EVENT_CAPACITY`] (1024) events for the slowest receiver; a receiver
    /// further behind loses the oldest and its next `recv` returns `RecvError::Lagged(n)` with
    /// the number lost. The node never waits for receivers. Events are only built while at least
    /// one receiver exists, so an unused bus costs nothing.
    pub fn events(&self) -> broadcast::Receiver<NodeEvent> {
        self.shared.events.subscribe()
    }

    /// Puts `event` on the node's bus, for services that run beside the node and report
    /// through it (the daemon's supervisor publishes [`NodeEvent::ServiceStateChanged`]). Built
    /// events cost nothing more when nobody listens; the node never waits for receivers.
    pub fn publish_event(&self, event: NodeEvent) {
        self.shared.events.emit(event);
    }

    /// Whether the node has not been shut down.
    pub fn is_running(&self) -> bool {
        !*self.shared.stopped.borrow()
    }

    /// The token whose cancellation shuts the node down; a daemon trips it from signals and RPC.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shared.cancel.clone()
    }

    /// Resolves once the node has fully stopped (store flushed, repo lock released).
    pub async fn stopped(&self) {
        let mut rx = self.shared.stopped.clone();
        let _ = rx.wait_for(|s| *s).await;
    }

    /// Shuts the node down: closes listeners and connections, flushes the store, releases the repo
    /// lock. Returns within 2 s; calling it again is harmless.
    pub async fn shutdown(&self) -> Result<(), NodeError> {
        self.shared.cancel.cancel();
        tokio::time::timeout(SHUTDOWN_TIMEOUT, self.stopped())
            .await
            .map_err(|_| NodeError::Timeout("shutdown"))
    }
}

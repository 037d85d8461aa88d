//! The task that owns the `Swarm`: one `tokio::select!` over the cancellation token, the command
//! inbox, swarm events and a housekeeping tick. Replies that wait on the network are parked in maps
//! keyed by connection or query id.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use cid::Cid;
use futures::StreamExt;
use libp2p::core::ConnectedPoint;
use libp2p::core::transport::ListenerId;
use libp2p::gossipsub::{self, IdentTopic, PublishError, TopicHash};
use libp2p::kad;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm, identify, mdns, ping};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use cairn_bootstrap::discovery::{DISCOVERY_TOPIC, decode_record, encode_record};
use cairn_bootstrap::{
    BootstrapAction, BootstrapEvent, BootstrapList, BootstrapPhase, BootstrapStatus, Bootstrapper,
};
use libp2p::identity::PublicKey;

use crate::behaviour::{Behaviour, BehaviourEvent};
use crate::connmgr::{Candidate, ConnMgrLimits, KBUCKET_SCORE, PROTECTED_BUCKETS, select_victims};
use crate::dual_dht::{Dht, DualDht, QueryStep, table_addrs};
use crate::error::NodeError;
use crate::repo::Repo;
use crate::types::{Direction, NodeEvent, PeerInfo, Provider, PubsubMessage, peer_id_of};

type Reply<T> = oneshot::Sender<Result<T, NodeError>>;

/// A request from a `Node` handle to the loop.
pub(crate) enum Command {
    Connect {
        addr: Multiaddr,
        reply: Reply<PeerId>,
    },
    Disconnect {
        peer: PeerId,
        reply: Reply<()>,
    },
    Peers {
        reply: Reply<Vec<PeerInfo>>,
    },
    ListenAddrs {
        reply: Reply<Vec<Multiaddr>>,
    },
    ExternalAddrs {
        reply: Reply<Vec<Multiaddr>>,
    },
    Publish {
        topic: String,
        data: Bytes,
        reply: Reply<()>,
    },
    Subscribe {
        topic: String,
        sender: mpsc::Sender<PubsubMessage>,
        reply: Reply<()>,
    },
    Unsubscribe {
        topic: String,
        reply: Reply<()>,
    },
    Topics {
        reply: Reply<Vec<String>>,
    },
    TopicPeers {
        topic: Option<String>,
        reply: Reply<Vec<PeerId>>,
    },
    Provide {
        cid: Cid,
        reply: Reply<()>,
    },
    FindProviders {
        cid: Cid,
        limit: usize,
        sender: mpsc::Sender<Provider>,
    },
    FindPeer {
        peer: PeerId,
        reply: Reply<Vec<Multiaddr>>,
    },
    ClosestPeers {
        key: Vec<u8>,
        reply: Reply<crate::types::ClosestPeers>,
    },
    /// Stores a validated value record and sends it to the closest peers of both DHTs.
    PutValue {
        key: Vec<u8>,
        value: Vec<u8>,
        reply: Reply<usize>,
    },
    /// Collects the valid value records under a key from both DHTs (this node's store first).
    GetValue {
        key: Vec<u8>,
        reply: Reply<Vec<Vec<u8>>>,
    },
    Protect {
        peer: PeerId,
        protect: bool,
    },
    BootstrapStatus {
        reply: Reply<BootstrapStatus>,
    },
    SetBootstrapList {
        list: BootstrapList,
        reply: Reply<()>,
    },
    RoutingTable {
        /// The LAN DHT's table instead of the WAN one's.
        lan: bool,
        reply: Reply<Vec<PeerId>>,
    },
    AddPeerAddress {
        peer: PeerId,
        addr: Multiaddr,
    },
    /// Dials a peer by id, at the addresses the behaviours (the DHT) know; not protected.
    DialPeer {
        peer: PeerId,
        reply: Reply<()>,
    },
}

struct PeerState {
    address: Multiaddr,
    direction: Direction,
    connected_at: Instant,
    connected_since: SystemTime,
    latency: Option<Duration>,
    agent_version: Option<String>,
    protocols: Vec<String>,
    listen_addrs: Vec<Multiaddr>,
}

/// Everything the event loop is built from.
pub(crate) struct LoopParts {
    pub swarm: Swarm<Behaviour>,
    pub commands: mpsc::Receiver<Command>,
    pub cancel: CancellationToken,
    pub events: crate::events::Emitter,
    pub blockstore: crate::node::StoreSlot,
    pub repo: Option<Repo>,
    pub conn_mgr: ConnMgrLimits,
    pub listening: HashSet<ListenerId>,
    pub ready: oneshot::Sender<Result<(), NodeError>>,
    pub stopped: watch::Sender<bool>,
    pub bootstrapper: Bootstrapper,
    pub discovery_interval: Option<Duration>,
    pub public_key: PublicKey,
    /// The swarm key's fingerprint, in a private network.
    pub private: Option<String>,
    pub metrics: libp2p::metrics::Metrics,
    /// Told about each peer's first connection and its last disconnection.
    pub bitswap: cairn_bitswap::Bitswap,
}

pub(crate) struct EventLoop {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    cancel: CancellationToken,
    events: crate::events::Emitter,
    blockstore: crate::node::StoreSlot,
    repo: Option<Repo>,
    conn_mgr: ConnMgrLimits,
    protected: HashSet<PeerId>,
    listening: HashSet<ListenerId>,
    reported: HashSet<ListenerId>,
    ready: Option<oneshot::Sender<Result<(), NodeError>>>,
    stopped: watch::Sender<bool>,
    peers: HashMap<PeerId, PeerState>,
    dials: HashMap<ConnectionId, (String, Reply<PeerId>)>,
    /// Provide, find-providers and find-peer on the WAN and LAN DHTs.
    dht: DualDht,
    subscriptions: HashMap<TopicHash, Vec<mpsc::Sender<PubsubMessage>>>,
    last_trim: Option<Instant>,
    bootstrapper: Bootstrapper,
    bootstrap_dials: HashMap<ConnectionId, PeerId>,
    last_phase: Option<BootstrapPhase>,
    discovery: Option<tokio::time::Interval>,
    public_key: PublicKey,
    private: Option<String>,
    metrics: libp2p::metrics::Metrics,
    bitswap: cairn_bitswap::Bitswap,
    peer_dials: HashMap<ConnectionId, Reply<()>>,
}

/// Ticks an optional interval; never resolves when there is none.
async fn maybe_tick(interval: &mut Option<tokio::time::Interval>) {
    match interval {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

impl EventLoop {
    pub fn new(parts: LoopParts) -> Self {
        EventLoop {
            swarm: parts.swarm,
            commands: parts.commands,
            cancel: parts.cancel,
            events: parts.events,
            blockstore: parts.blockstore,
            repo: parts.repo,
            conn_mgr: parts.conn_mgr,
            protected: HashSet::new(),
            listening: parts.listening,
            reported: HashSet::new(),
            ready: Some(parts.ready),
            stopped: parts.stopped,
            peers: HashMap::new(),
            dials: HashMap::new(),
            dht: DualDht::default(),
            subscriptions: HashMap::new(),
            last_trim: None,
            bootstrapper: parts.bootstrapper,
            bootstrap_dials: HashMap::new(),
            last_phase: None,
            discovery: parts.discovery_interval.map(|d| {
                let mut i = tokio::time::interval(d);
                i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                i
            }),
            public_key: parts.public_key,
            private: parts.private,
            bitswap: parts.bitswap,
            peer_dials: HashMap::new(),
            metrics: parts.metrics,
        }
    }

    pub async fn run(mut self) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        if self.listening.is_empty() {
            self.mark_ready(Ok(()));
        }
        if self.discovery.is_some()
            && let Some(g) = self.swarm.behaviour_mut().gossipsub.as_mut()
        {
            let _ = g.subscribe(&IdentTopic::new(DISCOVERY_TOPIC));
        }
        loop {
            let bootstrap_wakeup = self.bootstrap_wakeup();
            tokio::select! {
                biased;
                _ = self.cancel.cancelled() => break,
                command = self.commands.recv() => match command {
                    Some(c) => self.on_command(c),
                    None => break,
                },
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                _ = tokio::time::sleep_until(bootstrap_wakeup) => self.bootstrap(BootstrapEvent::Tick),
                _ = maybe_tick(&mut self.discovery) => self.announce(),
                _ = tick.tick() => self.on_tick(),
            }
        }
        self.stop().await;
    }

    /// The single shutdown path: stop listening, drop connections and pending replies, flush the
    /// store, release the repo lock, then tell every waiter.
    async fn stop(mut self) {
        tracing::debug!("node shutting down");
        self.cancel.cancel();
        let listeners: Vec<ListenerId> = self.listening.drain().collect();
        for id in listeners {
            self.swarm.remove_listener(id);
        }
        let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        for peer in peers {
            let _ = self.swarm.disconnect_peer_id(peer);
        }
        let EventLoop {
            swarm,
            blockstore,
            repo,
            stopped,
            commands,
            ..
        } = self;
        drop(commands);
        drop(swarm);
        // Take the store from the handles, so its files close once in-flight calls finish.
        let store = blockstore.write().take();
        if let Some(store) = store {
            let flushed = tokio::task::spawn_blocking(move || store.flush()).await;
            match flushed {
                Ok(Err(e)) => tracing::error!("flushing the blockstore at shutdown failed: {e}"),
                Err(e) => tracing::error!("flush task failed: {e}"),
                Ok(Ok(())) => {}
            }
        }
        drop(repo);
        let _ = stopped.send(true);
        tracing::debug!("node stopped");
    }

    fn mark_ready(&mut self, result: Result<(), NodeError>) {
        if let Some(ready) = self.ready.take() {
            let _ = ready.send(result);
        }
    }

    fn emit(&self, event: NodeEvent) {
        self.events.emit(event);
    }

    // ---- commands --------------------------------------------------------------------------

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Connect { addr, reply } => self.connect(addr, reply),
            Command::Disconnect { peer, reply } => {
                self.protected.remove(&peer);
                let result = self
                    .swarm
                    .disconnect_peer_id(peer)
                    .map_err(|()| NodeError::NotConnected(peer));
                let _ = reply.send(result);
            }
            Command::Peers { reply } => {
                let peers = self
                    .peers
                    .iter()
                    .map(|(id, s)| PeerInfo {
                        peer_id: *id,
                        address: s.address.clone(),
                        direction: s.direction,
                        latency: s.latency,
                        agent_version: s.agent_version.clone(),
                        protocols: s.protocols.clone(),
                        listen_addrs: s.listen_addrs.clone(),
                        connected_since: s.connected_since,
                    })
                    .collect();
                let _ = reply.send(Ok(peers));
            }
            Command::ListenAddrs { reply } => {
                let _ = reply.send(Ok(self.swarm.listeners().cloned().collect()));
            }
            Command::ExternalAddrs { reply } => {
                let _ = reply.send(Ok(self.swarm.external_addresses().cloned().collect()));
            }
            Command::Publish { topic, data, reply } => {
                let _ = reply.send(self.publish(topic, data));
            }
            Command::Subscribe {
                topic,
                sender,
                reply,
            } => {
                let result = match self.swarm.behaviour_mut().gossipsub.as_mut() {
                    None => Err(NodeError::PubsubDisabled),
                    Some(g) => {
                        let t = IdentTopic::new(topic);
                        match g.subscribe(&t) {
                            Ok(_) => {
                                self.subscriptions.entry(t.hash()).or_default().push(sender);
                                Ok(())
                            }
                            Err(e) => Err(NodeError::Pubsub(format!("subscribe: {e:?}"))),
                        }
                    }
                };
                let _ = reply.send(result);
            }
            Command::Unsubscribe { topic, reply } => {
                let result = match self.swarm.behaviour_mut().gossipsub.as_mut() {
                    None => Err(NodeError::PubsubDisabled),
                    Some(g) => {
                        let t = IdentTopic::new(topic);
                        g.unsubscribe(&t);
                        self.subscriptions.remove(&t.hash());
                        Ok(())
                    }
                };
                let _ = reply.send(result);
            }
            Command::Topics { reply } => {
                let result = match self.swarm.behaviour().gossipsub.as_ref() {
                    None => Err(NodeError::PubsubDisabled),
                    Some(g) => Ok(g.topics().map(|t| t.as_str().to_string()).collect()),
                };
                let _ = reply.send(result);
            }
            Command::TopicPeers { topic, reply } => {
                let result = match self.swarm.behaviour().gossipsub.as_ref() {
                    None => Err(NodeError::PubsubDisabled),
                    Some(g) => {
                        let wanted = topic.map(|t| IdentTopic::new(t).hash());
                        Ok(g.all_peers()
                            .filter(|(_, topics)| match &wanted {
                                None => !topics.is_empty(),
                                Some(w) => topics.contains(&w),
                            })
                            .map(|(p, _)| *p)
                            .collect())
                    }
                };
                let _ = reply.send(result);
            }
            Command::Provide { cid, reply } => {
                if self.peers.is_empty() {
                    // Kubo's wording: a provide with nobody to tell is an error.
                    let _ = reply.send(Err(NodeError::Routing(
                        "cannot provide, no connected peers".into(),
                    )));
                    return;
                }
                let key = kad::RecordKey::from(*cid.hash());
                self.dht.provide(self.swarm.behaviour_mut(), key, reply);
            }
            Command::FindProviders { cid, limit, sender } => {
                let key = kad::RecordKey::from(*cid.hash());
                self.dht
                    .find_providers(self.swarm.behaviour_mut(), key, limit, sender);
            }
            Command::FindPeer { peer, reply } => {
                if let Some(addrs) = self.connected_addrs(&peer) {
                    let _ = reply.send(Ok(addrs));
                    return;
                }
                self.dht.find_peer(self.swarm.behaviour_mut(), peer, reply);
            }
            Command::ClosestPeers { key, reply } => {
                self.dht
                    .closest_peers(self.swarm.behaviour_mut(), key, reply);
            }
            Command::PutValue { key, value, reply } => {
                self.dht
                    .put_value(self.swarm.behaviour_mut(), key, value, reply);
            }
            Command::GetValue { key, reply } => {
                self.dht.get_value(self.swarm.behaviour_mut(), key, reply);
            }
            Command::Protect { peer, protect } => {
                if protect {
                    self.protected.insert(peer);
                } else {
                    self.protected.remove(&peer);
                }
            }
            Command::BootstrapStatus { reply } => {
                let _ = reply.send(Ok(self.bootstrapper.status(std::time::Instant::now())));
            }
            Command::SetBootstrapList { list, reply } => {
                self.bootstrapper.set_list(list);
                let _ = reply.send(Ok(()));
            }
            Command::RoutingTable { lan, reply } => {
                let mut peers = Vec::new();
                let dht = if lan { Dht::Lan } else { Dht::Wan };
                for bucket in crate::dual_dht::kad_of(self.swarm.behaviour_mut(), dht).kbuckets() {
                    peers.extend(bucket.iter().map(|e| *e.node.key.preimage()));
                }
                let _ = reply.send(Ok(peers));
            }
            Command::AddPeerAddress { peer, addr } => {
                self.swarm.behaviour_mut().kad.add_address(&peer, addr);
            }
            Command::DialPeer { peer, reply } => {
                if self.swarm.is_connected(&peer) {
                    let _ = reply.send(Ok(()));
                    return;
                }
                let opts = DialOpts::peer_id(peer)
                    .condition(PeerCondition::DisconnectedAndNotDialing)
                    .build();
                let id = opts.connection_id();
                match self.swarm.dial(opts) {
                    Ok(()) => {
                        self.peer_dials.insert(id, reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(NodeError::Dial {
                            target: peer.to_string(),
                            reason: e.to_string(),
                        }));
                    }
                }
            }
        }
    }

    fn connect(&mut self, addr: Multiaddr, reply: Reply<PeerId>) {
        let target = addr.to_string();
        let opts = match peer_id_of(&addr) {
            Some(peer) if self.swarm.is_connected(&peer) => {
                self.protected.insert(peer);
                let _ = reply.send(Ok(peer));
                return;
            }
            Some(peer) => DialOpts::peer_id(peer)
                .addresses(vec![addr])
                .condition(PeerCondition::Always)
                .build(),
            None => DialOpts::unknown_peer_id().address(addr).build(),
        };
        let id = opts.connection_id();
        match self.swarm.dial(opts) {
            Ok(()) => {
                self.dials.insert(id, (target, reply));
            }
            Err(e) => {
                let _ = reply.send(Err(NodeError::Dial {
                    target,
                    reason: e.to_string(),
                }));
            }
        }
    }

    fn publish(&mut self, topic: String, data: Bytes) -> Result<(), NodeError> {
        let local = *self.swarm.local_peer_id();
        let gossipsub = self
            .swarm
            .behaviour_mut()
            .gossipsub
            .as_mut()
            .ok_or(NodeError::PubsubDisabled)?;
        let t = IdentTopic::new(topic.clone());
        let seqno = match gossipsub.publish(t.clone(), data.to_vec()) {
            // The id is go's: author bytes then the 8-byte big-endian seqno (see go_message_id).
            Ok(id) => {
                id.0.len()
                    .checked_sub(8)
                    .map(|at| u64::from_be_bytes(id.0[at..].try_into().expect("8 bytes")))
            }
            // Kubo publishes to a topic nobody listens to without complaint.
            Err(PublishError::NoPeersSubscribedToTopic) => None,
            Err(PublishError::MessageTooLarge) => {
                return Err(NodeError::Pubsub(format!(
                    "message of {} bytes is over the {}-byte limit",
                    data.len(),
                    crate::behaviour::MAX_PUBSUB_MESSAGE
                )));
            }
            Err(e) => return Err(NodeError::Pubsub(format!("publish: {e}"))),
        };
        // go-libp2p delivers a node's own messages to its own subscribers; so do we.
        let message = PubsubMessage {
            from: Some(local),
            data,
            seqno,
            topics: vec![topic],
        };
        self.deliver(&t.hash(), message);
        Ok(())
    }

    fn deliver(&mut self, topic: &TopicHash, message: PubsubMessage) {
        let Some(senders) = self.subscriptions.get_mut(topic) else {
            return;
        };
        senders.retain(|s| match s.try_send(message.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(topic = %topic, "pubsub subscriber is not keeping up; message dropped for it");
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
        if senders.is_empty() {
            self.drop_topic(topic.clone());
        }
    }

    fn drop_topic(&mut self, topic: TopicHash) {
        self.subscriptions.remove(&topic);
        if self.discovery.is_some() && topic.as_str() == DISCOVERY_TOPIC {
            return; // the node itself listens there
        }
        if let Some(g) = self.swarm.behaviour_mut().gossipsub.as_mut() {
            g.unsubscribe(&IdentTopic::new(topic.into_string()));
        }
    }

    fn connected_addrs(&self, peer: &PeerId) -> Option<Vec<Multiaddr>> {
        connected_addrs(&self.peers, peer)
    }

    // ---- swarm events ----------------------------------------------------------------------

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        use libp2p::metrics::Recorder;
        self.metrics.record(&event);
        if let SwarmEvent::Behaviour(b) = &event {
            match b {
                BehaviourEvent::Kad(e) | BehaviourEvent::LanKad(e) => self.metrics.record(e),
                BehaviourEvent::Identify(e) => self.metrics.record(e),
                BehaviourEvent::Ping(e) => self.metrics.record(e),
                BehaviourEvent::Gossipsub(e) => self.metrics.record(e),
                _ => {}
            }
        }
        match event {
            SwarmEvent::NewListenAddr {
                listener_id,
                address,
            } => {
                tracing::info!(%address, "listening");
                self.emit(NodeEvent::ListenAddrAdded(address));
                if self.listening.contains(&listener_id) && self.ready.is_some() {
                    self.pending_listeners_ready(listener_id);
                }
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.emit(NodeEvent::ListenAddrRemoved(address));
            }
            SwarmEvent::ListenerError { listener_id, error } => {
                tracing::warn!(?listener_id, "listener error: {error}");
            }
            SwarmEvent::ListenerClosed {
                listener_id,
                reason,
                addresses,
            } => {
                self.listening.remove(&listener_id);
                if let Err(e) = reason {
                    let addr = addresses.first().map(|a| a.to_string()).unwrap_or_default();
                    self.mark_ready(Err(NodeError::Listen {
                        addr,
                        reason: e.to_string(),
                    }));
                }
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                num_established,
                ..
            } => {
                let (address, direction) = match &endpoint {
                    ConnectedPoint::Dialer { address, .. } => {
                        (address.clone(), Direction::Outbound)
                    }
                    ConnectedPoint::Listener { send_back_addr, .. } => {
                        (send_back_addr.clone(), Direction::Inbound)
                    }
                };
                if let Some((_, reply)) = self.dials.remove(&connection_id) {
                    self.protected.insert(peer_id);
                    let _ = reply.send(Ok(peer_id));
                }
                if let Some(reply) = self.peer_dials.remove(&connection_id) {
                    let _ = reply.send(Ok(()));
                }
                if num_established.get() == 1 {
                    self.bitswap.peer_connected(peer_id);
                    tracing::debug!(%peer_id, %address, "peer connected");
                    self.peers.insert(
                        peer_id,
                        PeerState {
                            address: address.clone(),
                            direction,
                            connected_at: Instant::now(),
                            connected_since: SystemTime::now(),
                            latency: None,
                            agent_version: None,
                            protocols: Vec::new(),
                            listen_addrs: Vec::new(),
                        },
                    );
                    // A dialled address is where the peer can be reached again (a backup peer).
                    let dialable = (direction == Direction::Outbound)
                        .then(|| address.clone().with_p2p(peer_id).ok())
                        .flatten();
                    self.emit(NodeEvent::PeerConnected {
                        peer_id,
                        address,
                        direction,
                    });
                    self.bootstrap(BootstrapEvent::PeerConnected {
                        peer_id,
                        addr: dialable,
                    });
                    self.maybe_trim();
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } if self.peers.remove(&peer_id).is_some() => {
                tracing::debug!(%peer_id, "peer disconnected");
                self.bitswap.peer_disconnected(peer_id);
                self.emit(NodeEvent::PeerDisconnected { peer_id });
                self.bootstrap(BootstrapEvent::PeerDisconnected { peer_id });
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                error,
                peer_id,
            } => {
                if let Some(fp) = &self.private {
                    tracing::warn!(
                        peer = ?peer_id,
                        "outgoing connection failed: {error} (private network, swarm key fingerprint {fp}: a peer with another key, or none, fails this way)"
                    );
                }
                if let Some(peer_id) = self.bootstrap_dials.remove(&connection_id) {
                    self.bootstrap(BootstrapEvent::DialFailed {
                        peer_id,
                        error: error.to_string(),
                    });
                }
                if let Some((target, reply)) = self.dials.remove(&connection_id) {
                    let _ = reply.send(Err(NodeError::Dial {
                        target,
                        reason: error.to_string(),
                    }));
                }
                if let Some(reply) = self.peer_dials.remove(&connection_id) {
                    let _ = reply.send(Err(NodeError::Dial {
                        target: peer_id.map(|p| p.to_string()).unwrap_or_default(),
                        reason: error.to_string(),
                    }));
                }
                if let Some(peer) = peer_id
                    && !self.swarm.is_connected(&peer)
                {
                    crate::dual_dht::on_dial_failure(self.swarm.behaviour_mut(), &peer, &error);
                }
            }
            SwarmEvent::IncomingConnectionError {
                send_back_addr,
                error,
                ..
            } => match &self.private {
                Some(fp) => tracing::warn!(
                    %send_back_addr,
                    "incoming connection failed: {error} (private network, swarm key fingerprint {fp}: a peer with another key, or none, fails this way)"
                ),
                None => tracing::debug!(%send_back_addr, "incoming connection failed: {error}"),
            },
            SwarmEvent::Behaviour(event) => self.on_behaviour_event(event),
            _ => {}
        }
    }

    fn pending_listeners_ready(&mut self, listener_id: ListenerId) {
        // Ready once every listener has reported an address; a listener reporting several
        // (0.0.0.0 expands per interface) counts once.
        self.reported.insert(listener_id);
        if self.listening.iter().all(|l| self.reported.contains(l)) {
            self.mark_ready(Ok(()));
        }
    }

    fn on_behaviour_event(&mut self, event: BehaviourEvent) {
        match event {
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                crate::dual_dht::add_identified(
                    self.swarm.behaviour_mut(),
                    &peer_id,
                    &info.protocols,
                    &info.listen_addrs,
                );
                let protocols: Vec<String> = info.protocols.iter().map(|p| p.to_string()).collect();
                if let Some(state) = self.peers.get_mut(&peer_id) {
                    state.agent_version = Some(info.agent_version.clone());
                    state.protocols = protocols.clone();
                    state.listen_addrs = info.listen_addrs.clone();
                }
                self.emit(NodeEvent::PeerIdentified {
                    peer_id,
                    agent_version: info.agent_version,
                    protocols,
                });
            }
            BehaviourEvent::Ping(ping::Event {
                peer,
                result: Ok(rtt),
                ..
            }) => {
                if let Some(state) = self.peers.get_mut(&peer) {
                    state.latency = Some(rtt);
                }
            }
            BehaviourEvent::Mdns(mdns::Event::Discovered(found)) => {
                let mut by_peer: HashMap<PeerId, Vec<Multiaddr>> = HashMap::new();
                for (peer, addr) in found {
                    by_peer.entry(peer).or_default().push(addr);
                }
                for (peer_id, addresses) in by_peer {
                    tracing::info!(%peer_id, "discovered by mDNS");
                    self.emit(NodeEvent::PeerDiscovered {
                        peer_id,
                        addresses: addresses.clone(),
                    });
                    if !self.swarm.is_connected(&peer_id) {
                        let opts = DialOpts::peer_id(peer_id).addresses(addresses).build();
                        if let Err(e) = self.swarm.dial(opts) {
                            tracing::debug!(%peer_id, "dialing mDNS peer failed: {e}");
                        }
                    }
                }
            }
            BehaviourEvent::Gossipsub(gossipsub::Event::Message { message, .. }) => {
                let topic = message.topic.clone();
                if self.discovery.is_some() && topic.as_str() == DISCOVERY_TOPIC {
                    self.discovered(&message.data);
                }
                let msg = PubsubMessage {
                    from: message.source,
                    data: Bytes::from(message.data),
                    seqno: message.sequence_number,
                    topics: vec![topic.as_str().to_string()],
                };
                self.deliver(&topic, msg);
            }
            BehaviourEvent::Gossipsub(gossipsub::Event::Subscribed { peer_id, topic }) => {
                self.emit(NodeEvent::TopicSubscribed {
                    peer_id,
                    topic: topic.into_string(),
                });
            }
            BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed {
                id,
                result,
                step,
                stats,
            }) => {
                let last = step.last;
                self.on_query(
                    Dht::Wan,
                    QueryStep {
                        id,
                        result,
                        last,
                        stats,
                    },
                );
            }
            BehaviourEvent::LanKad(kad::Event::OutboundQueryProgressed {
                id,
                result,
                step,
                stats,
            }) => {
                let last = step.last;
                self.on_query(
                    Dht::Lan,
                    QueryStep {
                        id,
                        result,
                        last,
                        stats,
                    },
                );
            }
            BehaviourEvent::Kad(kad::Event::InboundRequest { request }) => {
                self.on_inbound(Dht::Wan, request);
            }
            BehaviourEvent::LanKad(kad::Event::InboundRequest { request }) => {
                self.on_inbound(Dht::Lan, request);
            }
            _ => {}
        }
    }

    fn on_inbound(&mut self, dht: Dht, request: kad::InboundRequest) {
        for event in crate::dual_dht::on_inbound(self.swarm.behaviour_mut(), dht, request) {
            self.emit(event);
        }
    }

    fn on_query(&mut self, dht: Dht, step: QueryStep) {
        let peers = &self.peers;
        let mut addrs_of = |b: &mut Behaviour, peer: &PeerId| {
            connected_addrs(peers, peer).unwrap_or_else(|| table_addrs(b, peer))
        };
        self.dht
            .on_query(self.swarm.behaviour_mut(), dht, step, &mut addrs_of);
    }

    // ---- bootstrap and discovery --------------------------------------------------------------

    fn bootstrap_wakeup(&self) -> tokio::time::Instant {
        // Never spin: at least 10 ms between wake-ups even if the machine is already due.
        let soon = tokio::time::Instant::now() + Duration::from_millis(10);
        tokio::time::Instant::from_std(self.bootstrapper.next_wakeup()).max(soon)
    }

    /// Feeds the bootstrapper and carries out what it asks, until it asks nothing more.
    fn bootstrap(&mut self, event: BootstrapEvent) {
        let mut queue: VecDeque<BootstrapAction> = self
            .bootstrapper
            .handle(event, std::time::Instant::now())
            .into();
        while let Some(action) = queue.pop_front() {
            match action {
                BootstrapAction::Dial(peers) => {
                    for p in peers {
                        self.protected.insert(p.peer_id);
                        self.swarm
                            .behaviour_mut()
                            .kad
                            .add_address(&p.peer_id, p.transport_addr());
                        let opts = DialOpts::peer_id(p.peer_id)
                            .addresses(vec![p.addr.clone()])
                            .condition(PeerCondition::DisconnectedAndNotDialing)
                            .build();
                        let id = opts.connection_id();
                        match self.swarm.dial(opts) {
                            Ok(()) => {
                                self.bootstrap_dials.insert(id, p.peer_id);
                            }
                            Err(e) => queue.extend(self.bootstrapper.handle(
                                BootstrapEvent::DialFailed {
                                    peer_id: p.peer_id,
                                    error: e.to_string(),
                                },
                                std::time::Instant::now(),
                            )),
                        }
                    }
                }
                BootstrapAction::KadBootstrap => {
                    // Nothing to start: rust-libp2p's kad already bootstraps by itself when a
                    // peer enters a table that holds fewer than K, as every bootstrap peer does
                    // (added above), and again until the table holds K. One more bootstrap here
                    // was a duplicate walk per start (go-libp2p-kad-dht runs one refresh); the
                    // dht_sim bench still counts 23–28 walk queries per joining node without it.
                    tracing::debug!("kademlia bootstrap: left to kad's automatic bootstrap");
                }
                BootstrapAction::SaveBackupPeers(addrs) => {
                    if let Some(repo) = &self.repo {
                        let addrs: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
                        if let Err(e) = repo.write_backup_peers(&addrs) {
                            tracing::warn!("saving backup bootstrap peers: {e}");
                        }
                    }
                }
            }
        }
        let phase = self.bootstrapper.status(std::time::Instant::now()).phase;
        if self.last_phase.as_ref() != Some(&phase) {
            self.last_phase = Some(phase.clone());
            self.emit(NodeEvent::BootstrapPhaseChanged(phase));
        }
    }

    /// Publishes this node's record on the discovery topic (js-libp2p's pubsub peer discovery).
    fn announce(&mut self) {
        let addrs: Vec<Multiaddr> = self
            .swarm
            .listeners()
            .chain(self.swarm.external_addresses())
            .filter(|a| {
                !a.iter().any(|p| {
                    matches!(p, libp2p::multiaddr::Protocol::Ip4(ip) if ip.is_unspecified())
                        || matches!(p, libp2p::multiaddr::Protocol::Ip6(ip) if ip.is_unspecified())
                })
            })
            .cloned()
            .collect();
        let record = encode_record(&self.public_key, &addrs);
        if let Some(g) = self.swarm.behaviour_mut().gossipsub.as_mut() {
            match g.publish(IdentTopic::new(DISCOVERY_TOPIC), record) {
                Ok(_)
                | Err(PublishError::NoPeersSubscribedToTopic)
                | Err(PublishError::Duplicate) => {}
                Err(e) => tracing::debug!("discovery announcement: {e}"),
            }
        }
    }

    fn discovered(&mut self, data: &[u8]) {
        let record = match decode_record(data) {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!("ignoring a discovery record: {e}");
                return;
            }
        };
        let me = *self.swarm.local_peer_id();
        if record.peer_id == me
            || self.swarm.is_connected(&record.peer_id)
            || record.addrs.is_empty()
        {
            return;
        }
        tracing::info!(peer_id = %record.peer_id, "discovered through pubsub");
        self.emit(NodeEvent::PeerDiscovered {
            peer_id: record.peer_id,
            addresses: record.addrs.clone(),
        });
        for addr in &record.addrs {
            self.swarm
                .behaviour_mut()
                .kad
                .add_address(&record.peer_id, addr.clone());
        }
        let opts = DialOpts::peer_id(record.peer_id)
            .addresses(record.addrs)
            .condition(PeerCondition::DisconnectedAndNotDialing)
            .build();
        if let Err(e) = self.swarm.dial(opts) {
            tracing::debug!("dialing a discovered peer: {e}");
        }
    }

    // ---- housekeeping ----------------------------------------------------------------------

    fn on_tick(&mut self) {
        self.maybe_trim();
        // Notice subscriptions whose consumers went away even when no message arrives.
        let closed: Vec<TopicHash> = self
            .subscriptions
            .iter_mut()
            .filter_map(|(t, senders)| {
                senders.retain(|s| !s.is_closed());
                senders.is_empty().then(|| t.clone())
            })
            .collect();
        for topic in closed {
            self.drop_topic(topic);
        }
        self.dht.prune(self.swarm.behaviour_mut());
    }

    fn maybe_trim(&mut self) {
        let now = Instant::now();
        if self.peers.len() <= self.conn_mgr.high_water {
            return;
        }
        if self
            .last_trim
            .is_some_and(|t| now.duration_since(t) < self.conn_mgr.silence_period)
        {
            return;
        }
        // Routing-table peers are worth keeping, the farthest buckets' most (go-libp2p-kad-dht
        // tags and protects them so): a lookup needs no new handshake to reach them.
        let local = *self.swarm.local_peer_id();
        let table = crate::dual_dht::table_peers_cpl(self.swarm.behaviour_mut(), &local);
        let candidates: Vec<Candidate> = self
            .peers
            .iter()
            .map(|(peer, s)| {
                let cpl = table.get(peer).copied();
                Candidate {
                    peer: *peer,
                    connected_since: s.connected_at,
                    protected: self.protected.contains(peer)
                        || cpl.is_some_and(|c| c < PROTECTED_BUCKETS),
                    value: cpl.map_or(0, |c| KBUCKET_SCORE + c),
                }
            })
            .collect();
        let victims = select_victims(&candidates, &self.conn_mgr, now);
        if victims.is_empty() {
            return;
        }
        self.last_trim = Some(now);
        tracing::info!(
            peers = self.peers.len(),
            closing = victims.len(),
            "connection manager trimming"
        );
        for peer in victims {
            let _ = self.swarm.disconnect_peer_id(peer);
        }
    }
}

/// A connected peer's addresses: those it listens on (from identify) and the one we reached.
fn connected_addrs(peers: &HashMap<PeerId, PeerState>, peer: &PeerId) -> Option<Vec<Multiaddr>> {
    let state = peers.get(peer)?;
    let mut addrs = state.listen_addrs.clone();
    if !addrs.contains(&state.address) {
        addrs.push(state.address.clone());
    }
    Some(addrs)
}

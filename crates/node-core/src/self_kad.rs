//! A Kademlia behaviour that answers a `FIND_NODE` for this node's own id with itself, as
//! go-libp2p-kad-dht does, and otherwise is rust-libp2p's `kad::Behaviour` (it derefs to it).
//!
//! Why: go-libp2p-kad-dht 0.24 (Kubo 0.22) adds a newly connected DHT peer to its routing table
//! only after a "lookup check": it asks the peer `FIND_NODE(<the peer's own id>)` and drops the peer
//! if the answer lists no peer at all (`dht.go`, `lookupCheck`: "p should return at least its own
//! peerid"). go answers that query with itself; rust-libp2p answers with the closest peers of its
//! table minus the asker, never itself, so a cairn node whose only DHT peer is the Kubo asking
//! answers with nothing, Kubo never adds it, and then never puts provider records to it nor asks
//! it anything. Answering with ourselves (and our listen addresses) passes the check whatever the
//! table holds; every other request goes to rust-libp2p unchanged.
//!
//! It also hands kad the node's listen addresses as its own (see `on_swarm_event`), so the provider
//! records cairn puts carry addresses, which go requires.

use std::collections::{HashMap, VecDeque};
use std::ops::{Deref, DerefMut};
use std::task::{Context, Poll};

use libp2p::core::transport::PortUse;
use libp2p::core::{Endpoint, Multiaddr};
use libp2p::kad::{self, KadPeer};

use crate::provider_store::ProviderStore;
use libp2p::swarm::behaviour::{ExternalAddrConfirmed, ExternalAddrExpired};
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, NotifyHandler, THandler,
    THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::{PeerId, multiaddr::Protocol};

type Inner = kad::Behaviour<ProviderStore>;
/// The handler's events, named through the behaviour (libp2p-kad does not export the type).
type HandlerOut = THandlerOutEvent<Inner>;
/// The handler's commands, likewise.
type HandlerIn = THandlerInEvent<Inner>;

/// `kad::Behaviour` plus go's answer to a `FIND_NODE` for our own id.
pub(crate) struct SelfAnsweringKad {
    inner: Inner,
    local: PeerId,
    /// Our listen addresses, for the answer (unspecified ones left out: useless to a dialler).
    listen_addrs: Vec<Multiaddr>,
    answers: VecDeque<ToSwarm<kad::Event, HandlerIn>>,
    /// Addresses that `GET_PROVIDERS` answers gave for providers. rust-libp2p reports providers
    /// by id only; these let a lookup hand its caller a dialable provider (go and js include the
    /// addresses in the answer for that reason). Bounded: cleared when full.
    provider_addrs: HashMap<PeerId, Vec<Multiaddr>>,
}

/// How many providers' addresses [`SelfAnsweringKad`] remembers (a few hundred bytes each).
const PROVIDER_ADDRS_CAP: usize = 4096;

impl SelfAnsweringKad {
    pub fn new(inner: Inner, local: PeerId) -> Self {
        SelfAnsweringKad {
            inner,
            local,
            listen_addrs: Vec::new(),
            answers: VecDeque::new(),
            provider_addrs: HashMap::new(),
        }
    }

    /// The addresses a `GET_PROVIDERS` answer last gave for `peer`, if any.
    pub fn provider_addrs(&self, peer: &PeerId) -> Option<&[Multiaddr]> {
        self.provider_addrs.get(peer).map(Vec::as_slice)
    }
}

impl Deref for SelfAnsweringKad {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.inner
    }
}

impl DerefMut for SelfAnsweringKad {
    fn deref_mut(&mut self) -> &mut Inner {
        &mut self.inner
    }
}

fn is_unspecified(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| match p {
        Protocol::Ip4(ip) => ip.is_unspecified(),
        Protocol::Ip6(ip) => ip.is_unspecified(),
        _ => false,
    })
}

impl NetworkBehaviour for SelfAnsweringKad {
    type ConnectionHandler = <Inner as NetworkBehaviour>::ConnectionHandler;
    type ToSwarm = kad::Event;

    fn handle_pending_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        self.inner
            .handle_pending_inbound_connection(connection_id, local_addr, remote_addr)
    }

    fn handle_established_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.inner.handle_established_inbound_connection(
            connection_id,
            peer,
            local_addr,
            remote_addr,
        )
    }

    fn handle_pending_outbound_connection(
        &mut self,
        connection_id: ConnectionId,
        maybe_peer: Option<PeerId>,
        addresses: &[Multiaddr],
        effective_role: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        self.inner.handle_pending_outbound_connection(
            connection_id,
            maybe_peer,
            addresses,
            effective_role,
        )
    }

    fn handle_established_outbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        role_override: Endpoint,
        port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.inner.handle_established_outbound_connection(
            connection_id,
            peer,
            addr,
            role_override,
            port_use,
        )
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        // Listen addresses also go to kad as if they were confirmed external addresses: kad puts
        // only those into the ADD_PROVIDER records it sends, and go-libp2p-kad-dht drops a provider
        // record without addresses ("no valid addresses for provider"). go itself announces its
        // listen addresses (`host.Addrs()`); kad's mode is pinned, so nothing else depends on them.
        let (listen, expired) = match &event {
            FromSwarm::NewListenAddr(e) if !is_unspecified(e.addr) => (Some(e.addr.clone()), None),
            FromSwarm::ExpiredListenAddr(e) => (None, Some(e.addr.clone())),
            _ => (None, None),
        };
        self.inner.on_swarm_event(event);
        if let Some(addr) = listen
            && !self.listen_addrs.contains(&addr)
        {
            self.inner
                .on_swarm_event(FromSwarm::ExternalAddrConfirmed(ExternalAddrConfirmed {
                    addr: &addr,
                }));
            self.listen_addrs.push(addr);
        }
        if let Some(addr) = expired {
            self.listen_addrs.retain(|a| *a != addr);
            self.inner
                .on_swarm_event(FromSwarm::ExternalAddrExpired(ExternalAddrExpired {
                    addr: &addr,
                }));
        }
    }

    fn on_connection_handler_event(
        &mut self,
        peer_id: PeerId,
        connection: ConnectionId,
        event: HandlerOut,
    ) {
        match event {
            HandlerOut::FindNodeReq { key, request_id } if key == self.local.to_bytes() => {
                let me = KadPeer {
                    node_id: self.local,
                    multiaddrs: self.listen_addrs.clone(),
                    connection_ty: kad::ConnectionType::Connected,
                };
                self.answers.push_back(ToSwarm::NotifyHandler {
                    peer_id,
                    handler: NotifyHandler::One(connection),
                    event: HandlerIn::FindNodeRes {
                        closer_peers: vec![me],
                        request_id,
                    },
                });
            }
            event => {
                if let HandlerOut::GetProvidersRes { provider_peers, .. } = &event {
                    if self.provider_addrs.len() >= PROVIDER_ADDRS_CAP {
                        self.provider_addrs.clear();
                    }
                    for p in provider_peers.iter().filter(|p| !p.multiaddrs.is_empty()) {
                        self.provider_addrs.insert(p.node_id, p.multiaddrs.clone());
                    }
                }
                self.inner
                    .on_connection_handler_event(peer_id, connection, event)
            }
        }
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<ToSwarm<kad::Event, HandlerIn>> {
        if let Some(answer) = self.answers.pop_front() {
            return Poll::Ready(answer);
        }
        self.inner.poll(cx)
    }
}

//! The node's hard connection limits, enforced by libp2p as each connection is accepted or
//! established: connections in their handshake (in all and per IP address), established
//! connections (in all and per peer).
//!
//! It stands in for `libp2p::connection_limits`, which keeps an entry for every peer that ever
//! connected (an empty set once it left), so its memory grows with the number of distinct peers
//! seen: under a flood of fresh peer ids, without bound. Here every map follows the live
//! connections only. It adds a per-IP cap on handshakes: without it a single host that opens
//! sockets and never finishes the multistream-select/Noise handshake fills every pending slot until
//! the handshake timeout frees them, and no other peer can connect meanwhile.
//!
//! Exercised by `cargo test -p cairn-node-core --lib limits`, `--test half_open_flood` and
//! `--test peer_flood`.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::net::IpAddr;
use std::task::{Context, Poll};

use libp2p::core::multiaddr::Protocol;
use libp2p::core::transport::PortUse;
use libp2p::core::{ConnectedPoint, Endpoint};
use libp2p::swarm::behaviour::{ConnectionClosed, ConnectionEstablished};
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, ListenFailure, NetworkBehaviour, THandler,
    THandlerInEvent, THandlerOutEvent, ToSwarm, dummy,
};
use libp2p::{Multiaddr, PeerId};

/// Inbound connections one IP address may have in their handshake at once. A well-behaved peer
/// needs one (a few while it retries); a NAT with many peers behind it rarely has more than a
/// handful mid-handshake at the same instant, as a handshake takes milliseconds.
pub const MAX_PENDING_INCOMING_PER_IP: usize = 16;

/// The caps, each `None` for no cap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Caps {
    /// Inbound connections in their handshake, from all addresses.
    pub pending_incoming: Option<usize>,
    /// Inbound connections in their handshake from one IP address.
    pub pending_incoming_per_ip: Option<usize>,
    /// Established connections, inbound and outbound.
    pub established: Option<usize>,
    /// Established connections to one peer.
    pub established_per_peer: Option<usize>,
}

/// Denies connections beyond [`Caps`]; counts only live connections.
#[derive(Debug)]
pub struct ConnectionLimits {
    caps: Caps,
    /// Pending inbound connections, with their IP when they have one.
    pending: HashMap<ConnectionId, Option<IpAddr>>,
    /// Pending inbound connections per IP; an IP leaves the map when its last one ends.
    per_ip: HashMap<IpAddr, usize>,
    established: HashSet<ConnectionId>,
    /// Established connections per peer; a peer leaves the map with its last connection.
    per_peer: HashMap<PeerId, usize>,
}

/// Why a connection was refused.
#[derive(Debug, thiserror::Error)]
#[error("connection limit reached: {what} (at most {limit})")]
pub struct LimitReached {
    what: &'static str,
    limit: usize,
}

fn check(limit: Option<usize>, current: usize, what: &'static str) -> Result<(), ConnectionDenied> {
    match limit {
        Some(limit) if current >= limit => Err(ConnectionDenied::new(LimitReached { what, limit })),
        _ => Ok(()),
    }
}

fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })
}

impl ConnectionLimits {
    /// Limits with these caps.
    pub fn new(caps: Caps) -> Self {
        ConnectionLimits {
            caps,
            pending: HashMap::new(),
            per_ip: HashMap::new(),
            established: HashSet::new(),
            per_peer: HashMap::new(),
        }
    }

    /// Ends a pending inbound connection however it ended; a second call does nothing.
    fn end_pending(&mut self, id: ConnectionId) {
        if let Some(Some(ip)) = self.pending.remove(&id)
            && let Some(n) = self.per_ip.get_mut(&ip)
        {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }

    fn check_established(&self, peer: PeerId) -> Result<(), ConnectionDenied> {
        check(
            self.caps.established,
            self.established.len(),
            "established connections",
        )?;
        check(
            self.caps.established_per_peer,
            self.per_peer.get(&peer).copied().unwrap_or(0),
            "established connections to one peer",
        )
    }
}

impl NetworkBehaviour for ConnectionLimits {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        _local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        check(
            self.caps.pending_incoming,
            self.pending.len(),
            "inbound connections in their handshake",
        )?;
        // Addresses without an IP (memory transport, relays) count only towards the total.
        let ip = ip_of(remote_addr);
        if let Some(ip) = ip {
            check(
                self.caps.pending_incoming_per_ip,
                self.per_ip.get(&ip).copied().unwrap_or(0),
                "inbound connections in their handshake from one IP address",
            )?;
            *self.per_ip.entry(ip).or_default() += 1;
        }
        self.pending.insert(connection_id, ip);
        Ok(())
    }

    fn handle_established_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        _local_addr: &Multiaddr,
        _remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.end_pending(connection_id);
        self.check_established(peer)?;
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _connection_id: ConnectionId,
        peer: PeerId,
        _addr: &Multiaddr,
        _role_override: Endpoint,
        _port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.check_established(peer)?;
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            // Counted here rather than when checked: another behaviour may still deny it, and then
            // the swarm reports a ListenFailure or DialFailure instead of this.
            FromSwarm::ConnectionEstablished(ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                ..
            }) => {
                if let ConnectedPoint::Listener { .. } = endpoint {
                    self.end_pending(connection_id);
                }
                if self.established.insert(connection_id) {
                    *self.per_peer.entry(peer_id).or_default() += 1;
                }
            }
            FromSwarm::ConnectionClosed(ConnectionClosed {
                peer_id,
                connection_id,
                ..
            }) => {
                if self.established.remove(&connection_id)
                    && let Some(n) = self.per_peer.get_mut(&peer_id)
                {
                    *n -= 1;
                    if *n == 0 {
                        self.per_peer.remove(&peer_id);
                    }
                }
            }
            FromSwarm::ListenFailure(ListenFailure { connection_id, .. }) => {
                self.end_pending(connection_id)
            }
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _peer: PeerId,
        _connection: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps() -> Caps {
        Caps {
            pending_incoming: Some(3),
            pending_incoming_per_ip: Some(2),
            established: Some(3),
            established_per_peer: Some(2),
        }
    }

    fn established(l: &mut ConnectionLimits, id: ConnectionId, peer: PeerId) {
        let local: Multiaddr = "/ip4/127.0.0.1/tcp/4001".parse().unwrap();
        let endpoint = ConnectedPoint::Listener {
            local_addr: local.clone(),
            send_back_addr: local,
        };
        l.on_swarm_event(FromSwarm::ConnectionEstablished(ConnectionEstablished {
            peer_id: peer,
            connection_id: id,
            endpoint: &endpoint,
            failed_addresses: &[],
            other_established: 0,
        }));
    }

    fn closed(l: &mut ConnectionLimits, id: ConnectionId, peer: PeerId) {
        let local: Multiaddr = "/ip4/127.0.0.1/tcp/4001".parse().unwrap();
        let endpoint = ConnectedPoint::Listener {
            local_addr: local.clone(),
            send_back_addr: local,
        };
        l.on_swarm_event(FromSwarm::ConnectionClosed(ConnectionClosed {
            peer_id: peer,
            connection_id: id,
            endpoint: &endpoint,
            cause: None,
            remaining_established: 0,
        }));
    }

    #[test]
    fn caps_handshakes_per_ip_and_in_all() {
        let mut l = ConnectionLimits::new(caps());
        let local: Multiaddr = "/ip4/127.0.0.1/tcp/4001".parse().unwrap();
        let a: Multiaddr = "/ip4/10.0.0.1/tcp/5000".parse().unwrap();
        let b: Multiaddr = "/ip4/10.0.0.2/tcp/5000".parse().unwrap();
        let id = ConnectionId::new_unchecked;
        assert!(
            l.handle_pending_inbound_connection(id(1), &local, &a)
                .is_ok()
        );
        assert!(
            l.handle_pending_inbound_connection(id(2), &local, &a)
                .is_ok()
        );
        assert!(
            l.handle_pending_inbound_connection(id(3), &local, &a)
                .is_err()
        );
        assert!(
            l.handle_pending_inbound_connection(id(4), &local, &b)
                .is_ok()
        );
        assert!(
            l.handle_pending_inbound_connection(id(5), &local, &b)
                .is_err(),
            "three in all"
        );
        // A handshake that ends (established, failed or timed out) frees its slot, once.
        let _ = l.handle_established_inbound_connection(id(1), PeerId::random(), &local, &a);
        l.end_pending(id(1));
        assert!(
            l.handle_pending_inbound_connection(id(3), &local, &a)
                .is_ok()
        );
        for i in 1..=5 {
            l.on_swarm_event(FromSwarm::ListenFailure(ListenFailure {
                local_addr: &local,
                send_back_addr: &a,
                error: &libp2p::swarm::ListenError::Aborted,
                connection_id: id(i),
                peer_id: None,
            }));
        }
        assert!(l.pending.is_empty() && l.per_ip.is_empty());
    }

    #[test]
    fn caps_established_and_forgets_peers_that_left() {
        let mut l = ConnectionLimits::new(caps());
        let addr: Multiaddr = "/ip4/10.0.0.1/tcp/5000".parse().unwrap();
        let (p, q) = (PeerId::random(), PeerId::random());
        let id = ConnectionId::new_unchecked;
        established(&mut l, id(1), p);
        established(&mut l, id(2), p);
        assert!(
            l.handle_established_outbound_connection(
                id(3),
                p,
                &addr,
                Endpoint::Dialer,
                PortUse::New
            )
            .is_err(),
            "two per peer"
        );
        established(&mut l, id(3), q);
        assert!(
            l.handle_established_inbound_connection(id(4), PeerId::random(), &addr, &addr)
                .is_err(),
            "three in all"
        );
        closed(&mut l, id(1), p);
        closed(&mut l, id(2), p);
        closed(&mut l, id(3), q);
        // A flood of distinct peers that come and go leaves nothing behind.
        for i in 0..1000 {
            let peer = PeerId::random();
            established(&mut l, id(100 + i), peer);
            closed(&mut l, id(100 + i), peer);
        }
        assert!(l.established.is_empty() && l.per_peer.is_empty());
    }
}

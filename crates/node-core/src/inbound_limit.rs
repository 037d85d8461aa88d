//! A cap on inbound connections still in their handshake from any one IP address, beside
//! `connection_limits`' global cap on them. Without it a single host that opens sockets and never
//! finishes the multistream-select/Noise handshake fills every pending slot until the handshake
//! timeout frees them, and no other peer can connect meanwhile.
//!
//! Exercised by `crates/node-core/tests/half_open_flood.rs` (`cargo test -p cairn-node-core --test
//! half_open_flood`).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::task::{Context, Poll};

use libp2p::core::Endpoint;
use libp2p::core::multiaddr::Protocol;
use libp2p::core::transport::PortUse;
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, ListenFailure, NetworkBehaviour, THandler,
    THandlerInEvent, THandlerOutEvent, ToSwarm, dummy,
};
use libp2p::{Multiaddr, PeerId};

/// Inbound connections one IP address may have in their handshake at once. A well-behaved peer
/// needs one (a few while it retries); a NAT with many peers behind it rarely has more than a
/// handful mid-handshake at the same instant, as a handshake takes milliseconds.
pub const MAX_PENDING_INCOMING_PER_IP: usize = 16;

/// Denies a pending inbound connection when its IP already has [`MAX_PENDING_INCOMING_PER_IP`].
#[derive(Debug)]
pub struct PendingPerIp {
    limit: usize,
    /// Pending inbound connections by id, so that every way a pending connection ends (established,
    /// denied by another behaviour, handshake failed or timed out) releases its slot exactly once.
    pending: HashMap<ConnectionId, IpAddr>,
    per_ip: HashMap<IpAddr, usize>,
}

impl PendingPerIp {
    /// A cap of `limit` pending inbound connections per IP address.
    pub fn new(limit: usize) -> Self {
        PendingPerIp {
            limit,
            pending: HashMap::new(),
            per_ip: HashMap::new(),
        }
    }

    fn release(&mut self, id: ConnectionId) {
        if let Some(ip) = self.pending.remove(&id)
            && let Some(n) = self.per_ip.get_mut(&ip)
        {
            *n -= 1;
            if *n == 0 {
                // Drop the entry so the map's size follows the live handshakes, not every IP seen.
                self.per_ip.remove(&ip);
            }
        }
    }
}

fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })
}

/// Why a connection was refused.
#[derive(Debug, thiserror::Error)]
#[error("{ip} already has {limit} inbound connections in their handshake")]
pub struct TooManyPending {
    ip: IpAddr,
    limit: usize,
}

impl NetworkBehaviour for PendingPerIp {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        _local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        // Addresses without an IP (memory transport, relays) are not counted.
        let Some(ip) = ip_of(remote_addr) else {
            return Ok(());
        };
        let n = self.per_ip.entry(ip).or_default();
        if *n >= self.limit {
            return Err(ConnectionDenied::new(TooManyPending {
                ip,
                limit: self.limit,
            }));
        }
        *n += 1;
        self.pending.insert(connection_id, ip);
        Ok(())
    }

    fn handle_established_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        _peer: PeerId,
        _local_addr: &Multiaddr,
        _remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.release(connection_id);
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _connection_id: ConnectionId,
        _peer: PeerId,
        _addr: &Multiaddr,
        _role_override: Endpoint,
        _port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            FromSwarm::ListenFailure(ListenFailure { connection_id, .. }) => {
                self.release(connection_id)
            }
            // An earlier behaviour may have denied the established connection before this one
            // saw it; the swarm then reports a ListenFailure, handled above.
            FromSwarm::ConnectionEstablished(e) => self.release(e.connection_id),
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

    #[test]
    fn caps_each_ip_and_releases_slots() {
        let mut b = PendingPerIp::new(2);
        let local: Multiaddr = "/ip4/127.0.0.1/tcp/4001".parse().unwrap();
        let a: Multiaddr = "/ip4/10.0.0.1/tcp/5000".parse().unwrap();
        let other: Multiaddr = "/ip4/10.0.0.2/tcp/5000".parse().unwrap();
        let ids: Vec<ConnectionId> = (1..=4).map(ConnectionId::new_unchecked).collect();
        assert!(
            b.handle_pending_inbound_connection(ids[0], &local, &a)
                .is_ok()
        );
        assert!(
            b.handle_pending_inbound_connection(ids[1], &local, &a)
                .is_ok()
        );
        assert!(
            b.handle_pending_inbound_connection(ids[2], &local, &a)
                .is_err()
        );
        assert!(
            b.handle_pending_inbound_connection(ids[3], &local, &other)
                .is_ok()
        );
        // Established (or failed) connections free their slot; releasing twice is harmless.
        let _ = b.handle_established_inbound_connection(ids[0], PeerId::random(), &local, &a);
        b.release(ids[0]);
        assert!(
            b.handle_pending_inbound_connection(ids[2], &local, &a)
                .is_ok()
        );
        for id in &ids {
            b.release(*id);
        }
        assert!(b.pending.is_empty() && b.per_ip.is_empty());
    }
}

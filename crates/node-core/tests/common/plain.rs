//! A bare libp2p peer (identify and ping over TCP, Noise and Yamux; no DHT, no Bitswap), for tests
//! that need peers a node values at nothing: floods, and peers the connection manager may close.

use std::time::Duration;

use cairn_node_core::{Multiaddr, PeerId};
use futures::StreamExt;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{identify, noise, ping, tcp, yamux};

/// The peer's behaviours: identify (so the node learns its agent and protocols) and ping.
#[derive(NetworkBehaviour)]
pub struct Peer {
    identify: identify::Behaviour,
    ping: ping::Behaviour,
}

/// A bare libp2p peer that dials `to` and stays connected until the node closes it; returns its
/// id and the task that runs it (the task ends when the connection does).
pub fn spawn_peer(to: Multiaddr) -> (PeerId, tokio::task::JoinHandle<()>) {
    let mut swarm = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|key| Peer {
            identify: identify::Behaviour::new(identify::Config::new(
                "ipfs/0.1.0".into(),
                key.public(),
            )),
            ping: ping::Behaviour::default(),
        })
        .unwrap()
        // Only the node decides when this connection ends.
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(600)))
        .build();
    let id = *swarm.local_peer_id();
    swarm.dial(to).unwrap();
    let task = tokio::spawn(async move {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::ConnectionClosed {
                    num_established: 0, ..
                }
                | SwarmEvent::OutgoingConnectionError { .. } => break,
                _ => {}
            }
        }
    });
    (id, task)
}

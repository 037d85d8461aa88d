//! A bare libp2p peer that speaks Bitswap by hand, to misbehave: it connects, accepts
//! `/ipfs/bitswap/1.2.0` streams (and may never read them) and writes whatever a test makes.
#![allow(dead_code)]

use futures::StreamExt;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm, noise, tcp, yamux};

pub struct Rogue {
    pub peer_id: PeerId,
    pub control: libp2p_stream::Control,
    pub incoming: libp2p_stream::IncomingStreams,
    _task: tokio::task::JoinHandle<()>,
}

pub async fn connect(to: Multiaddr) -> Rogue {
    let mut swarm: Swarm<libp2p_stream::Behaviour> = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|_| libp2p_stream::Behaviour::new())
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(std::time::Duration::from_secs(60)))
        .build();
    let peer_id = *swarm.local_peer_id();
    let mut control = swarm.behaviour().new_control();
    let incoming = control
        .accept(cairn_bitswap::ProtocolVersion::V120.protocol())
        .unwrap();
    swarm.dial(to).unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let mut tx = Some(tx);
        loop {
            if let SwarmEvent::ConnectionEstablished { .. } = swarm.select_next_some().await
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(());
            }
        }
    });
    rx.await.unwrap();
    Rogue {
        peer_id,
        control,
        incoming,
        _task: task,
    }
}

//! The inbound side of Bitswap's streams: [`Inbound`], a `NetworkBehaviour` whose connection
//! handlers accept every Bitswap protocol version and hand each negotiated stream to
//! [`Bitswap`](crate::Bitswap) through a queue with room for [`INBOUND_QUEUE`] streams.
//!
//! Why not `libp2p_stream::Control::accept`: its acceptor holds one stream at a time, and a
//! stream that finishes negotiating while the previous one has not been taken yet is dropped.
//! boxo (Kubo) opens a new stream for every message it sends, several at once, so streams often
//! complete in the same poll of a connection: a 100 MiB fetch from a real Kubo lost 345 of its
//! messages that way (`crates/node-core/tests/kubo_bitswap.rs`, 2026-12-01), each lost block
//! waiting for the next rebroadcast (5 s). Outbound streams still go through libp2p-stream.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::task::{Context, Poll};

use libp2p::PeerId;
use libp2p::core::transport::PortUse;
use libp2p::core::upgrade::DeniedUpgrade;
use libp2p::core::{Endpoint, InboundUpgrade, Multiaddr, UpgradeInfo};
use libp2p::swarm::handler::{ConnectionEvent, FullyNegotiatedInbound};
use libp2p::swarm::{
    ConnectionDenied, ConnectionHandler, ConnectionHandlerEvent, ConnectionId, FromSwarm,
    NetworkBehaviour, Stream, StreamProtocol, SubstreamProtocol, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm,
};
use tokio::sync::mpsc;

use crate::message::ProtocolVersion;

/// How many negotiated inbound streams may wait for the Bitswap task to take them; past that a
/// new stream is dropped (logged at debug). The task takes each at once and spawns its reader,
/// so the queue is only ever full when the task cannot run; the bound keeps memory fixed then.
pub const INBOUND_QUEUE: usize = 1024;

/// A stream a peer opened on one of the Bitswap protocols (every version's messages decode
/// alike, so which one was negotiated is not kept).
pub(crate) type InboundStream = (PeerId, Stream);

/// The `NetworkBehaviour` that accepts inbound Bitswap streams. Compose it into the swarm's
/// behaviour and give [`Inbound::take_streams`] to [`Bitswap::new`](crate::Bitswap::new).
/// It never keeps a connection alive, dials nobody and emits no event.
pub struct Inbound {
    tx: mpsc::Sender<InboundStream>,
    rx: Option<mpsc::Receiver<InboundStream>>,
}

/// The streams [`Inbound`] accepted, for [`Bitswap::new`](crate::Bitswap::new).
pub struct InboundStreams(pub(crate) mpsc::Receiver<InboundStream>);

impl std::fmt::Debug for Inbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbound").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for InboundStreams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboundStreams").finish_non_exhaustive()
    }
}

impl Default for Inbound {
    fn default() -> Self {
        Self::new()
    }
}

impl Inbound {
    /// A behaviour accepting `/ipfs/bitswap/1.2.0`, `1.1.0`, `1.0.0` and `/ipfs/bitswap`.
    pub fn new() -> Self {
        let (tx, rx) = mpsc::channel(INBOUND_QUEUE);
        Inbound { tx, rx: Some(rx) }
    }

    /// The accepted streams; `None` after the first call (one Bitswap per swarm).
    pub fn take_streams(&mut self) -> Option<InboundStreams> {
        self.rx.take().map(InboundStreams)
    }

    fn handler(&self, peer: PeerId) -> Handler {
        Handler {
            peer,
            tx: self.tx.clone(),
        }
    }
}

impl NetworkBehaviour for Inbound {
    type ConnectionHandler = Handler;
    type ToSwarm = Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(self.handler(peer))
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(self.handler(peer))
    }

    fn on_swarm_event(&mut self, _: FromSwarm) {}

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

/// One connection's handler: offers the Bitswap protocols to the remote and queues what it
/// opens; opens nothing itself.
#[derive(Debug)]
pub struct Handler {
    peer: PeerId,
    tx: mpsc::Sender<InboundStream>,
}

impl ConnectionHandler for Handler {
    type FromBehaviour = Infallible;
    type ToBehaviour = Infallible;
    type InboundProtocol = Protocols;
    type OutboundProtocol = DeniedUpgrade;
    type InboundOpenInfo = ();
    type OutboundOpenInfo = Infallible;

    fn listen_protocol(&self) -> SubstreamProtocol<Protocols> {
        SubstreamProtocol::new(Protocols, ())
    }

    fn poll(
        &mut self,
        _: &mut Context<'_>,
    ) -> Poll<ConnectionHandlerEvent<DeniedUpgrade, Infallible, Infallible>> {
        Poll::Pending
    }

    fn on_behaviour_event(&mut self, event: Infallible) {
        match event {}
    }

    fn on_connection_event(
        &mut self,
        event: ConnectionEvent<Protocols, DeniedUpgrade, (), Infallible>,
    ) {
        if let ConnectionEvent::FullyNegotiatedInbound(FullyNegotiatedInbound {
            protocol: stream,
            ..
        }) = event
            && let Err(e) = self.tx.try_send((self.peer, stream))
        {
            // Full (the Bitswap task has not run for INBOUND_QUEUE streams) or closed (Bitswap
            // stopped): the stream is dropped, and the peer sees it reset.
            tracing::debug!(peer = %self.peer, "bitswap: inbound stream dropped: {e}");
        }
    }
}

/// The inbound upgrade: the four Bitswap protocol names, newest first; the stream is used as
/// negotiated.
#[derive(Debug, Clone, Copy)]
pub struct Protocols;

impl UpgradeInfo for Protocols {
    type Info = StreamProtocol;
    type InfoIter = std::vec::IntoIter<StreamProtocol>;

    fn protocol_info(&self) -> Self::InfoIter {
        ProtocolVersion::ALL
            .iter()
            .map(|v| v.protocol())
            .collect::<Vec<_>>()
            .into_iter()
    }
}

impl InboundUpgrade<Stream> for Protocols {
    type Output = Stream;
    type Error = Infallible;
    type Future = Ready<Result<Stream, Infallible>>;

    fn upgrade_inbound(self, stream: Stream, _: StreamProtocol) -> Self::Future {
        ready(Ok(stream))
    }
}

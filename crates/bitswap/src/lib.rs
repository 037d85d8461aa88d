//! Bitswap for cairn: the block exchange protocol of IPFS, on rust-libp2p streams.
//!
//! It speaks `/ipfs/bitswap/1.2.0`, `1.1.0`, `1.0.0` and `/ipfs/bitswap` (boxo's message format,
//! Kubo's limits: 4 MiB messages, 2 MiB blocks), as a server (answering wants from a
//! [`BlockStore`], fairly between peers and with bounded memory per peer) and as a client (want-have
//! / want-block, DONT_HAVE, provider lookups through [`Routing`], sessions that fetch whole DAGs
//! with a growing window, their want-blocks spread over every peer that has the blocks in
//! proportion to how fast each delivers, and also sent to another peer when one is late). It
//! depends on neither the node nor the DHT: storage and routing are the two small traits below,
//! so it can be tested with two bare swarms.
//!
//! Inbound streams are accepted by the [`Inbound`] behaviour, outbound ones opened through
//! libp2p-stream; compose both into the swarm's behaviour.
//!
//! ```no_run
//! # async fn demo(store: std::sync::Arc<dyn cairn_bitswap::BlockStore>,
//! #   routing: std::sync::Arc<dyn cairn_bitswap::Routing>, control: libp2p_stream::Control,
//! #   inbound: &mut cairn_bitswap::Inbound,
//! #   cid: cid::Cid) -> Result<(), cairn_bitswap::BitswapError> {
//! use cairn_bitswap::{Bitswap, Config};
//! let streams = inbound.take_streams().expect("taken once");
//! let bitswap = Bitswap::new(Config::default(), store, routing, control, streams,
//!     tokio_util::sync::CancellationToken::new())?;
//! // Tell it about connections as the swarm reports them:
//! # let peer = libp2p::PeerId::random();
//! bitswap.peer_connected(peer);
//! let block = bitswap.get(&cid).await?;          // wrap in tokio::time::timeout for a deadline
//! # Ok(()) }
//! ```

pub mod error;
pub mod message;
pub mod proto;

mod engine;
mod inbound;
mod network;
mod session;
mod stats;

use std::sync::Arc;
use std::time::Duration;

use cairn_blockstore::Block;
use cid::Cid;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use libp2p::PeerId;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

pub use error::{BitswapError, MessageError};
pub use inbound::{INBOUND_QUEUE, Inbound, InboundStreams};
pub use message::{BitswapMessage, ProtocolVersion};
pub use session::{DagProgress, LinksFn, Session};

use engine::{Core, CoreMsg, Query};
use stats::Stats;

/// The error type a [`BlockStore`] or [`Routing`] implementation returns.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Where Bitswap reads the blocks it serves and writes the blocks it receives.
///
/// Calls may block (disk I/O): Bitswap makes them from blocking threads, except [`size`], which
/// it calls from its core task for each incoming want and so must be cheap (an index lookup).
///
/// [`size`]: BlockStore::size
pub trait BlockStore: Send + Sync + 'static {
    /// The block, if stored.
    fn get(&self, cid: &Cid) -> Result<Option<Block>, BoxError>;
    /// The block's size in bytes, if stored.
    fn size(&self, cid: &Cid) -> Result<Option<usize>, BoxError>;
    /// Stores verified blocks (their bytes match their CIDs already).
    fn put_many(&self, blocks: Vec<Block>) -> Result<(), BoxError>;
}

/// How Bitswap finds and reaches peers beyond the connected ones.
pub trait Routing: Send + Sync + 'static {
    /// Peers that provide `cid` (e.g. from the DHT), at most `limit`.
    fn find_providers(&self, cid: Cid, limit: usize) -> BoxStream<'static, PeerId>;
    /// Connects to a peer; the swarm then reports it with [`Bitswap::peer_connected`].
    fn connect(&self, peer: PeerId) -> BoxFuture<'static, Result<(), BoxError>>;
    /// Closes the connections to a misbehaving peer.
    fn disconnect(&self, peer: PeerId);
}

/// One block that crossed the wire, as reported to the hook set with [`Bitswap::on_transfer`].
/// Sizes are the block's data in bytes (not the message framing).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transfer {
    /// A peer sent a block this node wanted (it is then stored; duplicates and unrequested
    /// blocks are not reported).
    Received {
        /// The block.
        cid: Cid,
        /// The peer it came from.
        from: PeerId,
        /// Its size in bytes.
        size: usize,
    },
    /// This node loaded a block a peer wanted and queued it to the peer's stream.
    Sent {
        /// The block.
        cid: Cid,
        /// The peer it goes to.
        to: PeerId,
        /// Its size in bytes.
        size: usize,
    },
}

/// A callback told of every [`Transfer`]; it runs on Bitswap's tasks, so it must be quick and
/// must not block (e.g. a `broadcast::Sender::send`).
pub type TransferHook = Box<dyn Fn(Transfer) + Send + Sync>;

/// Tuning. The defaults follow Kubo where Kubo has a number.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Wants kept per peer; more are ignored (Kubo: 1024).
    pub max_wants_per_peer: usize,
    /// Server messages (about 1 MiB each) loaded or queued per peer at once.
    pub max_messages_in_flight: usize,
    /// Block loads for all peers at once (Kubo runs 8 task workers).
    pub max_concurrent_loads: usize,
    /// How long a want waits on connected peers before providers are looked up.
    pub provider_search_delay: Duration,
    /// How long a chosen peer may stay silent before a want is asked of everyone again.
    pub rebroadcast_interval: Duration,
    /// Unrequested or invalid blocks a peer may send before it is disconnected.
    pub max_strikes: u32,
    /// Providers dialled per lookup.
    pub max_providers: usize,
    /// A DAG fetch starts with this many wants outstanding ...
    pub session_window_start: usize,
    /// ... and grows by one per block received up to this many.
    pub session_window_max: usize,
    /// Want-blocks a peer may hold for us at once when it is new: the client spreads a
    /// session's want-blocks over the peers that have the blocks, each with its own window ...
    pub peer_window_start: usize,
    /// ... which grows by one per block the peer delivers up to this many, and halves when a
    /// want-block to it is late and another peer could take it. Bounds how many blocks one peer
    /// can hold back from a fetch.
    pub peer_window_max: usize,
    /// The shortest time a want-block waits at a peer before it is also sent to another peer;
    /// the wait is otherwise four times the delivery the fastest peer's measured speed predicts
    /// for it (at most `rebroadcast_interval`).
    pub min_want_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_wants_per_peer: 1024,
            max_messages_in_flight: 2,
            max_concurrent_loads: 8,
            provider_search_delay: Duration::from_secs(1),
            rebroadcast_interval: Duration::from_secs(5),
            max_strikes: 5,
            max_providers: 8,
            session_window_start: 32,
            session_window_max: 256,
            peer_window_start: 8,
            peer_window_max: 64,
            min_want_timeout: Duration::from_secs(1),
        }
    }
}

/// Counters since start, as Kubo's `bitswap stat` reports them (sizes in bytes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stat {
    /// CIDs being fetched.
    pub wantlist: Vec<Cid>,
    /// Connected peers that speak Bitswap.
    pub peers: Vec<PeerId>,
    /// Blocks received (duplicates included).
    pub blocks_received: u64,
    /// Bytes of blocks received.
    pub data_received: u64,
    /// Blocks received more than once.
    pub dup_blocks_received: u64,
    /// Bytes of those.
    pub dup_data_received: u64,
    /// Messages received.
    pub messages_received: u64,
    /// Blocks sent.
    pub blocks_sent: u64,
    /// Bytes of blocks sent.
    pub data_sent: u64,
    /// Blocks received that nobody asked for, corrupt ones included.
    pub unwanted_blocks: u64,
    /// Peers disconnected for sending unrequested or invalid blocks.
    pub peers_dropped: u64,
    /// Want-blocks sent again because the peer asked was late: to another peer, or to the late
    /// peer itself when it has delivered nothing for `rebroadcast_interval` (each may cause one
    /// duplicate block).
    pub wants_rerouted: u64,
    /// Want-blocks asked again of a late peer that delivered nothing for
    /// [`Config::rebroadcast_interval`] (a lost message, or a peer that dropped our want).
    pub wants_reasked: u64,
}

/// What Bitswap has exchanged with one peer (`bitswap ledger`); zero for an unknown peer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LedgerInfo {
    /// The peer.
    pub peer: PeerId,
    /// Bytes of blocks sent to it.
    pub bytes_sent: u64,
    /// Bytes of messages received from it.
    pub bytes_received: u64,
    /// Blocks sent to it.
    pub blocks_sent: u64,
    /// Blocks received from it.
    pub blocks_received: u64,
    /// Messages received from it.
    pub exchanged: u64,
    /// Entries in its wantlist.
    pub wants: usize,
}

impl LedgerInfo {
    pub(crate) fn empty(peer: PeerId) -> Self {
        LedgerInfo {
            peer,
            bytes_sent: 0,
            bytes_received: 0,
            blocks_sent: 0,
            blocks_received: 0,
            exchanged: 0,
            wants: 0,
        }
    }
}

/// A running Bitswap: a cheap handle to its core task. The tasks stop when the cancellation token
/// given to [`Bitswap::new`] is cancelled or the last handle is dropped.
#[derive(Clone)]
pub struct Bitswap {
    inner: Arc<Inner>,
}

struct Inner {
    requests: mpsc::Sender<CoreMsg>,
    ctl: mpsc::UnboundedSender<CoreMsg>,
    stats: Arc<Stats>,
    store: Arc<dyn BlockStore>,
    config: Config,
    next_session: std::sync::atomic::AtomicU64,
    cancel: CancellationToken,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl std::fmt::Debug for Bitswap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bitswap").finish_non_exhaustive()
    }
}

impl Bitswap {
    /// Spawns the core task and the reader of `inbound`'s streams (needs a tokio runtime).
    /// `control` opens the outbound streams; `inbound` comes from the swarm's [`Inbound`]
    /// behaviour ([`Inbound::take_streams`]). Returns `Result` for errors a later version may
    /// have; none today.
    pub fn new(
        config: Config,
        store: Arc<dyn BlockStore>,
        routing: Arc<dyn Routing>,
        control: libp2p_stream::Control,
        inbound: InboundStreams,
        cancel: CancellationToken,
    ) -> Result<Self, BitswapError> {
        let cancel = cancel.child_token();
        let (requests, requests_rx) = mpsc::channel(1024);
        let (ctl, ctl_rx) = mpsc::unbounded_channel();
        network::spawn_inbound(inbound, requests.clone(), cancel.clone());
        let stats = Arc::new(Stats::default());
        let core = Core::new(
            config.clone(),
            store.clone(),
            routing,
            control,
            cancel.clone(),
            ctl.clone(),
            stats.clone(),
        );
        tokio::spawn(core.run(requests_rx, ctl_rx));
        Ok(Bitswap {
            inner: Arc::new(Inner {
                requests,
                ctl,
                stats,
                store,
                config,
                next_session: 1.into(),
                cancel,
            }),
        })
    }

    /// Registers the `cairn_bitswap_*` metrics.
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        self.inner.stats.register(registry);
    }

    /// Sets the callback told of each block received or sent (see [`Transfer`]). Only the first
    /// call takes effect; returns `false` if a hook was set already.
    pub fn on_transfer(&self, hook: TransferHook) -> bool {
        self.inner.stats.hook.set(hook).is_ok()
    }

    /// The swarm connected to a peer (call once, on its first connection).
    pub fn peer_connected(&self, peer: PeerId) {
        let _ = self.inner.ctl.send(CoreMsg::PeerConnected(peer));
    }

    /// The swarm's last connection to a peer closed.
    pub fn peer_disconnected(&self, peer: PeerId) {
        let _ = self.inner.ctl.send(CoreMsg::PeerDisconnected(peer));
    }

    /// Blocks were stored locally by someone else (an add, a put): peers waiting for them get
    /// them. Sizes in bytes.
    pub fn blocks_added(&self, blocks: Vec<(Cid, usize)>) {
        if !blocks.is_empty() {
            let _ = self.inner.ctl.send(CoreMsg::BlocksAdded(blocks));
        }
    }

    /// Fetches a block from the network (the store is checked first). Waits until a peer
    /// delivers it; dropping the future cancels the want. Errors: [`BitswapError::Stopped`],
    /// [`BitswapError::Store`].
    pub async fn get(&self, cid: &Cid) -> Result<Block, BitswapError> {
        self.want(cid, None, 1).await
    }

    /// A session: wants made through it go to the peers that served it or said they have one of
    /// its blocks, spread over them (see [`Session`]).
    pub fn session(&self) -> Session {
        let id = self
            .inner
            .next_session
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Session::new(self.clone(), id)
    }

    pub(crate) async fn want(
        &self,
        cid: &Cid,
        session: Option<u64>,
        priority: i32,
    ) -> Result<Block, BitswapError> {
        let store = self.inner.store.clone();
        let c = *cid;
        let local = tokio::task::spawn_blocking(move || store.get(&c))
            .await
            .map_err(|_| BitswapError::Stopped)?
            .map_err(|e| BitswapError::Store(e.to_string()))?;
        if let Some(b) = local {
            return Ok(b);
        }
        let (reply, rx) = oneshot::channel();
        self.inner
            .requests
            .send(CoreMsg::Want {
                cid: *cid,
                session,
                priority,
                reply,
            })
            .await
            .map_err(|_| BitswapError::Stopped)?;
        // Dropped before the answer (a timeout, a client gone): the core hears at once.
        let mut gone = WaiterGuard {
            ctl: &self.inner.ctl,
            cid: Some(*cid),
        };
        let answer = rx.await;
        gone.cid = None;
        answer.map_err(|_| BitswapError::Stopped)?
    }

    pub(crate) fn close_session(&self, id: u64) {
        let _ = self.inner.ctl.send(CoreMsg::SessionClosed(id));
    }

    pub(crate) fn config(&self) -> &Config {
        &self.inner.config
    }

    async fn query<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Query,
    ) -> Result<T, BitswapError> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .requests
            .send(CoreMsg::Query(make(tx)))
            .await
            .map_err(|_| BitswapError::Stopped)?;
        rx.await.map_err(|_| BitswapError::Stopped)
    }

    /// The CIDs this node is fetching, or with `Some(peer)`, the CIDs that peer wants from us.
    pub async fn wantlist(&self, peer: Option<PeerId>) -> Result<Vec<Cid>, BitswapError> {
        self.query(|tx| Query::Wantlist(peer, tx)).await
    }

    /// What was exchanged with `peer`.
    pub async fn ledger(&self, peer: PeerId) -> Result<LedgerInfo, BitswapError> {
        self.query(|tx| Query::Ledger(peer, tx)).await
    }

    /// Counters, the wantlist and the Bitswap peers.
    pub async fn stat(&self) -> Result<Stat, BitswapError> {
        let wantlist = self.wantlist(None).await?;
        let peers = self.query(Query::Peers).await?;
        let s = &self.inner.stats;
        Ok(Stat {
            wantlist,
            peers,
            blocks_received: s.blocks_received.get(),
            data_received: s.data_received.get(),
            dup_blocks_received: s.dup_blocks.get(),
            dup_data_received: s.dup_data.get(),
            messages_received: s.messages_received.get(),
            blocks_sent: s.blocks_sent.get(),
            data_sent: s.data_sent.get(),
            unwanted_blocks: s.unwanted_blocks.get(),
            peers_dropped: s.peers_dropped.get(),
            wants_rerouted: s.wants_rerouted.get(),
            wants_reasked: s.wants_reasked.get(),
        })
    }
}

/// Tells the core when a [`Bitswap::want`] future is dropped while it still waits, so the want
/// ends without waiting for the core's next tick.
struct WaiterGuard<'a> {
    ctl: &'a mpsc::UnboundedSender<CoreMsg>,
    /// `None` once answered.
    cid: Option<Cid>,
}

impl Drop for WaiterGuard<'_> {
    fn drop(&mut self) {
        if let Some(cid) = self.cid.take() {
            let _ = self.ctl.send(CoreMsg::WaiterGone(cid));
        }
    }
}

//! The Bitswap core: one task that owns every peer's ledger (the server side) and every pending
//! want (the client side). Network readers, writers, block loads and store writes run in their own
//! tasks and report back over channels, so the core never blocks on I/O.
//!
//! Server (boxo's engine, simplified): each peer's wants live in a ledger bounded to
//! [`Config::max_wants_per_peer`] entries; wants we can serve become tasks in a per-peer priority
//! queue; peers with tasks take turns (round robin), each with at most
//! [`Config::max_messages_in_flight`] messages of about 1 MiB loaded or queued, and at most
//! [`Config::max_concurrent_loads`] loads run at once. A peer flooding wants therefore costs at most
//! its ledger and its messages in flight, and cannot delay other peers by more than one turn.
//!
//! Client (boxo's session and session peer manager, simplified): a new want goes as want-have to
//! the candidate peers (for a session: every connected peer during its first wants and for every
//! [`DISCOVERY_EVERY`]th want after, else the peers that said HAVE or sent a block), and as
//! want-block to one peer, chosen for the earliest expected delivery: (want-blocks outstanding
//! there + 1) × the time that peer takes per block. Each peer has a window of outstanding
//! want-blocks ([`Config::peer_window_start`], one more per block it delivers up to
//! [`Config::peer_window_max`], halved on a timeout); a want whose best peer is full waits in a
//! queue for a slot. So want-blocks spread over every peer that has the blocks, in proportion to
//! how fast each delivers. A want-block not answered within three times the peer's observed
//! latency (at least [`Config::min_want_timeout`]) is cancelled there and sent to another peer;
//! the slow peer counts as that slow from then on, so it gets wants again only when it is the
//! quickest choice. Each want is asked as want-block of one peer at a time, so a duplicate needs a
//! timeout (the slow peer answering after all) or a small block sent for a want-have.
//!
//! Memory: per want (at most the callers' wants in flight, e.g. a session's window) a few sets of
//! peer ids; per peer a window, two counters and two durations; the wait queue holds each waiting
//! want once.
//!
//! When every peer says DONT_HAVE, or after [`Config::provider_search_delay`] with no peer saying
//! HAVE, the providers found through [`Routing`] are dialled and get the wantlist on connection. A
//! received block is already hashed (its CID is rebuilt from the prefix); if nobody wanted it, or
//! it could not be hashed, the peer gets a strike, and is disconnected at [`Config::max_strikes`].

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_blockstore::Block;
use cid::Cid;
use futures::StreamExt;
use libp2p::PeerId;
use libp2p_stream::Control;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::error::BitswapError;
use crate::message::{
    BitswapMessage, Presence, ReceivedBlock, TARGET_MESSAGE_SIZE, WantEntry, WantType,
};
use crate::network::{Outgoing, PeerWriter};
use crate::stats::Stats;
use crate::{BlockStore, Config, LedgerInfo, Routing};

/// Blocks a want-have is answered with directly instead of a HAVE (boxo's
/// `DefaultWantHaveReplaceSize`, 1024 bytes).
const WANT_HAVE_REPLACE_SIZE: usize = 1024;
/// CIDs remembered after a want was fulfilled, so a late copy counts as a duplicate, not a strike.
const RECENT_CIDS: usize = 8192;
/// How often the core looks at its wants (timeouts, dropped callers, provider searches).
const TICK: Duration = Duration::from_millis(200);
/// At most this many provider searches run at once.
const MAX_SEARCHES: usize = 16;
/// A session's first wants go as want-have to every connected peer, so it learns which have the
/// DAG (boxo's sessions broadcast until they have peers) ...
const DISCOVERY_WANTS: u64 = 32;
/// ... and one want in this many after that, so peers that connect later (providers found in the
/// DHT) join too, at a small share of a broadcast's cost.
const DISCOVERY_EVERY: u64 = 16;
/// A want-block times out after this many times the peer's observed latency.
const TIMEOUT_FACTOR: u32 = 3;
/// The most a timed-out peer's time per block is taken to be.
const MAX_PENALTY: Duration = Duration::from_secs(60);

/// Messages to the core task.
pub(crate) enum CoreMsg {
    Inbound {
        peer: PeerId,
        msg: Box<BitswapMessage>,
        wire_bytes: usize,
    },
    BadMessage {
        peer: PeerId,
        reason: String,
    },
    Sent {
        peer: PeerId,
        server_bytes: usize,
    },
    WriterFailed {
        peer: PeerId,
        unsupported: bool,
    },
    Loaded {
        peer: PeerId,
        blocks: u64,
        bytes: u64,
    },
    PeerConnected(PeerId),
    PeerDisconnected(PeerId),
    BlocksAdded(Vec<(Cid, usize)>),
    Want {
        cid: Cid,
        session: Option<u64>,
        priority: i32,
        reply: oneshot::Sender<Result<Block, BitswapError>>,
    },
    SessionClosed(u64),
    Stored {
        blocks: Vec<Block>,
        result: Result<(), String>,
    },
    SearchDone(Cid),
    Query(Query),
}

/// Questions from the handle about the core's state.
pub(crate) enum Query {
    Wantlist(Option<PeerId>, oneshot::Sender<Vec<Cid>>),
    Peers(oneshot::Sender<Vec<PeerId>>),
    Ledger(PeerId, oneshot::Sender<LedgerInfo>),
}

#[derive(Debug, Clone, Copy)]
struct LedgerWant {
    priority: i32,
    want_type: WantType,
}

#[derive(Debug, PartialEq, Eq)]
struct Task {
    priority: i32,
    seq: Reverse<u64>,
    cid: Cid,
    size: usize,
}

impl Ord for Task {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.priority, self.seq).cmp(&(other.priority, other.seq))
    }
}

impl PartialOrd for Task {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[derive(Default)]
struct Ledger {
    wants: HashMap<Cid, LedgerWant>,
    tasks: BinaryHeap<Task>,
    bytes_sent: u64,
    bytes_received: u64,
    blocks_sent: u64,
    blocks_received: u64,
    exchanged: u64,
}

struct Peer {
    writer: PeerWriter,
    /// False once the peer refused every Bitswap version.
    bitswap: bool,
    ledger: Ledger,
    /// Smoothed time from want-block to block (queueing at the peer included): what a want-block
    /// timeout is derived from.
    latency: Option<Duration>,
    /// Smoothed time the peer takes per block while it has want-blocks outstanding: its speed,
    /// which peer choice weighs. Set to at least the waited time when a want-block times out.
    interval: Option<Duration>,
    /// Since when the current `interval` sample runs (the last delivery, or the moment the peer
    /// went from idle to busy); `None` while nothing is outstanding.
    mark: Option<Instant>,
    /// Our want-blocks outstanding at this peer.
    asked_blocks: usize,
    /// How many may be outstanding.
    window: usize,
    strikes: u32,
    in_flight: usize,
    queued: bool,
}

struct Want {
    waiters: Vec<oneshot::Sender<Result<Block, BitswapError>>>,
    session: Option<u64>,
    priority: i32,
    /// Peers told about this want (they get a cancel when it is done).
    asked: HashSet<PeerId>,
    /// The peer holding the want-block, and since when.
    asked_block: Option<(PeerId, Instant)>,
    haves: Vec<PeerId>,
    dont_haves: HashSet<PeerId>,
    /// Peers this want-block timed out at: asked again only when nobody else can be.
    slow: HashSet<PeerId>,
    /// Not yet announced: the next assignment sends want-haves along with the want-block.
    fresh: bool,
    /// In `Core::waiting`.
    queued: bool,
    created: Instant,
    last_broadcast: Instant,
    last_search: Option<Instant>,
    storing: bool,
}

/// What the core knows of a session.
#[derive(Default)]
struct SessionPeers {
    /// Peers that said HAVE or sent a block for one of its wants.
    peers: HashSet<PeerId>,
    /// Wants made so far (for [`DISCOVERY_WANTS`] and [`DISCOVERY_EVERY`]).
    wants: u64,
}

pub(crate) struct Core {
    pub config: Config,
    pub store: Arc<dyn BlockStore>,
    pub routing: Arc<dyn Routing>,
    pub control: Control,
    pub cancel: CancellationToken,
    pub ctl_tx: mpsc::UnboundedSender<CoreMsg>,
    pub stats: Arc<Stats>,
    peers: HashMap<PeerId, Peer>,
    wants: HashMap<Cid, Want>,
    sessions: HashMap<u64, SessionPeers>,
    /// Wants without a want-block outstanding, waiting for a peer slot, in the order made (which
    /// for a DAG fetch is priority order).
    waiting: VecDeque<Cid>,
    recent: (VecDeque<Cid>, HashSet<Cid>),
    ready: VecDeque<PeerId>,
    loads: usize,
    searches: HashSet<Cid>,
    seq: u64,
    outbox: HashMap<PeerId, Vec<WantEntry>>,
}

impl Core {
    pub(crate) fn new(
        config: Config,
        store: Arc<dyn BlockStore>,
        routing: Arc<dyn Routing>,
        control: Control,
        cancel: CancellationToken,
        ctl_tx: mpsc::UnboundedSender<CoreMsg>,
        stats: Arc<Stats>,
    ) -> Self {
        Core {
            config,
            store,
            routing,
            control,
            cancel,
            ctl_tx,
            stats,
            peers: HashMap::new(),
            wants: HashMap::new(),
            sessions: HashMap::new(),
            waiting: VecDeque::new(),
            recent: (VecDeque::new(), HashSet::new()),
            ready: VecDeque::new(),
            loads: 0,
            searches: HashSet::new(),
            seq: 0,
            outbox: HashMap::new(),
        }
    }

    /// Runs until cancelled or every handle is gone.
    pub(crate) async fn run(
        mut self,
        mut requests: mpsc::Receiver<CoreMsg>,
        mut ctl: mpsc::UnboundedReceiver<CoreMsg>,
    ) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.cancel.cancelled() => break,
                m = ctl.recv() => match m {
                    Some(m) => self.handle(m),
                    None => break,
                },
                m = requests.recv() => match m {
                    Some(m) => self.handle(m),
                    None => break,
                },
                _ = tick.tick() => self.tick(),
            }
            // Take what else is waiting before flushing, so wants for many CIDs share messages.
            for _ in 0..64 {
                match ctl.try_recv().or_else(|_| requests.try_recv()) {
                    Ok(m) => self.handle(m),
                    Err(_) => break,
                }
            }
            self.assign_waiting();
            self.flush_outbox();
            self.dispatch();
            self.stats.wantlist.set(self.wants.len() as i64);
            self.stats
                .peers
                .set(self.peers.values().filter(|p| p.bitswap).count() as i64);
        }
        for (_, w) in self.wants.drain() {
            for tx in w.waiters {
                let _ = tx.send(Err(BitswapError::Stopped));
            }
        }
    }

    fn handle(&mut self, m: CoreMsg) {
        match m {
            CoreMsg::Inbound {
                peer,
                msg,
                wire_bytes,
            } => self.inbound(peer, *msg, wire_bytes),
            CoreMsg::BadMessage { peer, reason } => {
                tracing::debug!(%peer, %reason, "bitswap: bad message");
                self.stats.bad_messages.inc();
                self.strike(peer);
            }
            CoreMsg::Sent { peer, server_bytes } => {
                if let Some(p) = self.peers.get_mut(&peer)
                    && server_bytes > 0
                {
                    p.in_flight = p.in_flight.saturating_sub(1);
                    self.schedule(peer);
                }
            }
            CoreMsg::WriterFailed { peer, unsupported } => {
                // Either way the peer is no use until it reconnects (a new connection makes a
                // fresh entry); asking it again now would only fail again.
                tracing::debug!(%peer, unsupported, "bitswap: peer unreachable");
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.bitswap = false;
                    p.in_flight = 0;
                }
                self.forget_peer_wants(peer);
            }
            CoreMsg::Loaded {
                peer,
                blocks,
                bytes,
            } => {
                self.loads = self.loads.saturating_sub(1);
                self.stats.blocks_sent.inc_by(blocks);
                self.stats.data_sent.inc_by(bytes);
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.ledger.blocks_sent += blocks;
                    p.ledger.bytes_sent += bytes;
                }
            }
            CoreMsg::PeerConnected(peer) => self.connected(peer),
            CoreMsg::PeerDisconnected(peer) => {
                self.peers.remove(&peer);
                self.ready.retain(|p| *p != peer);
                self.forget_peer_wants(peer);
            }
            CoreMsg::BlocksAdded(cids) => self.blocks_added(&cids),
            CoreMsg::Want {
                cid,
                session,
                priority,
                reply,
            } => self.want(cid, session, priority, reply),
            CoreMsg::SessionClosed(id) => {
                self.sessions.remove(&id);
            }
            CoreMsg::Stored { blocks, result } => self.stored(blocks, result),
            CoreMsg::SearchDone(cid) => {
                self.searches.remove(&cid);
            }
            CoreMsg::Query(q) => self.query(q),
        }
    }

    fn query(&mut self, q: Query) {
        match q {
            Query::Wantlist(None, tx) => {
                let _ = tx.send(self.wants.keys().copied().collect());
            }
            Query::Wantlist(Some(peer), tx) => {
                let list = self
                    .peers
                    .get(&peer)
                    .map(|p| p.ledger.wants.keys().copied().collect())
                    .unwrap_or_default();
                let _ = tx.send(list);
            }
            Query::Peers(tx) => {
                let _ = tx.send(
                    self.peers
                        .iter()
                        .filter(|(_, p)| p.bitswap)
                        .map(|(id, _)| *id)
                        .collect(),
                );
            }
            Query::Ledger(peer, tx) => {
                let info = self
                    .peers
                    .get(&peer)
                    .map(|p| LedgerInfo {
                        peer,
                        bytes_sent: p.ledger.bytes_sent,
                        bytes_received: p.ledger.bytes_received,
                        blocks_sent: p.ledger.blocks_sent,
                        blocks_received: p.ledger.blocks_received,
                        exchanged: p.ledger.exchanged,
                        wants: p.ledger.wants.len(),
                    })
                    .unwrap_or_else(|| LedgerInfo::empty(peer));
                let _ = tx.send(info);
            }
        }
    }

    fn peer_entry(&mut self, peer: PeerId) -> &mut Peer {
        let (control, ctl, cancel) = (
            self.control.clone(),
            self.ctl_tx.clone(),
            self.cancel.clone(),
        );
        let window = self.config.peer_window_start.max(1);
        self.peers.entry(peer).or_insert_with(|| Peer {
            writer: PeerWriter::spawn(peer, control, ctl, cancel),
            bitswap: true,
            ledger: Ledger::default(),
            latency: None,
            interval: None,
            mark: None,
            asked_blocks: 0,
            window,
            strikes: 0,
            in_flight: 0,
            queued: false,
        })
    }

    fn connected(&mut self, peer: PeerId) {
        self.peer_entry(peer);
        if self.wants.is_empty() {
            return;
        }
        // A new peer gets our whole wantlist, as want-haves (boxo sends its broadcast wants).
        let entries: Vec<WantEntry> = self
            .wants
            .iter_mut()
            .filter(|(_, w)| !w.storing)
            .map(|(cid, w)| {
                w.asked.insert(peer);
                WantEntry::have(*cid, w.priority)
            })
            .collect();
        let msg = BitswapMessage {
            full: true,
            wants: entries,
            ..Default::default()
        };
        if let Some(p) = self.peers.get(&peer) {
            p.writer.try_send(Outgoing {
                msg,
                server_bytes: 0,
            });
        }
    }

    /// A peer is gone or unreachable: its want-blocks go back to the wait queue at once (to the
    /// next peer that said HAVE, or announced to everyone again), or to a provider search when
    /// nobody is left.
    fn forget_peer_wants(&mut self, peer: PeerId) {
        let mut orphaned = Vec::new();
        for (cid, w) in self.wants.iter_mut() {
            w.haves.retain(|p| *p != peer);
            w.asked.remove(&peer);
            if w.asked_block.is_some_and(|(p, _)| p == peer) && !w.storing {
                orphaned.push(*cid);
            }
        }
        for s in self.sessions.values_mut() {
            s.peers.remove(&peer);
        }
        for cid in orphaned {
            self.release(&cid);
            let session = self.wants.get(&cid).and_then(|w| w.session);
            if self.candidates(session).is_empty() {
                self.search(cid);
            } else {
                if let Some(w) = self.wants.get_mut(&cid)
                    && w.haves.is_empty()
                {
                    w.fresh = true;
                }
                self.enqueue(cid);
            }
        }
    }

    fn strike(&mut self, peer: PeerId) {
        let max = self.config.max_strikes;
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        p.strikes += 1;
        if p.strikes >= max {
            tracing::warn!(%peer, strikes = p.strikes, "bitswap: disconnecting a peer that sent unrequested or invalid blocks");
            self.stats.peers_dropped.inc();
            self.peers.remove(&peer);
            self.ready.retain(|p| *p != peer);
            self.forget_peer_wants(peer);
            self.routing.disconnect(peer);
        }
    }

    // ---- server ---------------------------------------------------------------------------------

    fn inbound(&mut self, peer: PeerId, msg: BitswapMessage, wire_bytes: usize) {
        self.stats.messages_received.inc();
        let max_wants = self.config.max_wants_per_peer;
        let store = self.store.clone();
        let mut seq = self.seq;
        let mut dropped = 0u64;
        let p = self.peer_entry(peer);
        p.ledger.exchanged += 1;
        p.ledger.bytes_received += wire_bytes as u64;
        if msg.full {
            p.ledger.wants.clear();
            p.ledger.tasks.clear();
        }
        let mut presences = Vec::new();
        for w in &msg.wants {
            if w.cancel {
                p.ledger.wants.remove(&w.cid);
                continue;
            }
            if !p.ledger.wants.contains_key(&w.cid) && p.ledger.wants.len() >= max_wants {
                dropped += 1;
                continue;
            }
            let entry = LedgerWant {
                priority: w.priority,
                want_type: w.want_type,
            };
            match store.size(&w.cid) {
                Ok(Some(size))
                    if w.want_type == WantType::Block || size <= WANT_HAVE_REPLACE_SIZE =>
                {
                    p.ledger.wants.insert(w.cid, entry);
                    seq += 1;
                    p.ledger.tasks.push(Task {
                        priority: w.priority,
                        seq: Reverse(seq),
                        cid: w.cid,
                        size,
                    });
                }
                Ok(Some(_)) => {
                    // Answered now; the peer follows up with a want-block if it chooses us.
                    presences.push((w.cid, Presence::Have));
                }
                Ok(None) => {
                    // Kept: if the block arrives later, the peer gets it (Kubo relies on this).
                    p.ledger.wants.insert(w.cid, entry);
                    if w.send_dont_have {
                        presences.push((w.cid, Presence::DontHave));
                    }
                }
                Err(e) => tracing::warn!(cid = %w.cid, error = %e, "bitswap: store lookup failed"),
            }
        }
        // Bound the task heap too: cancelled entries are skipped lazily, so rebuild when it grows
        // past twice the ledger.
        if p.ledger.tasks.len() > 2 * max_wants {
            let wants = &p.ledger.wants;
            let kept: Vec<Task> = p
                .ledger
                .tasks
                .drain()
                .filter(|t| wants.contains_key(&t.cid))
                .collect();
            p.ledger.tasks = kept.into();
        }
        if !presences.is_empty() {
            p.writer.try_send(Outgoing {
                msg: BitswapMessage {
                    presences,
                    ..Default::default()
                },
                server_bytes: 0,
            });
        }
        self.seq = seq;
        if dropped > 0 {
            self.stats.wants_dropped.inc_by(dropped);
        }
        self.schedule(peer);

        // ---- client side of the same message ----
        for (cid, presence) in &msg.presences {
            self.presence(peer, *cid, *presence);
        }
        let mut to_store = Vec::new();
        // Blocks of this message that answered our want-blocks to this peer, and since when the
        // peer was working on them: one sample of its time per block.
        let mut delivered = 0u32;
        let mark = self.peers.get(&peer).and_then(|p| p.mark);
        for b in msg.blocks {
            match b {
                ReceivedBlock::Valid(block) => {
                    self.stats.blocks_received.inc();
                    self.stats.data_received.inc_by(block.len() as u64);
                    if let Some(p) = self.peers.get_mut(&peer) {
                        p.ledger.blocks_received += 1;
                    }
                    let key = self.want_key(block.cid());
                    match key.and_then(|k| self.wants.get_mut(&k).map(|w| (k, w))) {
                        Some((key, w)) if !w.storing => {
                            w.storing = true;
                            // The want-block's slot is free now, whoever answered.
                            if let Some((asked, at)) = w.asked_block.take()
                                && let Some(p) = self.peers.get_mut(&asked)
                            {
                                p.asked_blocks = p.asked_blocks.saturating_sub(1);
                                if asked == peer {
                                    delivered += 1;
                                    let sample = at.elapsed();
                                    p.latency = Some(match p.latency {
                                        Some(l) => (l * 7 + sample * 3) / 10,
                                        None => sample,
                                    });
                                } else if p.asked_blocks == 0 {
                                    p.mark = None;
                                }
                            }
                            if let Some(s) = w.session.and_then(|s| self.sessions.get_mut(&s)) {
                                s.peers.insert(peer);
                            }
                            let block = if key == *block.cid() {
                                block
                            } else {
                                // A 1.0.0 peer sent the CIDv0 form of the CIDv1 we asked for.
                                match Block::new(key, block.data().clone()) {
                                    Ok(b) => b,
                                    Err(_) => continue,
                                }
                            };
                            self.stats.transfer(|| crate::Transfer::Received {
                                cid: *block.cid(),
                                from: peer,
                                size: block.len(),
                            });
                            to_store.push(block);
                        }
                        Some(_) => {
                            self.stats.dup_blocks.inc();
                            self.stats.dup_data.inc_by(block.len() as u64);
                        }
                        None if self.recent.1.contains(block.cid()) => {
                            self.stats.dup_blocks.inc();
                            self.stats.dup_data.inc_by(block.len() as u64);
                        }
                        None => {
                            tracing::debug!(%peer, cid = %block.cid(), "bitswap: unrequested block");
                            self.stats.unwanted_blocks.inc();
                            self.strike(peer);
                        }
                    }
                }
                ReceivedBlock::Invalid(reason) => {
                    tracing::debug!(%peer, %reason, "bitswap: invalid block");
                    self.stats.invalid_blocks.inc();
                    self.strike(peer);
                }
            }
        }
        if delivered > 0
            && let Some(p) = self.peers.get_mut(&peer)
        {
            let now = Instant::now();
            if let Some(since) = mark {
                let sample = now.duration_since(since) / delivered;
                p.interval = Some(match p.interval {
                    Some(i) => (i * 7 + sample * 3) / 10,
                    None => sample,
                });
            }
            p.mark = (p.asked_blocks > 0).then_some(now);
            p.window = (p.window + delivered as usize).min(self.config.peer_window_max.max(1));
        }
        if !to_store.is_empty() {
            let store = self.store.clone();
            let ctl = self.ctl_tx.clone();
            tokio::task::spawn_blocking(move || {
                let result = store.put_many(to_store.clone()).map_err(|e| e.to_string());
                let _ = ctl.send(CoreMsg::Stored {
                    blocks: to_store,
                    result,
                });
            });
        }
    }

    /// The CID under which a received block is wanted: itself, or for a CIDv0 block the CIDv1
    /// dag-pb form of the same hash.
    fn want_key(&self, cid: &Cid) -> Option<Cid> {
        if self.wants.contains_key(cid) {
            return Some(*cid);
        }
        if cid.version() == cid::Version::V0 {
            let v1 = Cid::new_v1(cid.codec(), *cid.hash());
            if self.wants.contains_key(&v1) {
                return Some(v1);
            }
        }
        None
    }

    fn schedule(&mut self, peer: PeerId) {
        let max = self.config.max_messages_in_flight;
        if let Some(p) = self.peers.get_mut(&peer)
            && !p.queued
            && p.bitswap
            && p.in_flight < max
            && !p.ledger.tasks.is_empty()
        {
            p.queued = true;
            self.ready.push_back(peer);
        }
    }

    /// Hands out loads round robin between the peers that have tasks.
    fn dispatch(&mut self) {
        while self.loads < self.config.max_concurrent_loads {
            let Some(peer) = self.ready.pop_front() else {
                break;
            };
            let Some(p) = self.peers.get_mut(&peer) else {
                continue;
            };
            p.queued = false;
            let mut batch = Vec::new();
            let mut bytes = 0usize;
            while let Some(task) = p.ledger.tasks.pop() {
                if p.ledger.wants.remove(&task.cid).is_none() {
                    continue; // cancelled, or answered already
                }
                bytes += task.size;
                batch.push(task.cid);
                if bytes >= TARGET_MESSAGE_SIZE || batch.len() >= 256 {
                    break;
                }
            }
            if batch.is_empty() {
                continue;
            }
            p.in_flight += 1;
            self.loads += 1;
            let writer = p.writer.clone();
            let store = self.store.clone();
            let ctl = self.ctl_tx.clone();
            let stats = self.stats.clone();
            let pending = p.ledger.tasks.iter().map(|t| t.size).sum::<usize>();
            tokio::spawn(async move {
                let blocks = tokio::task::spawn_blocking(move || {
                    batch
                        .iter()
                        .filter_map(|c| store.get(c).ok().flatten())
                        .collect::<Vec<_>>()
                })
                .await
                .unwrap_or_default();
                let bytes: usize = blocks.iter().map(|b| b.len()).sum();
                for b in &blocks {
                    stats.transfer(|| crate::Transfer::Sent {
                        cid: *b.cid(),
                        to: peer,
                        size: b.len(),
                    });
                }
                let _ = ctl.send(CoreMsg::Loaded {
                    peer,
                    blocks: blocks.len() as u64,
                    bytes: bytes as u64,
                });
                let msg = BitswapMessage {
                    blocks: blocks.into_iter().map(ReceivedBlock::Valid).collect(),
                    pending_bytes: i32::try_from(pending).unwrap_or(i32::MAX),
                    ..Default::default()
                };
                if !writer
                    .send(Outgoing {
                        msg,
                        server_bytes: bytes.max(1),
                    })
                    .await
                {
                    let _ = ctl.send(CoreMsg::Sent {
                        peer,
                        server_bytes: 1,
                    });
                }
            });
            self.schedule(peer);
        }
    }

    /// Blocks became available locally: serve the peers that want them, and the callers waiting
    /// for them.
    fn blocks_added(&mut self, cids: &[(Cid, usize)]) {
        let mut touched = Vec::new();
        for (peer, p) in self.peers.iter_mut() {
            for (cid, size) in cids {
                if let Some(w) = p.ledger.wants.get(cid).copied() {
                    if w.want_type == WantType::Have && *size > WANT_HAVE_REPLACE_SIZE {
                        p.ledger.wants.remove(cid);
                        p.writer.try_send(Outgoing {
                            msg: BitswapMessage {
                                presences: vec![(*cid, Presence::Have)],
                                ..Default::default()
                            },
                            server_bytes: 0,
                        });
                        continue;
                    }
                    self.seq += 1;
                    p.ledger.tasks.push(Task {
                        priority: w.priority,
                        seq: Reverse(self.seq),
                        cid: *cid,
                        size: *size,
                    });
                    touched.push(*peer);
                }
            }
        }
        for peer in touched {
            self.schedule(peer);
        }
        // Someone put a block we were fetching: answer from the store.
        for (cid, _) in cids {
            if self.wants.get(cid).is_some_and(|w| !w.storing)
                && let Ok(Some(block)) = self.store.get(cid)
            {
                self.fulfil(block);
            }
        }
    }

    // ---- client ---------------------------------------------------------------------------------

    fn want(
        &mut self,
        cid: Cid,
        session: Option<u64>,
        priority: i32,
        reply: oneshot::Sender<Result<Block, BitswapError>>,
    ) {
        if let Some(w) = self.wants.get_mut(&cid) {
            w.waiters.push(reply);
            return;
        }
        if let Some(s) = session {
            self.sessions.entry(s).or_default().wants += 1;
        }
        let now = Instant::now();
        self.wants.insert(
            cid,
            Want {
                waiters: vec![reply],
                session,
                priority,
                asked: HashSet::new(),
                asked_block: None,
                haves: Vec::new(),
                dont_haves: HashSet::new(),
                slow: HashSet::new(),
                fresh: true,
                queued: false,
                created: now,
                last_broadcast: now,
                last_search: None,
                storing: false,
            },
        );
        // Sent when the core flushes, so a batch of wants shares messages.
        self.enqueue(cid);
        if self.candidates(session).is_empty() {
            self.search(cid);
        }
    }

    /// Peers to ask: the session's connected peers if it has any, else every Bitswap peer.
    fn candidates(&self, session: Option<u64>) -> Vec<PeerId> {
        let session_peers = session
            .and_then(|s| self.sessions.get(&s))
            .map(|s| &s.peers)
            .filter(|s| {
                s.iter()
                    .any(|p| self.peers.get(p).is_some_and(|p| p.bitswap))
            });
        self.peers
            .iter()
            .filter(|(id, p)| p.bitswap && session_peers.is_none_or(|s| s.contains(id)))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Peers a fresh want is announced to (want-have): every Bitswap peer while its session is
    /// discovering, else the candidates.
    fn announce_to(&self, session: Option<u64>) -> Vec<PeerId> {
        let discovering = session
            .and_then(|s| self.sessions.get(&s))
            .is_none_or(|s| s.wants <= DISCOVERY_WANTS || s.wants % DISCOVERY_EVERY == 0);
        if discovering {
            self.peers
                .iter()
                .filter(|(_, p)| p.bitswap)
                .map(|(id, _)| *id)
                .collect()
        } else {
            self.candidates(session)
        }
    }

    /// Puts a want in the wait queue for a want-block slot (once).
    fn enqueue(&mut self, cid: Cid) {
        if let Some(w) = self.wants.get_mut(&cid)
            && !w.queued
            && !w.storing
        {
            w.queued = true;
            self.waiting.push_back(cid);
        }
    }

    /// The smallest per-block time any peer has shown: the guess for a peer not measured yet, so
    /// new peers are tried as if they were as fast as the best.
    fn best_interval(&self) -> Option<Duration> {
        self.peers.values().filter_map(|p| p.interval).min()
    }

    /// The peer a want-block for this want should go to (full or not), and whether it has a free
    /// slot: the earliest expected delivery, (outstanding + 1) × time per block, among the peers
    /// that said HAVE or are candidates, leaving out those that said DONT_HAVE and, unless nobody
    /// else is left, those it timed out at.
    fn choose(&self, cid: &Cid, best: Option<Duration>) -> Option<(PeerId, bool)> {
        let w = self.wants.get(cid)?;
        let mut options: Vec<PeerId> = self.candidates(w.session);
        for p in &w.haves {
            if !options.contains(p) && self.peers.get(p).is_some_and(|p| p.bitswap) {
                options.push(*p);
            }
        }
        options.retain(|p| !w.dont_haves.contains(p));
        if options.iter().any(|p| !w.slow.contains(p)) {
            options.retain(|p| !w.slow.contains(p));
        }
        options
            .into_iter()
            .filter_map(|id| {
                let p = self.peers.get(&id)?;
                let per_block = p.interval.or(best).unwrap_or(Duration::ZERO);
                let expected = per_block * (p.asked_blocks as u32 + 1);
                // A peer that said HAVE goes before one that may not have the block at all.
                let unsure = !w.haves.contains(&id);
                Some((
                    (expected, unsure, p.asked_blocks),
                    id,
                    p.asked_blocks < p.window,
                ))
            })
            .min_by_key(|(key, _, _)| *key)
            .map(|(_, id, free)| (id, free))
    }

    /// Gives waiting wants their want-block, each to its best peer if that peer has a slot, and
    /// announces fresh wants (want-have) to the other peers. Wants whose best peer is full keep
    /// their place in the queue.
    fn assign_waiting(&mut self) {
        if self.waiting.is_empty() {
            return;
        }
        let best = self.best_interval();
        let mut kept = VecDeque::new();
        while let Some(cid) = self.waiting.pop_front() {
            let Some(w) = self.wants.get_mut(&cid) else {
                continue;
            };
            w.queued = false;
            if w.storing || w.asked_block.is_some() {
                continue;
            }
            let (session, priority, fresh) = (w.session, w.priority, w.fresh);
            // Choosing costs a pass over the candidates: skip it while every peer is full.
            let any_free = self
                .peers
                .values()
                .any(|p| p.bitswap && p.asked_blocks < p.window);
            let block_to = if any_free {
                self.choose(&cid, best)
                    .and_then(|(p, free)| free.then_some(p))
            } else {
                None
            };
            if fresh {
                let targets = self.announce_to(session);
                for peer in &targets {
                    if Some(*peer) != block_to {
                        self.outbox
                            .entry(*peer)
                            .or_default()
                            .push(WantEntry::have(cid, priority));
                    }
                }
                if let Some(w) = self.wants.get_mut(&cid) {
                    w.asked.extend(targets);
                    w.fresh = false;
                    w.last_broadcast = Instant::now();
                }
            }
            match block_to {
                Some(peer) => self.ask_block(cid, peer),
                None => {
                    if let Some(w) = self.wants.get_mut(&cid) {
                        w.queued = true;
                    }
                    kept.push_back(cid);
                }
            }
        }
        self.waiting = kept;
    }

    fn presence(&mut self, peer: PeerId, cid: Cid, presence: Presence) {
        let Some(w) = self.wants.get_mut(&cid) else {
            return;
        };
        // Until a peer has delivered a block, how fast it answers presence is the best guess of
        // its latency: it sets the first want-block timeouts (a stalled peer's included) in
        // round-trip times rather than the `rebroadcast_interval` fallback.
        if let Some(p) = self.peers.get_mut(&peer)
            && p.latency.is_none()
        {
            p.latency = Some(w.last_broadcast.elapsed());
        }
        match presence {
            Presence::Have => {
                if !w.haves.contains(&peer) {
                    w.haves.push(peer);
                }
                w.dont_haves.remove(&peer);
                let unasked = w.asked_block.is_none() && !w.storing;
                if let Some(s) = w.session.and_then(|s| self.sessions.get_mut(&s)) {
                    s.peers.insert(peer);
                }
                if unasked {
                    self.enqueue(cid);
                }
            }
            Presence::DontHave => {
                w.dont_haves.insert(peer);
                w.haves.retain(|p| *p != peer);
                if w.asked_block.is_some_and(|(p, _)| p == peer) {
                    self.release(&cid);
                    self.enqueue(cid);
                }
                let all_said_no = self.wants.get(&cid).is_some_and(|w| {
                    self.peers
                        .iter()
                        .filter(|(_, p)| p.bitswap)
                        .all(|(id, _)| w.dont_haves.contains(id))
                });
                if all_said_no {
                    self.search(cid);
                }
            }
        }
    }

    /// Sends the want-block to `peer`, taking one of its slots.
    fn ask_block(&mut self, cid: Cid, peer: PeerId) {
        let Some(w) = self.wants.get_mut(&cid) else {
            return;
        };
        let now = Instant::now();
        w.asked_block = Some((peer, now));
        w.asked.insert(peer);
        self.outbox
            .entry(peer)
            .or_default()
            .push(WantEntry::block(cid, w.priority, true));
        if let Some(p) = self.peers.get_mut(&peer) {
            if p.asked_blocks == 0 {
                p.mark = Some(now);
            }
            p.asked_blocks += 1;
        }
    }

    /// Ends the want's outstanding want-block, if any, freeing the peer's slot; returns the peer
    /// and when it was asked.
    fn release(&mut self, cid: &Cid) -> Option<(PeerId, Instant)> {
        let (peer, at) = self.wants.get_mut(cid)?.asked_block.take()?;
        if let Some(p) = self.peers.get_mut(&peer) {
            p.asked_blocks = p.asked_blocks.saturating_sub(1);
            if p.asked_blocks == 0 {
                p.mark = None;
            }
        }
        Some((peer, at))
    }

    /// Looks for providers of `cid` and dials them; a connected provider gets the wantlist.
    fn search(&mut self, cid: Cid) {
        let Some(w) = self.wants.get_mut(&cid) else {
            return;
        };
        if self.searches.len() >= MAX_SEARCHES || self.searches.contains(&cid) {
            return;
        }
        w.last_search = Some(Instant::now());
        self.searches.insert(cid);
        self.stats.provider_searches.inc();
        let routing = self.routing.clone();
        let ctl = self.ctl_tx.clone();
        let connected: HashSet<PeerId> = self.peers.keys().copied().collect();
        let limit = self.config.max_providers;
        let cancel = self.cancel.clone();
        tokio::spawn(async move {
            let work = async {
                let mut providers = routing.find_providers(cid, limit);
                let mut dials = futures::stream::FuturesUnordered::new();
                loop {
                    tokio::select! {
                        p = providers.next() => match p {
                            Some(peer) if !connected.contains(&peer) => {
                                dials.push(routing.connect(peer));
                            }
                            Some(_) => {}
                            None => break,
                        },
                        Some(_) = dials.next(), if !dials.is_empty() => {}
                    }
                }
                while dials.next().await.is_some() {}
            };
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = work => {}
            }
            let _ = ctl.send(CoreMsg::SearchDone(cid));
        });
    }

    fn stored(&mut self, blocks: Vec<Block>, result: Result<(), String>) {
        if let Err(e) = &result {
            tracing::warn!(error = %e, "bitswap: storing received blocks failed");
        }
        let mut added = Vec::new();
        for block in blocks {
            match &result {
                Ok(()) => {
                    added.push((*block.cid(), block.len()));
                    self.fulfil(block);
                }
                Err(e) => {
                    self.release(block.cid());
                    if let Some(w) = self.wants.remove(block.cid()) {
                        for tx in w.waiters {
                            let _ = tx.send(Err(BitswapError::Store(e.clone())));
                        }
                    }
                }
            }
        }
        // Peers that asked us for these blocks get them now.
        self.blocks_added(&added);
    }

    fn fulfil(&mut self, block: Block) {
        let cid = *block.cid();
        self.release(&cid);
        let Some(w) = self.wants.remove(&cid) else {
            return;
        };
        for tx in w.waiters {
            let _ = tx.send(Ok(block.clone()));
        }
        for peer in w.asked {
            self.outbox
                .entry(peer)
                .or_default()
                .push(WantEntry::cancel(cid));
        }
        self.remember(cid);
    }

    fn remember(&mut self, cid: Cid) {
        let (order, set) = &mut self.recent;
        if set.insert(cid) {
            order.push_back(cid);
            if order.len() > RECENT_CIDS
                && let Some(old) = order.pop_front()
            {
                set.remove(&old);
            }
        }
    }

    /// How long a want-block may wait on `peer`: three times its observed latency, or for a peer
    /// not measured yet the best latency any peer showed, within `min_want_timeout` and
    /// `rebroadcast_interval` (the wait when nothing was measured yet).
    fn want_timeout(&self, peer: &PeerId, best_latency: Option<Duration>) -> Duration {
        let (min, max) = (
            self.config.min_want_timeout,
            self.config
                .rebroadcast_interval
                .max(self.config.min_want_timeout),
        );
        match self
            .peers
            .get(peer)
            .and_then(|p| p.latency)
            .or(best_latency)
        {
            Some(l) => (l * TIMEOUT_FACTOR).clamp(min, max),
            None => max,
        }
    }

    fn tick(&mut self) {
        let now = Instant::now();
        let best_latency = self.peers.values().filter_map(|p| p.latency).min();
        let timeouts: HashMap<PeerId, Duration> = self
            .peers
            .keys()
            .map(|id| (*id, self.want_timeout(id, best_latency)))
            .collect();
        let mut cancelled = Vec::new();
        let mut timed_out = Vec::new();
        let mut reannounce = Vec::new();
        let mut to_search = Vec::new();
        for (cid, w) in self.wants.iter_mut() {
            w.waiters.retain(|tx| !tx.is_closed());
            if w.waiters.is_empty() && !w.storing {
                cancelled.push(*cid);
                continue;
            }
            if w.storing {
                continue;
            }
            if let Some((peer, at)) = w.asked_block {
                let waited = now.duration_since(at);
                if waited > timeouts.get(&peer).copied().unwrap_or_default() {
                    timed_out.push((*cid, peer, waited));
                }
            } else if now.duration_since(w.last_broadcast) > self.config.rebroadcast_interval {
                // Waiting with nobody able to take it for a while: ask everyone again.
                reannounce.push(*cid);
            }
            let searched_recently = w
                .last_search
                .is_some_and(|t| now.duration_since(t) < self.config.rebroadcast_interval * 2);
            // A want merely waiting for a slot at a peer that has the block needs no search.
            if w.asked_block.is_none()
                && w.haves.is_empty()
                && !searched_recently
                && now.duration_since(w.created) >= self.config.provider_search_delay
            {
                to_search.push(*cid);
            }
        }
        for cid in cancelled {
            self.release(&cid);
            if let Some(w) = self.wants.remove(&cid) {
                for peer in w.asked {
                    self.outbox
                        .entry(peer)
                        .or_default()
                        .push(WantEntry::cancel(cid));
                }
            }
        }
        for (cid, peer, waited) in timed_out {
            // The peer is slow or silent: cancel there, count it as at least that slow (so it
            // gets wants again only when it is the quickest choice), shrink its window, and give
            // the want to the best other peer.
            self.release(&cid);
            self.stats.wants_rerouted.inc();
            tracing::debug!(%peer, %cid, ?waited, "bitswap: want-block timed out; moving it");
            if let Some(p) = self.peers.get_mut(&peer) {
                p.window = (p.window / 2).max(1);
                // Doubled on each timeout, so a stalled peer is tried ever more rarely; a
                // delivery brings it back down through the average.
                p.interval =
                    Some((p.interval.map_or(waited, |i| i.max(waited)) * 2).min(MAX_PENALTY));
            }
            if let Some(w) = self.wants.get_mut(&cid) {
                w.slow.insert(peer);
                w.asked.remove(&peer);
            }
            self.outbox
                .entry(peer)
                .or_default()
                .push(WantEntry::cancel(cid));
            self.enqueue(cid);
        }
        for cid in reannounce {
            if let Some(w) = self.wants.get_mut(&cid) {
                w.fresh = true;
                w.slow.clear();
            }
            self.enqueue(cid);
        }
        for cid in to_search {
            self.search(cid);
        }
    }

    fn flush_outbox(&mut self) {
        for (peer, wants) in self.outbox.drain() {
            if let Some(p) = self.peers.get(&peer)
                && p.bitswap
            {
                p.writer.try_send(Outgoing {
                    msg: BitswapMessage {
                        wants,
                        ..Default::default()
                    },
                    server_bytes: 0,
                });
            }
        }
    }
}

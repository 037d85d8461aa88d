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
//! Client (boxo's session manager, simplified): a want goes as want-block to the best-ranked peer
//! (lowest latency seen) and as want-have to the others; a HAVE gets a want-block when none is
//! outstanding; when every peer says DONT_HAVE, or after [`Config::provider_search_delay`], the
//! providers found through [`Routing`] are dialled and get the wantlist on connection. A received
//! block is already hashed (its CID is rebuilt from the prefix); if nobody wanted it, or it could
//! not be hashed, the peer gets a strike, and is disconnected at [`Config::max_strikes`].

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
    /// A waiter for this CID went away (its future was dropped): if nobody else waits, the
    /// want ends now, with cancels to the peers asked, as Kubo's wantlist drops a want the
    /// moment its context is cancelled (the tick would otherwise notice within 200 ms).
    WaiterGone(Cid),
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
    /// Smoothed time from want-block to block.
    latency: Option<Duration>,
    strikes: u32,
    in_flight: usize,
    queued: bool,
}

struct Want {
    waiters: Vec<oneshot::Sender<Result<Block, BitswapError>>>,
    session: Option<u64>,
    priority: i32,
    asked: HashSet<PeerId>,
    asked_block: Option<(PeerId, Instant)>,
    haves: Vec<PeerId>,
    dont_haves: HashSet<PeerId>,
    created: Instant,
    last_search: Option<Instant>,
    storing: bool,
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
    sessions: HashMap<u64, HashSet<PeerId>>,
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
            CoreMsg::WaiterGone(cid) => {
                if let Some(w) = self.wants.get_mut(&cid) {
                    w.waiters.retain(|tx| !tx.is_closed());
                    if w.waiters.is_empty() && !w.storing {
                        self.end_want(cid);
                    }
                }
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
                // A waiter dropped just before this query may have its WaiterGone still queued
                // behind it: the answer counts only wants someone still waits for.
                let _ = tx.send(
                    self.wants
                        .iter()
                        .filter(|(_, w)| w.storing || w.waiters.iter().any(|t| !t.is_closed()))
                        .map(|(cid, _)| *cid)
                        .collect(),
                );
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
        self.peers.entry(peer).or_insert_with(|| Peer {
            writer: PeerWriter::spawn(peer, control, ctl, cancel),
            bitswap: true,
            ledger: Ledger::default(),
            latency: None,
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

    /// A peer is gone or unreachable: its want-blocks go at once to the next peer that said HAVE,
    /// or to everyone (and to a provider search when nobody is left).
    fn forget_peer_wants(&mut self, peer: PeerId) {
        let mut orphaned = Vec::new();
        for (cid, w) in self.wants.iter_mut() {
            w.haves.retain(|p| *p != peer);
            w.asked.remove(&peer);
            if w.asked_block.is_some_and(|(p, _)| p == peer) {
                w.asked_block = None;
                if !w.storing {
                    orphaned.push((*cid, w.haves.first().copied()));
                }
            }
        }
        for (cid, next) in orphaned {
            match next {
                Some(p) => self.ask_block(cid, p),
                None => {
                    let session = self.wants.get(&cid).and_then(|w| w.session);
                    if self.candidates(session).is_empty() {
                        self.search(cid);
                    } else {
                        self.broadcast(cid);
                    }
                }
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
                            if let Some((asked, at)) = w.asked_block
                                && asked == peer
                            {
                                let sample = at.elapsed();
                                if let Some(p) = self.peers.get_mut(&peer) {
                                    p.latency = Some(match p.latency {
                                        Some(l) => (l * 7 + sample * 3) / 10,
                                        None => sample,
                                    });
                                }
                            }
                            if let Some(s) = w.session.and_then(|s| self.sessions.get_mut(&s)) {
                                s.insert(peer);
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
            self.sessions.entry(s).or_default();
        }
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
                created: Instant::now(),
                last_search: None,
                storing: false,
            },
        );
        self.broadcast(cid);
        if self.candidates(session).is_empty() {
            self.search(cid);
        }
    }

    /// Peers to ask: the session's connected peers if it has any, else every Bitswap peer; best
    /// (lowest latency) first.
    fn candidates(&self, session: Option<u64>) -> Vec<PeerId> {
        let session_peers = session.and_then(|s| self.sessions.get(&s)).filter(|s| {
            s.iter()
                .any(|p| self.peers.get(p).is_some_and(|p| p.bitswap))
        });
        let mut c: Vec<(PeerId, Duration)> = self
            .peers
            .iter()
            .filter(|(id, p)| p.bitswap && session_peers.is_none_or(|s| s.contains(id)))
            .map(|(id, p)| (*id, p.latency.unwrap_or(Duration::from_secs(3600))))
            .collect();
        c.sort_by_key(|(_, l)| *l);
        c.into_iter().map(|(id, _)| id).collect()
    }

    /// Want-block to the best candidate, want-have to the rest.
    fn broadcast(&mut self, cid: Cid) {
        let Some(w) = self.wants.get(&cid) else {
            return;
        };
        let candidates = self.candidates(w.session);
        let need_block = w.asked_block.is_none();
        let priority = w.priority;
        let mut block_to = None;
        for (i, peer) in candidates.iter().enumerate() {
            let entry = if i == 0 && need_block {
                block_to = Some(*peer);
                WantEntry::block(cid, priority, true)
            } else {
                WantEntry::have(cid, priority)
            };
            self.outbox.entry(*peer).or_default().push(entry);
        }
        if let Some(w) = self.wants.get_mut(&cid) {
            w.asked.extend(candidates);
            if let Some(p) = block_to {
                w.asked_block = Some((p, Instant::now()));
            }
        }
    }

    fn presence(&mut self, peer: PeerId, cid: Cid, presence: Presence) {
        let Some(w) = self.wants.get_mut(&cid) else {
            return;
        };
        match presence {
            Presence::Have => {
                if !w.haves.contains(&peer) {
                    w.haves.push(peer);
                }
                w.dont_haves.remove(&peer);
                if w.asked_block.is_none() && !w.storing {
                    self.ask_block(cid, peer);
                }
            }
            Presence::DontHave => {
                w.dont_haves.insert(peer);
                w.haves.retain(|p| *p != peer);
                if w.asked_block.is_some_and(|(p, _)| p == peer) {
                    w.asked_block = None;
                    if let Some(next) = w.haves.first().copied() {
                        self.ask_block(cid, next);
                    }
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

    fn ask_block(&mut self, cid: Cid, peer: PeerId) {
        if let Some(w) = self.wants.get_mut(&cid) {
            w.asked_block = Some((peer, Instant::now()));
            w.asked.insert(peer);
            self.outbox
                .entry(peer)
                .or_default()
                .push(WantEntry::block(cid, w.priority, true));
        }
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

    /// Ends a want nobody waits for any more: removed, and a cancel queued for every peer
    /// that was asked.
    fn end_want(&mut self, cid: Cid) {
        if let Some(w) = self.wants.remove(&cid) {
            for peer in w.asked {
                self.outbox
                    .entry(peer)
                    .or_default()
                    .push(WantEntry::cancel(cid));
            }
        }
    }

    fn tick(&mut self) {
        let now = Instant::now();
        let mut cancelled = Vec::new();
        let mut rebroadcast = Vec::new();
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
            if let Some((_, at)) = w.asked_block
                && now.duration_since(at) > self.config.rebroadcast_interval
            {
                // The chosen peer is slow or silent: ask everyone again and look for providers.
                w.asked_block = None;
                self.stats.wants_reasked.inc();
                rebroadcast.push(*cid);
            }
            let searched_recently = w
                .last_search
                .is_some_and(|t| now.duration_since(t) < self.config.rebroadcast_interval * 2);
            if w.asked_block.is_none()
                && !searched_recently
                && now.duration_since(w.created) >= self.config.provider_search_delay
            {
                to_search.push(*cid);
            }
        }
        for cid in cancelled {
            self.end_want(cid);
        }
        for cid in rebroadcast {
            let next = self.wants.get(&cid).and_then(|w| w.haves.first().copied());
            match next {
                Some(peer) => self.ask_block(cid, peer),
                None => self.broadcast(cid),
            }
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

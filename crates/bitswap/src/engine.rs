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
//! Client (boxo's session and session-peer managers, simplified): a new want goes as want-have to
//! the candidate peers (a session's peers: those that said HAVE or sent one of its blocks; every
//! Bitswap peer while it has none, and for its first [`DISCOVERY_WANTS`] wants and every
//! [`DISCOVERY_EVERY`]th after) and as want-block to one of the session's peers, chosen for the
//! earliest expected delivery: (want-blocks outstanding there + 1) x the time that peer takes per
//! block. Peers that said HAVE for the CID go first. Each peer takes at most a window of our
//! want-blocks at once ([`Config::peer_window_start`], one more per block it delivers up to
//! [`Config::peer_window_max`], halved when one is late and another peer could take it); a want
//! no peer has a free slot
//! for (or only a peer [`SLOWER_THAN_FULL`] times slower than a full one) waits in a queue,
//! already announced. So a DAG's want-blocks spread over every peer that has its blocks, in
//! proportion to how fast each delivers.
//!
//! A want-block unanswered for [`TIMEOUT_FACTOR`] x the delivery the *fastest* peer's speed
//! predicts (at least [`Config::min_want_timeout`], at most [`Config::rebroadcast_interval`]) is
//! late: it is *also* sent to the best other peer, up to [`MAX_HOLDERS`] peers at once, and the
//! late peer counts as at least that slow from then on, so a slow peer cannot gate a fetch (with
//! no other peer to ask, lateness changes nothing: a lone provider keeps its window). The
//! late peer's want is not cancelled: it may still answer, and a cancel and a new want for one CID
//! in one message merge into a cancel at a boxo peer (Kubo), so cancelling and re-asking the same
//! peer would lose the want. A DONT_HAVE or a disconnect frees the peer's slot and the want goes
//! back to the queue. Every want has been sent to some peer at all times: at its creation as
//! want-have to every candidate, every [`Config::rebroadcast_interval`] again to every peer (and
//! as want-block again to a late peer that has delivered nothing for as long), and to each peer
//! that connects.
//!
//! When every peer says DONT_HAVE, or after [`Config::provider_search_delay`] with no peer saying
//! HAVE and no want-block pending in time, the providers found through [`Routing`] are dialled and
//! get the wantlist on connection. A received block is already hashed (its CID is rebuilt from
//! the prefix); if nobody wanted it, or it could not be hashed, the peer gets a strike, and is
//! disconnected at [`Config::max_strikes`].
//!
//! Each flush sends a peer at most one entry per CID (the last intent wins: a cancel followed by a
//! new want is sent as the want), since boxo merges entries for one CID and lets a cancel win.

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
/// A want-block is late after this many times the delivery its peer's speed predicts.
pub(crate) const TIMEOUT_FACTOR: u32 = 4;
/// At most this many peers hold a want-block for one CID at once (the first, and the peers it was
/// also sent to when they were late): bounds the duplicates a slow peer can cause.
pub(crate) const MAX_HOLDERS: usize = 3;
/// A session's first wants go as want-have to every connected peer, so it learns which have its
/// blocks (boxo's sessions broadcast until they have peers) ...
const DISCOVERY_WANTS: u64 = 16;
/// ... and one want in this many after that, so peers that connect later (providers found in the
/// DHT) join too, at a small share of a broadcast's cost.
const DISCOVERY_EVERY: u64 = 16;
/// A want waits for a slot at a full peer rather than go to a free one whose delivery is expected
/// more than this many times later.
const SLOWER_THAN_FULL: u32 = 2;
/// The most a slow peer's time per block is taken to be.
const MAX_PER_BLOCK: Duration = Duration::from_secs(10);

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
    /// Smoothed time the peer takes per block: a delivery's wait divided by the want-blocks
    /// that were outstanding there when it was asked, plus one. Raised on a timeout.
    per_block: Option<Duration>,
    /// Our want-blocks outstanding at this peer.
    asked_blocks: usize,
    /// How many may be outstanding.
    window: usize,
    /// When it last delivered a block we wanted.
    last_delivery: Option<Instant>,
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
    /// Peers holding a want-block for it.
    holders: Vec<Holder>,
    haves: Vec<PeerId>,
    dont_haves: HashSet<PeerId>,
    /// Peers whose want-block for it was late: not chosen again until the next rebroadcast.
    late: HashSet<PeerId>,
    /// In `Core::waiting`.
    queued: bool,
    /// Sent as want-have to the candidates (or everyone) at least once.
    announced: bool,
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

/// A want-block outstanding at a peer.
#[derive(Debug, Clone, Copy)]
struct Holder {
    peer: PeerId,
    /// When it was sent.
    at: Instant,
    /// Our want-blocks that were outstanding at the peer before it.
    ahead: usize,
    /// It timed out, and the want was offered to another peer.
    late: bool,
}

impl Want {
    /// Whether the want should get a want-block at one more peer: none is outstanding in time.
    fn needs_holder(&self) -> bool {
        !self.storing && self.holders.len() < MAX_HOLDERS && self.holders.iter().all(|h| h.late)
    }
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
    recent: (VecDeque<Cid>, HashSet<Cid>),
    ready: VecDeque<PeerId>,
    loads: usize,
    searches: HashSet<Cid>,
    seq: u64,
    /// Entries to send at the next flush, one per CID and peer.
    outbox: HashMap<PeerId, HashMap<Cid, WantEntry>>,
    /// Wants that need a want-block holder, in the order made (for a DAG fetch, priority order).
    waiting: VecDeque<Cid>,
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
            waiting: VecDeque::new(),
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
        let window = self.config.peer_window_start.max(1);
        self.peers.entry(peer).or_insert_with(|| Peer {
            writer: PeerWriter::spawn(peer, control, ctl, cancel),
            bitswap: true,
            ledger: Ledger::default(),
            per_block: None,
            asked_blocks: 0,
            window,
            last_delivery: None,
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

    /// A peer is gone or unreachable: its want-blocks go back to the queue at once (to another
    /// peer that said HAVE, or to the session's other peers), or to a provider search when nobody
    /// is left.
    fn forget_peer_wants(&mut self, peer: PeerId) {
        let mut orphaned = Vec::new();
        for (cid, w) in self.wants.iter_mut() {
            w.haves.retain(|p| *p != peer);
            w.asked.remove(&peer);
            let before = w.holders.len();
            w.holders.retain(|h| h.peer != peer);
            if w.holders.len() != before && w.needs_holder() {
                orphaned.push(*cid);
            }
        }
        if let Some(p) = self.peers.get_mut(&peer) {
            p.asked_blocks = 0;
        }
        for cid in orphaned {
            let session = self.wants.get(&cid).and_then(|w| w.session);
            if self.candidates(session).is_empty() {
                self.search(cid);
            } else {
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
                            // Every holder's slot is free now, whoever answered; the peer
                            // that did gives a sample of its speed and a larger window.
                            let max_window = self.config.peer_window_max.max(1);
                            for h in w.holders.drain(..) {
                                let Some(p) = self.peers.get_mut(&h.peer) else {
                                    continue;
                                };
                                p.asked_blocks = p.asked_blocks.saturating_sub(1);
                                if h.peer == peer {
                                    let sample = h.at.elapsed() / (h.ahead as u32 + 1);
                                    p.per_block = Some(match p.per_block {
                                        Some(t) => (t * 7 + sample * 3) / 10,
                                        None => sample,
                                    });
                                    p.window = (p.window + 1).min(max_window);
                                    p.last_delivery = Some(Instant::now());
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
        // A session's first wants, and one in DISCOVERY_EVERY after, are announced to every
        // peer, so the peers that have its blocks join it (a peer whose HAVE for the root comes
        // after the root itself would otherwise never be asked).
        let discovering = match session {
            Some(s) => {
                let state = self.sessions.entry(s).or_default();
                state.wants += 1;
                state.wants <= DISCOVERY_WANTS || state.wants.is_multiple_of(DISCOVERY_EVERY)
            }
            None => true,
        };
        let now = Instant::now();
        self.wants.insert(
            cid,
            Want {
                waiters: vec![reply],
                session,
                priority,
                asked: HashSet::new(),
                holders: Vec::new(),
                haves: Vec::new(),
                dont_haves: HashSet::new(),
                late: HashSet::new(),
                queued: false,
                announced: false,
                created: now,
                last_broadcast: now,
                last_search: None,
                storing: false,
            },
        );
        let candidates = self.candidates(session);
        if candidates.is_empty() {
            self.search(cid);
            return;
        }
        // A discovering want goes as want-have to every peer now; the want-block (which replaces
        // one of these entries) is chosen when the core flushes, so a batch of wants spreads over
        // the peers' windows. Other wants go as want-block only, to a session peer (which has
        // sent or announced the session's blocks); they are announced only if they must wait.
        if discovering {
            let everyone = self.bitswap_peers();
            self.announce(cid, &everyone);
        }
        self.enqueue(cid);
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

    /// Every connected peer that speaks Bitswap.
    fn bitswap_peers(&self) -> Vec<PeerId> {
        self.peers
            .iter()
            .filter(|(_, p)| p.bitswap)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Sends a want-have for `cid` to `peers`, except those holding its want-block or that said
    /// DONT_HAVE.
    fn announce(&mut self, cid: Cid, peers: &[PeerId]) {
        let Some(w) = self.wants.get_mut(&cid) else {
            return;
        };
        w.last_broadcast = Instant::now();
        w.announced = true;
        let priority = w.priority;
        for peer in peers {
            if w.dont_haves.contains(peer) || w.holders.iter().any(|h| h.peer == *peer) {
                continue;
            }
            w.asked.insert(*peer);
            push_entry(&mut self.outbox, *peer, WantEntry::have(cid, priority));
        }
    }

    /// Puts a want in the queue for a want-block holder (once).
    fn enqueue(&mut self, cid: Cid) {
        if let Some(w) = self.wants.get_mut(&cid)
            && !w.queued
            && w.needs_holder()
        {
            w.queued = true;
            self.waiting.push_back(cid);
        }
    }

    /// The smallest time per block any peer has shown: the guess for a peer not measured yet, so
    /// a new peer is tried as if it were as fast as the best.
    fn best_per_block(&self) -> Option<Duration> {
        self.peers.values().filter_map(|p| p.per_block).min()
    }

    /// When a want-block sent to `peer` now would be delivered, from the peer's speed and the
    /// want-blocks outstanding there.
    fn expected(&self, p: &Peer, best: Option<Duration>) -> Duration {
        p.per_block.or(best).unwrap_or(Duration::ZERO) * (p.asked_blocks as u32 + 1)
    }

    /// The peers that could take the want's next want-block, full or not: its candidates and the
    /// peers that said HAVE, but not those that said DONT_HAVE, hold it already or were late.
    fn options(&self, cid: &Cid) -> Vec<PeerId> {
        let Some(w) = self.wants.get(cid) else {
            return Vec::new();
        };
        let mut options = self.candidates(w.session);
        for p in &w.haves {
            if !options.contains(p) && self.peers.get(p).is_some_and(|p| p.bitswap) {
                options.push(*p);
            }
        }
        options.retain(|p| {
            !w.dont_haves.contains(p)
                && !w.late.contains(p)
                && !w.holders.iter().any(|h| h.peer == *p)
        });
        options
    }

    /// Where the want's next want-block goes: among the candidates and the peers that said HAVE,
    /// leaving out those that said DONT_HAVE, hold it already or were late with it, the one with
    /// a free slot in its window whose delivery is expected first (peers that said HAVE first).
    /// `Err(true)` when some peer could take it once a slot frees, `Err(false)` when none could.
    fn choose(&self, cid: &Cid, best: Option<Duration>) -> Result<PeerId, bool> {
        let options = self.options(cid);
        let Some(w) = self.wants.get(cid) else {
            return Err(false);
        };
        if options.is_empty() {
            return Err(false);
        }
        let scored: Vec<((bool, Duration, usize), bool, PeerId)> = options
            .iter()
            .filter_map(|id| {
                let p = self.peers.get(id)?;
                let key = (
                    !w.haves.contains(id),
                    self.expected(p, best),
                    p.asked_blocks,
                );
                Some((key, p.asked_blocks < p.window, *id))
            })
            .collect();
        let soonest = scored.iter().map(|(key, _, _)| key.1).min();
        let Some((key, _, id)) = scored
            .iter()
            .filter(|(_, free, _)| *free)
            .min_by_key(|(key, _, _)| *key)
        else {
            return Err(!scored.is_empty());
        };
        // A peer much slower than one that is merely full is not worth it: wait for the slot.
        if soonest.is_some_and(|t| key.1 > t * SLOWER_THAN_FULL) {
            return Err(true);
        }
        Ok(*id)
    }

    /// Gives queued wants their want-block, each to its best peer with a free slot. Wants that
    /// some peer could take once a slot frees keep their place; the others leave the queue (they
    /// have been announced, and the rebroadcast and provider search take them from there).
    fn assign_waiting(&mut self) {
        if self.waiting.is_empty() {
            return;
        }
        let best = self.best_per_block();
        let mut kept = VecDeque::new();
        while let Some(cid) = self.waiting.pop_front() {
            let Some(w) = self.wants.get_mut(&cid) else {
                continue;
            };
            w.queued = false;
            if !w.needs_holder() {
                continue;
            }
            // Choosing costs a pass over the candidates: skip it while every peer is full.
            let any_free = self
                .peers
                .values()
                .any(|p| p.bitswap && p.asked_blocks < p.window);
            let choice = if any_free {
                self.choose(&cid, best)
            } else {
                Err(true)
            };
            match choice {
                Ok(peer) => {
                    if self.wants.get(&cid).is_some_and(|w| !w.holders.is_empty()) {
                        self.stats.wants_rerouted.inc();
                    }
                    self.ask_block(cid, peer);
                }
                Err(some) => {
                    // Waiting, or nobody left to ask: make sure every peer that could have the
                    // block has been asked (a HAVE brings the want back here, a DONT_HAVE from
                    // all starts a provider search).
                    if self.wants.get(&cid).is_some_and(|w| !w.announced) {
                        let targets = if some {
                            let session = self.wants.get(&cid).and_then(|w| w.session);
                            self.candidates(session)
                        } else {
                            self.bitswap_peers()
                        };
                        self.announce(cid, &targets);
                    }
                    if some {
                        if let Some(w) = self.wants.get_mut(&cid) {
                            w.queued = true;
                        }
                        kept.push_back(cid);
                    }
                }
            }
        }
        self.waiting = kept;
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
                if let Some(s) = w.session.and_then(|s| self.sessions.get_mut(&s)) {
                    s.peers.insert(peer);
                }
                self.enqueue(cid);
            }
            Presence::DontHave => {
                w.dont_haves.insert(peer);
                w.haves.retain(|p| *p != peer);
                if let Some(i) = w.holders.iter().position(|h| h.peer == peer) {
                    w.holders.swap_remove(i);
                    if let Some(p) = self.peers.get_mut(&peer) {
                        p.asked_blocks = p.asked_blocks.saturating_sub(1);
                    }
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
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        w.holders.push(Holder {
            peer,
            at: Instant::now(),
            ahead: p.asked_blocks,
            late: false,
        });
        p.asked_blocks += 1;
        w.asked.insert(peer);
        push_entry(
            &mut self.outbox,
            peer,
            WantEntry::block(cid, w.priority, true),
        );
    }

    /// Ends the want's outstanding want-blocks, freeing the peers' slots.
    fn release(&mut self, cid: &Cid) {
        let Some(w) = self.wants.get_mut(cid) else {
            return;
        };
        for h in w.holders.drain(..) {
            if let Some(p) = self.peers.get_mut(&h.peer) {
                p.asked_blocks = p.asked_blocks.saturating_sub(1);
            }
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
                    self.release(block.cid());
                    if let Some(w) = self.wants.remove(block.cid()) {
                        for tx in w.waiters {
                            let _ = tx.send(Err(BitswapError::Store(e.clone())));
                        }
                        for peer in w.asked {
                            push_entry(&mut self.outbox, peer, WantEntry::cancel(*block.cid()));
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
            push_entry(&mut self.outbox, peer, WantEntry::cancel(cid));
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

    /// How long a want-block may wait at a peer: [`TIMEOUT_FACTOR`] x the delivery the fastest
    /// peer's speed predicts with the want-blocks that were ahead of it (so a peer much slower
    /// than the best is late, and its wants go to faster peers too, rather than gate the fetch),
    /// within `min_want_timeout` (the wait while no peer was measured yet) and
    /// `rebroadcast_interval`.
    fn want_timeout(config: &Config, h: &Holder, best: Option<Duration>) -> Duration {
        let min = config.min_want_timeout;
        let max = config.rebroadcast_interval.max(min);
        match best {
            Some(t) => (t * (h.ahead as u32 + 1) * TIMEOUT_FACTOR).clamp(min, max),
            None => min,
        }
    }

    /// Ends a want nobody waits for any more: its peers' slots freed, it removed, and a cancel
    /// queued for every peer that was asked.
    fn end_want(&mut self, cid: Cid) {
        self.release(&cid);
        if let Some(w) = self.wants.remove(&cid) {
            for peer in w.asked {
                push_entry(&mut self.outbox, peer, WantEntry::cancel(cid));
            }
        }
    }

    fn tick(&mut self) {
        let now = Instant::now();
        let best = self.best_per_block();
        let mut cancelled = Vec::new();
        let mut late = Vec::new();
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
            for h in w.holders.iter().filter(|h| !h.late) {
                let waited = now.duration_since(h.at);
                if waited > Self::want_timeout(&self.config, h, best) {
                    late.push((*cid, h.peer, waited, h.ahead));
                }
            }
            if now.duration_since(w.last_broadcast) > self.config.rebroadcast_interval {
                rebroadcast.push(*cid);
            }
            let searched_recently = w
                .last_search
                .is_some_and(|t| now.duration_since(t) < self.config.rebroadcast_interval * 2);
            // A want that some peer said it has, that waits for a slot at a peer that could take
            // it, whose want-block is still in time, or is held by a peer that is delivering our
            // blocks (a busy provider, not a missing one), needs no search.
            let interval = self.config.rebroadcast_interval;
            let delivering = |peer: &PeerId| {
                self.peers.get(peer).is_some_and(|p| {
                    p.last_delivery
                        .is_some_and(|t| now.duration_since(t) < interval)
                })
            };
            if w.haves.is_empty()
                && !w.queued
                && w.holders.iter().all(|h| h.late && !delivering(&h.peer))
                && !searched_recently
                && now.duration_since(w.created) >= self.config.provider_search_delay
            {
                to_search.push(*cid);
            }
        }
        for cid in cancelled {
            self.end_want(cid);
        }
        // A peer is penalised once per tick, by its worst late want-block, and only when another
        // peer could take the want: with nobody else to ask, lateness changes nothing (a lone
        // provider, e.g. a Kubo node sending in bursts, keeps its full window).
        let mut penalties: HashMap<PeerId, Duration> = HashMap::new();
        for (cid, peer, waited, ahead) in late {
            // The peer is slow or silent: leave its want-block there (it may still answer; a
            // cancel would only race with it) and offer the want to the best other peer.
            if let Some(w) = self.wants.get_mut(&cid) {
                for h in w.holders.iter_mut().filter(|h| h.peer == peer) {
                    h.late = true;
                }
                w.late.insert(peer);
            }
            if self.options(&cid).is_empty() {
                continue;
            }
            tracing::debug!(%peer, %cid, ?waited, "bitswap: want-block late; asking another peer");
            let slow = waited / (ahead as u32 + 1);
            let worst = penalties.entry(peer).or_default();
            *worst = (*worst).max(slow);
            self.enqueue(cid);
        }
        for (peer, slow) in penalties {
            // Counted as at least that slow, so it gets wants again only when it is the quickest
            // choice; deliveries bring the average back down.
            if let Some(p) = self.peers.get_mut(&peer) {
                p.window = (p.window / 2).max(1);
                p.per_block = Some(p.per_block.map_or(slow, |t| t.max(slow)).min(MAX_PER_BLOCK));
            }
        }
        for cid in rebroadcast {
            // Ask every peer again (one may have got the block since, or dropped our want), and
            // give peers that were late another chance.
            let everyone = self.bitswap_peers();
            self.announce(cid, &everyone);
            let interval = self.config.rebroadcast_interval;
            if let Some(w) = self.wants.get_mut(&cid) {
                w.late.clear();
                let priority = w.priority;
                // A late peer that has delivered nothing for as long may have dropped our want (a
                // full ledger): ask it again. One that is delivering is working through our wants,
                // and asking again could make it send a block twice.
                let peers = &self.peers;
                let idle = |peer: &PeerId| {
                    peers
                        .get(peer)
                        .is_some_and(|p| p.last_delivery.is_none_or(|t| t.elapsed() > interval))
                };
                for h in w
                    .holders
                    .iter()
                    .filter(|h| h.late && h.at.elapsed() > interval && idle(&h.peer))
                {
                    self.stats.wants_rerouted.inc();
                    // A holder silent this long while its want is outstanding: a lost message
                    // or a peer that dropped our want.
                    self.stats.wants_reasked.inc();
                    push_entry(
                        &mut self.outbox,
                        h.peer,
                        WantEntry::block(cid, priority, true),
                    );
                }
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
                        wants: wants.into_values().collect(),
                        ..Default::default()
                    },
                    server_bytes: 0,
                });
            }
        }
    }
}

/// Queues `entry` for `peer`, merged with what is queued for the same CID: the last intent wins
/// (a cancel replaces a want; a want replaces a cancel; a want-block replaces a want-have, but a
/// want-have does not replace a want-block). boxo merges the entries of one message by CID and
/// lets a cancel win, so a cancel and a new want for one CID must not travel together.
fn push_entry(
    outbox: &mut HashMap<PeerId, HashMap<Cid, WantEntry>>,
    peer: PeerId,
    entry: WantEntry,
) {
    use std::collections::hash_map::Entry;
    match outbox.entry(peer).or_default().entry(entry.cid) {
        Entry::Vacant(v) => {
            v.insert(entry);
        }
        Entry::Occupied(mut o) => {
            let keep = !entry.cancel
                && entry.want_type == WantType::Have
                && !o.get().cancel
                && o.get().want_type == WantType::Block;
            if !keep {
                o.insert(entry);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A distinct CID per byte: that of a raw block holding it.
    fn cid(n: u8) -> Cid {
        *Block::from_data(0x55, vec![n]).unwrap().cid()
    }

    #[test]
    fn one_entry_per_cid_and_the_last_intent_wins() {
        let peer = PeerId::random();
        let mut outbox = HashMap::new();
        let (a, b, c) = (cid(1), cid(2), cid(3));
        // A cancel then a new want: the want (boxo would let the cancel win if both went).
        push_entry(&mut outbox, peer, WantEntry::cancel(a));
        push_entry(&mut outbox, peer, WantEntry::block(a, 5, true));
        // A want-have then a want-block: the want-block; a later want-have does not undo it.
        push_entry(&mut outbox, peer, WantEntry::have(b, 1));
        push_entry(&mut outbox, peer, WantEntry::block(b, 1, true));
        push_entry(&mut outbox, peer, WantEntry::have(b, 1));
        // A want then a cancel: the cancel.
        push_entry(&mut outbox, peer, WantEntry::block(c, 1, true));
        push_entry(&mut outbox, peer, WantEntry::cancel(c));
        let sent = &outbox[&peer];
        assert_eq!(sent.len(), 3);
        assert_eq!(sent[&a], WantEntry::block(a, 5, true));
        assert_eq!(sent[&b], WantEntry::block(b, 1, true));
        assert_eq!(sent[&c], WantEntry::cancel(c));
    }
}

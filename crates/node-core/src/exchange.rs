//! Content exchange glue: the node's blockstore and DHT behind `cairn-bitswap`'s two traits, and
//! the provider queue that announces content in the DHT and reprovides it.
//!
//! Providing follows Kubo: what is added through the node is announced in batches (roots before
//! other blocks), everything the strategy selects is announced again every `Provide.DHT.Interval`
//! (22 h), and `Provide.Strategy` selects `all` blocks, the `pinned` ones, or pin `roots`. Kubo
//! 0.22's `Reprovider.Strategy` / `Reprovider.Interval` are read when the `Provide` keys are absent.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cairn_bitswap::{BlockStore, BoxError, Routing};
use cairn_blockstore::{Block, Blockstore, Cid, PinFilter};
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use libp2p::PeerId;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::error::NodeError;
use crate::event_loop::Command;
use crate::node::StoreSlot;

/// The blockstore as Bitswap sees it; blocks Bitswap stores are reported as
/// [`crate::NodeEvent::BlockAdded`].
pub(crate) struct NodeStore(pub StoreSlot, pub crate::events::Emitter);

impl NodeStore {
    fn store(&self) -> Result<Blockstore, BoxError> {
        self.0
            .read()
            .clone()
            .ok_or_else(|| "the node has stopped".into())
    }
}

impl BlockStore for NodeStore {
    fn get(&self, cid: &Cid) -> Result<Option<Block>, BoxError> {
        Ok(self.store()?.get(cid)?)
    }

    fn size(&self, cid: &Cid) -> Result<Option<usize>, BoxError> {
        Ok(self.store()?.size(cid)?)
    }

    fn put_many(&self, blocks: Vec<Block>) -> Result<(), BoxError> {
        let added: Vec<(Cid, usize)> = blocks.iter().map(|b| (*b.cid(), b.len())).collect();
        self.store()?.put_many(blocks)?;
        for (cid, size) in added {
            self.1
                .emit_with(|| crate::types::NodeEvent::BlockAdded { cid, size });
        }
        Ok(())
    }
}

/// The DHT and the swarm as Bitswap sees them, through the event loop's commands.
pub(crate) struct NodeRouting(pub mpsc::Sender<Command>);

impl Routing for NodeRouting {
    fn find_providers(&self, cid: Cid, limit: usize) -> BoxStream<'static, PeerId> {
        let commands = self.0.clone();
        let (sender, rx) = mpsc::channel(limit.clamp(1, 64));
        let started = commands.try_send(Command::FindProviders {
            cid,
            limit: limit.max(1),
            sender,
        });
        if started.is_err() {
            return futures::stream::empty().boxed();
        }
        crate::types::ReceiverStream::new(rx)
            .then(move |p| {
                let commands = commands.clone();
                async move {
                    // The DHT learns where the provider is, so the dial below finds it.
                    for addr in p.addresses {
                        let _ = commands
                            .send(Command::AddPeerAddress {
                                peer: p.peer_id,
                                addr,
                            })
                            .await;
                    }
                    p.peer_id
                }
            })
            .boxed()
    }

    fn connect(&self, peer: PeerId) -> BoxFuture<'static, Result<(), BoxError>> {
        let commands = self.0.clone();
        Box::pin(async move {
            let (reply, rx) = oneshot::channel();
            commands
                .send(Command::DialPeer { peer, reply })
                .await
                .map_err(|_| "the node has stopped")?;
            match tokio::time::timeout(crate::node::DIAL_TIMEOUT, rx).await {
                Ok(Ok(Ok(()))) => Ok(()),
                Ok(Ok(Err(e))) => Err(e.into()),
                Ok(Err(_)) => Err("the node has stopped".into()),
                Err(_) => Err("dial timed out".into()),
            }
        })
    }

    fn disconnect(&self, peer: PeerId) {
        let (reply, _) = oneshot::channel();
        let _ = self.0.try_send(Command::Disconnect { peer, reply });
    }
}

/// What the reprovider announces (`Provide.Strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ProvideStrategy {
    /// Every block in the store (Kubo's default).
    #[default]
    All,
    /// Every block of every pinned DAG.
    Pinned,
    /// The roots of the pins only.
    Roots,
    /// The blocks of the MFS tree (`files/*`) that are stored here (Kubo's `mfs`).
    Mfs,
    /// Every block of every pinned DAG, and the MFS tree's (Kubo's `pinned+mfs`).
    PinnedMfs,
}

impl ProvideStrategy {
    /// Parses Kubo's names (`all`, `pinned`, `roots`, `mfs`, `pinned+mfs`; `flat` is taken as
    /// `all`).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "" | "all" | "flat" => Some(ProvideStrategy::All),
            "pinned" => Some(ProvideStrategy::Pinned),
            "roots" => Some(ProvideStrategy::Roots),
            "mfs" => Some(ProvideStrategy::Mfs),
            "pinned+mfs" | "mfs+pinned" => Some(ProvideStrategy::PinnedMfs),
            _ => None,
        }
    }
}

/// The stored blocks of the MFS tree (none before the first `files` command).
fn mfs_blocks(store: &cairn_blockstore::Blockstore) -> Result<Vec<Cid>, NodeError> {
    Ok(match store.root(crate::mfs::FILES_ROOT)? {
        Some(root) => store.reachable_stored(&root)?,
        None => Vec::new(),
    })
}

/// Providing settings, from the config's `Provide` section.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ProvideConfig {
    /// `Provide.Enabled` (default true).
    pub enabled: bool,
    /// `Provide.Strategy` (default `all`).
    pub strategy: ProvideStrategy,
    /// `Provide.DHT.Interval` (default 22 h; zero turns reproviding off).
    pub interval: Duration,
}

impl Default for ProvideConfig {
    fn default() -> Self {
        ProvideConfig {
            enabled: true,
            strategy: ProvideStrategy::All,
            interval: Duration::from_secs(22 * 3600),
        }
    }
}

impl ProvideConfig {
    /// Reads `Provide.{Enabled,Strategy,DHT.Interval}`, or Kubo 0.22's `Reprovider.{Strategy,
    /// Interval}`. A value that does not parse is a [`crate::RepoError::InvalidValue`].
    pub fn from_config(config: &crate::Config) -> Result<Self, crate::RepoError> {
        let mut out = ProvideConfig::default();
        let invalid = |key: &str, reason: &str| crate::RepoError::InvalidValue {
            key: key.into(),
            reason: reason.into(),
        };
        let provide = config.extra.get("Provide");
        let reprovider = config.extra.get("Reprovider");
        if let Some(v) = provide
            .and_then(|p| p.get("Enabled"))
            .filter(|v| !v.is_null())
        {
            out.enabled = v
                .as_bool()
                .ok_or_else(|| invalid("Provide.Enabled", "not a boolean"))?;
        }
        let strategy = provide
            .and_then(|p| p.get("Strategy"))
            .or_else(|| reprovider.and_then(|r| r.get("Strategy")));
        if let Some(v) = strategy.filter(|v| !v.is_null()) {
            out.strategy = v.as_str().and_then(ProvideStrategy::parse).ok_or_else(|| {
                invalid(
                    "Provide.Strategy",
                    "expected all, pinned, roots, mfs or pinned+mfs",
                )
            })?;
        }
        let interval = provide
            .and_then(|p| p.get("DHT"))
            .and_then(|d| d.get("Interval"))
            .or_else(|| reprovider.and_then(|r| r.get("Interval")));
        if let Some(v) = interval.filter(|v| !v.is_null()) {
            out.interval = v
                .as_str()
                .and_then(crate::config::parse_go_duration)
                .ok_or_else(|| invalid("Provide.DHT.Interval", "expected a duration like 22h"))?;
        }
        Ok(out)
    }
}

/// Provider counters, as `provide stat` reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ProvideStat {
    /// CIDs waiting to be announced (Kubo's `ProvideBufLen`).
    pub queued: u64,
    /// Announcements that finished.
    pub total_provides: u64,
    /// Announcements that failed.
    pub failed_provides: u64,
    /// CIDs dropped because the queue was full.
    pub dropped: u64,
    /// Mean time an announcement took, in ms.
    pub avg_provide_ms: u64,
    /// How long the last reprovide run took, in ms.
    pub last_reprovide_ms: u64,
    /// How many CIDs it announced.
    pub last_reprovide_size: u64,
}

#[derive(Default)]
struct Counters {
    queued: AtomicU64,
    total: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    total_ms: AtomicU64,
    last_reprovide_ms: AtomicU64,
    last_reprovide_size: AtomicU64,
}

/// CIDs a queue holds before it drops new ones (about 100 bytes each: 6.5 MB at most per queue).
const QUEUE_MAX: usize = 1 << 16;
/// Announcements in flight at once (Kubo's provide workers).
const PARALLEL: usize = 8;

enum ProvideReq {
    Add { cids: Vec<Cid>, roots: bool },
    Reprovide(oneshot::Sender<Result<u64, NodeError>>),
}

/// The provider queue's handle.
#[derive(Clone)]
pub(crate) struct Provider {
    tx: mpsc::Sender<ProvideReq>,
    counters: Arc<Counters>,
    pub config: ProvideConfig,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider").finish_non_exhaustive()
    }
}

impl Provider {
    pub(crate) fn spawn(
        config: ProvideConfig,
        commands: mpsc::Sender<Command>,
        store: StoreSlot,
        events: crate::events::Emitter,
        cancel: CancellationToken,
    ) -> Self {
        let (tx, rx) = mpsc::channel(256);
        let counters = Arc::new(Counters::default());
        let task = ProviderTask {
            config: config.clone(),
            commands,
            store,
            events,
            counters: counters.clone(),
            roots: VecDeque::new(),
            blocks: VecDeque::new(),
        };
        tokio::spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = task.run(rx) => {}
            }
        });
        Provider {
            tx,
            counters,
            config,
        }
    }

    /// Queues CIDs for announcement; roots go before other blocks. Never waits on the DHT.
    pub(crate) fn announce(&self, cids: Vec<Cid>, roots: bool) {
        if !self.config.enabled || cids.is_empty() {
            return;
        }
        if let Err(mpsc::error::TrySendError::Full(ProvideReq::Add { cids, roots })) =
            self.tx.try_send(ProvideReq::Add { cids, roots })
        {
            let tx = self.tx.clone();
            tokio::spawn(async move {
                let _ = tx.send(ProvideReq::Add { cids, roots }).await;
            });
        }
    }

    /// Queues everything the strategy selects; returns how many CIDs were queued.
    pub(crate) async fn reprovide(&self) -> Result<u64, NodeError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(ProvideReq::Reprovide(reply))
            .await
            .map_err(|_| NodeError::NodeStopped)?;
        rx.await.map_err(|_| NodeError::NodeStopped)?
    }

    pub(crate) fn stat(&self) -> ProvideStat {
        let c = &self.counters;
        let total = c.total.load(Ordering::Relaxed);
        ProvideStat {
            queued: c.queued.load(Ordering::Relaxed),
            total_provides: total,
            failed_provides: c.failed.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            avg_provide_ms: c
                .total_ms
                .load(Ordering::Relaxed)
                .checked_div(total)
                .unwrap_or(0),
            last_reprovide_ms: c.last_reprovide_ms.load(Ordering::Relaxed),
            last_reprovide_size: c.last_reprovide_size.load(Ordering::Relaxed),
        }
    }
}

struct ProviderTask {
    config: ProvideConfig,
    commands: mpsc::Sender<Command>,
    store: StoreSlot,
    events: crate::events::Emitter,
    counters: Arc<Counters>,
    roots: VecDeque<Cid>,
    blocks: VecDeque<Cid>,
}

impl ProviderTask {
    fn push(&mut self, cids: Vec<Cid>, roots: bool) {
        let queue = if roots {
            &mut self.roots
        } else {
            &mut self.blocks
        };
        for cid in cids {
            if queue.len() >= QUEUE_MAX {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            queue.push_back(cid);
        }
        self.counters.queued.store(
            (self.roots.len() + self.blocks.len()) as u64,
            Ordering::Relaxed,
        );
    }

    /// What the strategy selects, read from the store on a blocking thread.
    async fn selection(&self) -> Result<Vec<Cid>, NodeError> {
        let store = self.store.read().clone().ok_or(NodeError::NodeStopped)?;
        let strategy = self.config.strategy;
        tokio::task::spawn_blocking(move || -> Result<Vec<Cid>, NodeError> {
            Ok(match strategy {
                ProvideStrategy::All => store.list().collect::<Result<Vec<_>, _>>()?,
                ProvideStrategy::Pinned => store
                    .pins(PinFilter::All)?
                    .into_iter()
                    .map(|p| p.cid)
                    .collect(),
                ProvideStrategy::Roots => store
                    .pins(PinFilter::Recursive)?
                    .into_iter()
                    .map(|p| p.cid)
                    .collect(),
                ProvideStrategy::Mfs => mfs_blocks(&store)?,
                ProvideStrategy::PinnedMfs => {
                    let mut cids: Vec<Cid> = store
                        .pins(PinFilter::All)?
                        .into_iter()
                        .map(|p| p.cid)
                        .collect();
                    let pinned: std::collections::HashSet<Cid> = cids.iter().copied().collect();
                    cids.extend(
                        mfs_blocks(&store)?
                            .into_iter()
                            .filter(|c| !pinned.contains(c)),
                    );
                    cids
                }
            })
        })
        .await
        .map_err(|_| NodeError::NodeStopped)?
    }

    async fn run(mut self, mut rx: mpsc::Receiver<ProvideReq>) {
        let mut inflight = futures::stream::FuturesUnordered::new();
        let mut reprovide = (!self.config.interval.is_zero()).then(|| {
            let mut i = tokio::time::interval_at(
                tokio::time::Instant::now() + Duration::from_secs(60),
                self.config.interval,
            );
            i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            i
        });
        let mut reprovide_started: Option<(Instant, u64)> = None;
        // Retry after a pause when nobody is connected, instead of spinning.
        let mut paused_until: Option<tokio::time::Instant> = None;
        loop {
            let now = tokio::time::Instant::now();
            if paused_until.is_some_and(|t| t <= now) {
                paused_until = None;
            }
            while paused_until.is_none() && inflight.len() < PARALLEL {
                let Some(cid) = self.roots.pop_front().or_else(|| self.blocks.pop_front()) else {
                    break;
                };
                let commands = self.commands.clone();
                inflight.push(async move {
                    let started = Instant::now();
                    let (reply, rx) = oneshot::channel();
                    let r = match commands.send(Command::Provide { cid, reply }).await {
                        Ok(()) => rx.await.unwrap_or(Err(NodeError::NodeStopped)),
                        Err(_) => Err(NodeError::NodeStopped),
                    };
                    (cid, r, started.elapsed())
                });
            }
            self.counters.queued.store(
                (self.roots.len() + self.blocks.len()) as u64,
                Ordering::Relaxed,
            );
            if let Some((started, size)) = reprovide_started
                && inflight.is_empty()
                && self.roots.is_empty()
                && self.blocks.is_empty()
            {
                self.counters
                    .last_reprovide_ms
                    .store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
                self.counters
                    .last_reprovide_size
                    .store(size, Ordering::Relaxed);
                reprovide_started = None;
            }
            let pause = async {
                match paused_until {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            let tick = async {
                match reprovide.as_mut() {
                    Some(i) => {
                        i.tick().await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                req = rx.recv() => match req {
                    Some(ProvideReq::Add { cids, roots }) => self.push(cids, roots),
                    Some(ProvideReq::Reprovide(reply)) => {
                        let r = self.selection().await;
                        if let Ok(cids) = &r {
                            reprovide_started = Some((Instant::now(), cids.len() as u64));
                            self.push(cids.clone(), false);
                        }
                        let _ = reply.send(r.map(|c| c.len() as u64));
                    }
                    None => break,
                },
                Some((cid, result, took)) = inflight.next(), if !inflight.is_empty() => match result {
                    Ok(()) => {
                        self.events.emit_with(|| crate::types::NodeEvent::BlockProvided { cid });
                        self.counters.total.fetch_add(1, Ordering::Relaxed);
                        self.counters.total_ms.fetch_add(took.as_millis() as u64, Ordering::Relaxed);
                    }
                    Err(NodeError::NodeStopped) => break,
                    Err(e) => {
                        tracing::debug!(%cid, error = %e, "provide failed");
                        self.counters.failed.fetch_add(1, Ordering::Relaxed);
                        // With nobody connected, keep the CID and wait a little; other failures
                        // (a query that found no peer to take the record) wait for the reprovide.
                        if e.to_string().contains("no connected peers") {
                            self.roots.push_front(cid);
                            paused_until = Some(tokio::time::Instant::now() + Duration::from_secs(5));
                        }
                    }
                },
                _ = pause => {}
                _ = tick => {
                    if let Ok(cids) = self.selection().await {
                        tracing::info!(count = cids.len(), "reproviding");
                        reprovide_started = Some((Instant::now(), cids.len() as u64));
                        self.push(cids, false);
                    }
                }
            }
        }
    }
}

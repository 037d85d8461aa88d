//! A simulated DHT network of cairn nodes in one process, shared by the `dht_sim` test (small N,
//! in CI) and the `dht_sim` bench (N = 50, 200, 1,000 and churn, outside CI).
//!
//! Every node is a full [`Node`] (identify, ping, both Kademlia DHTs in server mode, Bitswap, the
//! bootstrapper, an in-memory store) on libp2p's memory transport with Noise and Yamux, so a
//! thousand of them need no sockets or file descriptors. Node `i` bootstraps from a few random
//! earlier nodes, as a real node bootstraps from its list. What the harness measures:
//!
//! - **Tables:** the time until every node's routing table holds at least K (20) peers, and how
//!   many of each node's true K closest live peers it holds (the property lookups depend on).
//! - **FIND_NODE:** real iterative lookups (`Node::closest_peers`) for random keys from random
//!   nodes. A lookup *succeeds* when its answer holds the live node truly closest to the key (by
//!   XOR of SHA-256 keys, the DHT's metric). Messages per lookup are libp2p's query statistics.
//! - **Hops:** libp2p's query does not report hop counts, so each lookup is replayed over a
//!   snapshot of the routing tables taken at the same time: α = 3 peers asked per round, each
//!   answering with the K closest from its table, as FIND_NODE does; hops are the rounds until the
//!   truly closest node has been asked.
//! - **GET_PROVIDERS:** random nodes store and provide a block; random other nodes look for a
//!   provider. Messages are the GET_PROVIDERS requests all nodes received (their libp2p metrics)
//!   divided by the lookups.
//! - **Cost:** resident memory and CPU time of the process, per node.
//! - **Churn:** a share of the nodes leave and as many new ones join while lookups keep running;
//!   then lookups are checked again, and the tables for stale (departed) and new peers.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::Context;
use cairn::blockstore::{Block, codec::RAW};
use cairn::node::{Multiaddr, Node, PeerId, Profile};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use libp2p::kad::KBucketKey;
use libp2p::multiaddr::Protocol;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

/// Kademlia's K: the bucket size and the number of closest peers a lookup returns.
pub const K: usize = 20;
/// Kademlia's α: peers asked at once in each round of a lookup.
pub const ALPHA: usize = 3;

/// What to simulate.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Nodes in the network.
    pub nodes: usize,
    /// Earlier nodes each new node bootstraps from.
    pub bootstrap_peers: usize,
    /// FIND_NODE lookups per measurement.
    pub lookups: usize,
    /// Provided blocks (each by one random node) and provider lookups (one per block).
    pub provider_lookups: usize,
    /// Lookups in flight at once.
    pub concurrency: usize,
    /// Seed for every random choice (nodes' keys are random regardless).
    pub seed: u64,
    /// How long to wait for every routing table to hold K peers.
    pub settle_timeout: Duration,
    /// Nodes started at once while the network grows.
    pub join_batch: usize,
    /// The nodes' connection manager; `None` keeps the default (`Swarm.ConnMgr`: 32 / 96).
    pub conn_mgr: Option<cairn_node_core::ConnMgrLimits>,
}

impl SimConfig {
    /// Defaults for `nodes` nodes.
    pub fn new(nodes: usize) -> Self {
        SimConfig {
            nodes,
            bootstrap_peers: 3,
            lookups: 200,
            provider_lookups: 100,
            concurrency: 16,
            seed: 7,
            settle_timeout: Duration::from_secs(300),
            join_batch: 8,
            conn_mgr: None,
        }
    }
}

/// One node of the simulation.
pub struct SimNode {
    /// The node.
    pub node: Node,
    /// Its peer id.
    pub peer: PeerId,
    /// Its address with `/p2p/<peer>`.
    pub addr: Multiaddr,
}

/// The network.
pub struct Sim {
    /// Live nodes.
    pub nodes: Vec<SimNode>,
    /// Peers that have left (churn).
    pub departed: HashSet<PeerId>,
    /// Settings.
    pub config: SimConfig,
    rng: StdRng,
}

/// The outcome of a batch of lookups.
#[derive(Clone, Debug, Default)]
pub struct LookupReport {
    /// Lookups run.
    pub total: usize,
    /// Lookups whose answer held the truly closest live node (FIND_NODE) or a provider.
    pub succeeded: usize,
    /// Messages sent per lookup, sorted.
    pub messages: Vec<u32>,
    /// Replayed hops per lookup, sorted (FIND_NODE only).
    pub hops: Vec<u32>,
    /// Wall time per lookup in ms, sorted.
    pub millis: Vec<u64>,
    /// Requests that failed (no answer, dial error), over all lookups.
    pub failed_requests: u64,
    /// Provides that failed before the lookups (GET_PROVIDERS batches only).
    pub provide_errors: usize,
}

impl LookupReport {
    /// Successes as a percentage.
    pub fn success_pct(&self) -> f64 {
        100.0 * self.succeeded as f64 / self.total.max(1) as f64
    }
}

/// The `q` quantile (0..=1) of a sorted list, by nearest rank.
pub fn quantile<T: Copy + Default>(sorted: &[T], q: f64) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// Routing-table health across the live nodes.
#[derive(Clone, Debug, Default)]
pub struct TableReport {
    /// Smallest table.
    pub min_size: usize,
    /// Mean table size.
    pub mean_size: f64,
    /// Mean share (0..=1) of each node's true K closest live peers present in its table.
    pub closest_known: f64,
    /// Entries naming departed peers, over all tables.
    pub stale_entries: usize,
    /// Entries over all tables.
    pub entries: usize,
}

/// This process's resident set and peak, in KiB, and its CPU time (user + system).
pub fn process_usage() -> (u64, u64, Duration) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime and stime are 14 and 15.
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let ticks: Vec<u64> = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    // Linux reports CPU time in clock ticks of 1/100 s (USER_HZ) on every mainstream platform.
    let cpu = Duration::from_millis(ticks.iter().sum::<u64>() * 10);
    (field("VmRSS:"), field("VmHWM:"), cpu)
}

/// Starts a node on the memory transport that bootstraps from `seeds`.
async fn start_node(
    seeds: Vec<Multiaddr>,
    conn_mgr: Option<cairn_node_core::ConnMgrLimits>,
) -> anyhow::Result<SimNode> {
    let mut builder = Node::builder()
        .profile(Profile::Test)
        .memory_transport(true)
        .mdns(false)
        .gossipsub(false)
        .bootstrap_peers(seeds);
    if let Some(limits) = conn_mgr {
        builder = builder.conn_mgr(limits);
    }
    let node = builder.build().await.context("build a node")?;
    let peer = node.peer_id();
    let listen = node.listen_addrs().await?;
    let addr = listen
        .into_iter()
        .find(|a| a.iter().any(|p| matches!(p, Protocol::Memory(_))))
        .context("no memory address")?
        .with(Protocol::P2p(peer));
    Ok(SimNode { node, peer, addr })
}

/// XOR distance between two DHT keys.
fn distance(a: &KBucketKey<Vec<u8>>, b: &KBucketKey<PeerId>) -> libp2p::kad::KBucketDistance {
    a.distance(b)
}

impl Sim {
    /// An empty network.
    pub fn new(config: SimConfig) -> Self {
        Sim {
            nodes: Vec::new(),
            departed: HashSet::new(),
            rng: StdRng::seed_from_u64(config.seed),
            config,
        }
    }

    /// Starts one node that bootstraps from up to `bootstrap_peers` random live nodes.
    pub async fn join(&mut self) -> anyhow::Result<()> {
        let seeds = self.pick_seeds();
        let node = start_node(seeds, self.config.conn_mgr).await?;
        self.nodes.push(node);
        Ok(())
    }

    /// Up to `bootstrap_peers` random live nodes' addresses.
    fn pick_seeds(&mut self) -> Vec<Multiaddr> {
        self.nodes
            .choose_multiple(&mut self.rng, self.config.bootstrap_peers)
            .map(|n| n.addr.clone())
            .collect()
    }

    /// Starts nodes until there are `n`, each bootstrapping from earlier ones. Nodes start
    /// `join_batch` at a time (each batch from the nodes before it): a node's start waits on its
    /// event loop, which a busy runtime reaches late, so one at a time would measure that wait.
    pub async fn grow_to(&mut self, n: usize) -> anyhow::Result<()> {
        let start = Instant::now();
        let mut next_report = 25;
        while self.nodes.len() < n {
            // The first nodes start one by one, so that every batch has seeds to choose from.
            let batch = if self.nodes.len() < self.config.bootstrap_peers.max(1) {
                1
            } else {
                self.config.join_batch.clamp(1, n - self.nodes.len())
            };
            let starting: Vec<_> = (0..batch)
                .map(|_| start_node(self.pick_seeds(), self.config.conn_mgr))
                .collect();
            for node in futures::future::join_all(starting).await {
                self.nodes.push(node?);
            }
            if self.nodes.len() >= next_report {
                next_report = self.nodes.len() / 25 * 25 + 25;
                self.progress(start.elapsed()).await?;
            }
        }
        Ok(())
    }

    /// Stops `count` random nodes; they are remembered as departed.
    pub async fn leave(&mut self, count: usize) -> anyhow::Result<()> {
        for _ in 0..count.min(self.nodes.len().saturating_sub(1)) {
            let i = self.rng.random_range(0..self.nodes.len());
            let gone = self.nodes.swap_remove(i);
            self.departed.insert(gone.peer);
            gone.node.shutdown().await?;
        }
        Ok(())
    }

    /// Every live node's routing table (WAN DHT). The nodes are asked all at once: on a busy
    /// runtime each answer waits its turn, and one after the other would add those waits up.
    pub async fn tables(&self) -> anyhow::Result<HashMap<PeerId, Vec<PeerId>>> {
        let asks = self
            .nodes
            .iter()
            .map(|n| async move { anyhow::Ok((n.peer, n.node.routing_table().await?)) });
        futures::future::try_join_all(asks)
            .await
            .map(|v| v.into_iter().collect())
    }

    /// Each live node's routing-table size and connected peers, asked all at once.
    async fn sizes(&self) -> anyhow::Result<Vec<(usize, usize)>> {
        let asks = self.nodes.iter().map(|n| async move {
            let table = n.node.routing_table().await?.len();
            anyhow::Ok((table, n.node.peers().await?.len()))
        });
        futures::future::try_join_all(asks).await
    }

    /// Waits until every routing table holds at least min(K, N − 1) peers; returns how long it
    /// took, or `None` at the timeout.
    pub async fn wait_populated(&self, timeout: Duration) -> anyhow::Result<Option<Duration>> {
        let start = Instant::now();
        let want = K.min(self.nodes.len().saturating_sub(1));
        let mut report = Instant::now();
        loop {
            if self.sizes().await?.iter().all(|(t, _)| *t >= want) {
                return Ok(Some(start.elapsed()));
            }
            if report.elapsed() > Duration::from_secs(10) {
                report = Instant::now();
                self.progress(start.elapsed()).await?;
            }
            if start.elapsed() > timeout {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Waits until the network is quiet after the join: until, over a 5 s window, fewer than one
    /// connection per 20 nodes was opened (dials, trims and bootstrap walks have died down), or
    /// until `max` has passed. Returns how long that took and the last window's connections opened
    /// per second. Lookups measured before this point measure the join's storm of bootstrap walks
    /// and connection trims on a saturated machine, not the DHT: with all 200 nodes started within
    /// 10 s, FIND_NODE lookups right after the tables filled took 21 s at the median, where the
    /// same code on a network that had grown for minutes took 1.1 s.
    pub async fn wait_quiet(&self, max: Duration) -> anyhow::Result<(Duration, f64)> {
        const WINDOW: Duration = Duration::from_secs(5);
        let start = Instant::now();
        let quiet = (self.nodes.len() / 20).max(1) as u64;
        let mut before = self.counter_sum("swarm_connections_established_total{", "");
        loop {
            tokio::time::sleep(WINDOW).await;
            let now = self.counter_sum("swarm_connections_established_total{", "");
            let opened = now.saturating_sub(before);
            before = now;
            let rate = opened as f64 / WINDOW.as_secs_f64();
            if opened < quiet || start.elapsed() >= max {
                return Ok((start.elapsed(), rate));
            }
            if start.elapsed().as_secs() % 30 < WINDOW.as_secs() {
                self.progress(start.elapsed()).await?;
            }
        }
    }

    /// Prints (to stderr) how far the tables are from full and how many connections nodes hold,
    /// so that a run that does not settle shows where it stands.
    pub async fn progress(&self, elapsed: Duration) -> anyhow::Result<()> {
        let want = K.min(self.nodes.len().saturating_sub(1));
        let (mut short, mut min, mut conns, mut max_conns) = (0, usize::MAX, 0, 0);
        for (t, c) in self.sizes().await? {
            short += usize::from(t < want);
            min = min.min(t);
            conns += c;
            max_conns = max_conns.max(c);
        }
        let (rss, _, cpu) = process_usage();
        // Totals since start over the live nodes: a count that keeps climbing while the tables
        // stand still shows connection churn.
        let opened = self.counter_sum("swarm_connections_established_total{", "");
        let kad = self.counter_sum("kad_inbound_requests_total{", "");
        // Handshakes that did not end in a connection cost as much as those that did.
        let dials = self.counter_sum("swarm_dial_attempt_total", "");
        let dial_errors = self.counter_sum("swarm_outgoing_connection_error_total{", "");
        let denied = self.counter_sum("swarm_outgoing_connection_error_total{", "Denied")
            + self.counter_sum("swarm_connections_incoming_error_total{", "Denied");
        // Bootstrap lookups (the self walk and one per bucket refreshed) and their requests.
        let walks = self.counter_sum("kad_query_result_num_requests_count{", "Bootstrap");
        let walk_requests = self.counter_sum("kad_query_result_num_requests_sum{", "Bootstrap");
        eprintln!(
            "  [{:.0} s] {short} of {} tables below {want} peers (smallest {min}); connections per node mean {:.1} max {max_conns}, opened in all {opened}, dials {dials} (failed {dial_errors}, denied {denied}); kad requests served {kad}, of which {walk_requests} in {walks} bootstrap walks; RSS {} MiB; CPU {:.0} s",
            elapsed.as_secs_f64(),
            self.nodes.len(),
            conns as f64 / self.nodes.len().max(1) as f64,
            rss / 1024,
            cpu.as_secs_f64()
        );
        Ok(())
    }

    /// The live peers nearest `key`, nearest first (at most `count`).
    fn true_closest(&self, key: &KBucketKey<Vec<u8>>, count: usize) -> Vec<PeerId> {
        let mut all: Vec<(libp2p::kad::KBucketDistance, PeerId)> = self
            .nodes
            .iter()
            .map(|n| (distance(key, &KBucketKey::from(n.peer)), n.peer))
            .collect();
        all.sort_by_key(|a| a.0);
        all.into_iter().take(count).map(|(_, p)| p).collect()
    }

    /// Table health: sizes, how many of each node's K closest it knows, stale entries.
    pub fn table_report(&self, tables: &HashMap<PeerId, Vec<PeerId>>) -> TableReport {
        let mut r = TableReport {
            min_size: usize::MAX,
            ..Default::default()
        };
        let mut known = 0.0;
        for n in &self.nodes {
            let table = tables.get(&n.peer).cloned().unwrap_or_default();
            r.min_size = r.min_size.min(table.len());
            r.entries += table.len();
            r.stale_entries += table.iter().filter(|p| self.departed.contains(p)).count();
            let set: HashSet<&PeerId> = table.iter().collect();
            let key = KBucketKey::new(n.peer.to_bytes());
            let closest: Vec<PeerId> = self
                .true_closest(&key, K + 1)
                .into_iter()
                .filter(|p| *p != n.peer)
                .take(K)
                .collect();
            let hit = closest.iter().filter(|p| set.contains(p)).count();
            known += hit as f64 / closest.len().max(1) as f64;
        }
        r.mean_size = r.entries as f64 / self.nodes.len().max(1) as f64;
        r.closest_known = known / self.nodes.len().max(1) as f64;
        if r.min_size == usize::MAX {
            r.min_size = 0;
        }
        r
    }

    /// Replays an α = 3 iterative lookup for `key` from `source` over `tables`: the rounds until
    /// the live peer nearest the key has been asked, or `None` if the walk stalls first.
    pub fn replay_hops(
        &self,
        tables: &HashMap<PeerId, Vec<PeerId>>,
        source: PeerId,
        key: &KBucketKey<Vec<u8>>,
    ) -> Option<u32> {
        let target = self
            .true_closest(key, 2)
            .into_iter()
            .find(|p| *p != source)?;
        let by_distance = |peers: &mut Vec<PeerId>| {
            peers.sort_by_key(|p| distance(key, &KBucketKey::from(*p)));
            peers.dedup();
        };
        let live: HashSet<PeerId> = self.nodes.iter().map(|n| n.peer).collect();
        let mut known: Vec<PeerId> = tables.get(&source)?.clone();
        by_distance(&mut known);
        let mut asked: HashSet<PeerId> = HashSet::from([source]);
        for round in 1..=64u32 {
            // The α nearest peers not yet asked, among the K nearest known (kad's frontier).
            let picks: Vec<PeerId> = known
                .iter()
                .take(K)
                .filter(|p| !asked.contains(*p))
                .take(ALPHA)
                .copied()
                .collect();
            if picks.is_empty() {
                return None;
            }
            if picks.contains(&target) {
                return Some(round);
            }
            for p in picks {
                asked.insert(p);
                if !live.contains(&p) {
                    // A departed peer does not answer; the walk goes on with the others.
                    known.retain(|q| *q != p);
                    continue;
                }
                let mut answer = tables.get(&p).cloned().unwrap_or_default();
                by_distance(&mut answer);
                known.extend(answer.into_iter().take(K));
            }
            by_distance(&mut known);
        }
        None
    }

    /// Runs `count` FIND_NODE lookups for random keys from random live nodes, `concurrency` at a
    /// time, and replays each over the tables as they were just before.
    pub async fn find_node_batch(&mut self, count: usize) -> anyhow::Result<LookupReport> {
        let tables = self.tables().await?;
        let mut jobs = Vec::new();
        for _ in 0..count {
            let source = self.rng.random_range(0..self.nodes.len());
            let key: [u8; 32] = self.rng.random();
            jobs.push((source, key.to_vec()));
        }
        let mut report = LookupReport {
            total: count,
            ..Default::default()
        };
        let mut pending = FuturesUnordered::new();
        let mut jobs = jobs.into_iter();
        loop {
            while pending.len() < self.config.concurrency {
                let Some((source, key)) = jobs.next() else {
                    break;
                };
                let node = self.nodes[source].node.clone();
                let peer = self.nodes[source].peer;
                pending.push(async move {
                    let started = Instant::now();
                    let result = node.closest_peers(key.clone()).await;
                    (peer, key, result, started.elapsed())
                });
            }
            let Some((source, key, result, took)) = pending.next().await else {
                break;
            };
            let found = result?;
            let kkey = KBucketKey::new(key);
            let target = self
                .true_closest(&kkey, 2)
                .into_iter()
                .find(|p| *p != source);
            if target.is_some_and(|t| found.peers.contains(&t)) {
                report.succeeded += 1;
            }
            report.messages.push(found.stats.requests);
            report.failed_requests += u64::from(found.stats.failures);
            report.millis.push(took.as_millis() as u64);
            if let Some(h) = self.replay_hops(&tables, source, &kkey) {
                report.hops.push(h);
            }
        }
        report.messages.sort_unstable();
        report.hops.sort_unstable();
        report.millis.sort_unstable();
        Ok(report)
    }

    /// GET_PROVIDERS requests received so far, summed over the live nodes' libp2p metrics.
    fn get_provider_requests(&self) -> u64 {
        self.counter_sum("kad_inbound_requests_total{", "request=\"GetProvider\"")
    }

    /// The sum over the live nodes of every libp2p metric sample whose line starts with `name`
    /// (e.g. `libp2p_swarm_connections_established_total{`) and contains `label`.
    fn counter_sum(&self, name: &str, label: &str) -> u64 {
        self.nodes
            .iter()
            .map(|n| {
                n.node
                    .libp2p_metrics()
                    .lines()
                    .filter(|l| l.contains(name) && l.contains(label))
                    .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                    .sum::<f64>() as u64
            })
            .sum()
    }

    /// `count` random nodes each store and provide a new block; then a random other node looks
    /// for a provider of each (success: one found within kad's query time).
    pub async fn provider_batch(&mut self, count: usize) -> anyhow::Result<LookupReport> {
        let mut provide_errors = 0;
        let mut cids = Vec::new();
        for _ in 0..count {
            let i = self.rng.random_range(0..self.nodes.len());
            let data: [u8; 32] = self.rng.random();
            let block = Block::from_data(RAW, data.to_vec())?;
            self.nodes[i].node.put_block(&block).await?;
            cids.push((i, *block.cid()));
        }
        // Announce concurrently: each provide is a walk to the key's K closest peers.
        let mut provides = FuturesUnordered::new();
        for chunk in cids.chunks(self.config.concurrency) {
            for (i, cid) in chunk {
                let node = self.nodes[*i].node.clone();
                let cid = *cid;
                provides.push(async move { node.provide(&cid).await });
            }
            while let Some(r) = provides.next().await {
                // A provide that failed (its walk timed out) is part of the outcome: the lookup
                // for that block then finds nobody, and counts as failed.
                if let Err(e) = r {
                    provide_errors += 1;
                    eprintln!("  provide failed: {e}");
                }
            }
        }
        let before = self.get_provider_requests();
        let mut report = LookupReport {
            total: count,
            provide_errors,
            ..Default::default()
        };
        let mut pending = FuturesUnordered::new();
        let mut jobs = cids.into_iter();
        loop {
            while pending.len() < self.config.concurrency {
                let Some((provider, cid)) = jobs.next() else {
                    break;
                };
                let mut asker = self.rng.random_range(0..self.nodes.len());
                if asker == provider && self.nodes.len() > 1 {
                    asker = (asker + 1) % self.nodes.len();
                }
                let node = self.nodes[asker].node.clone();
                let want = self.nodes[provider].peer;
                pending.push(async move {
                    let started = Instant::now();
                    let mut found = false;
                    if let Ok(mut stream) = node.find_providers(&cid, 1).await {
                        while let Some(p) = stream.next().await {
                            found |= p.peer_id == want;
                        }
                    }
                    (found, started.elapsed())
                });
            }
            let Some((found, took)) = pending.next().await else {
                break;
            };
            report.succeeded += usize::from(found);
            report.millis.push(took.as_millis() as u64);
        }
        report.millis.sort_unstable();
        let messages = self.get_provider_requests().saturating_sub(before);
        // Per-lookup counts are not reported by kad for GET_PROVIDERS; the mean stands for all.
        report.messages = vec![(messages / count.max(1) as u64) as u32];
        Ok(report)
    }

    /// Replaces `share` (0..1) of the nodes: leaves and joins alternate in `rounds` steps while a
    /// batch of lookups runs after each step. Returns the lookups run during the churn.
    pub async fn churn(&mut self, share: f64, rounds: usize) -> anyhow::Result<LookupReport> {
        let total = ((self.nodes.len() as f64) * share).round() as usize;
        let per_round = total.div_ceil(rounds.max(1));
        let mut during = LookupReport::default();
        let mut left = 0;
        while left < total {
            let n = per_round.min(total - left);
            self.leave(n).await?;
            for _ in 0..n {
                self.join().await?;
            }
            // A node is part of the network once its bootstrap walk has run (that walk is what
            // puts it into its neighbours' tables); a node a few milliseconds old cannot be found
            // by anyone, here or in Kademlia generally, so lookups wait for that much.
            let newcomers: Vec<Node> = self.nodes[self.nodes.len() - n..]
                .iter()
                .map(|s| s.node.clone())
                .collect();
            let want = K.min(self.nodes.len() - 1);
            for node in newcomers {
                let deadline = Instant::now() + self.config.settle_timeout;
                while node.routing_table().await?.len() < want {
                    anyhow::ensure!(
                        Instant::now() < deadline,
                        "a new node never filled its table"
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            left += n;
            let batch = self
                .find_node_batch((self.config.lookups / rounds.max(1)).max(10))
                .await?;
            during.total += batch.total;
            during.succeeded += batch.succeeded;
            during.messages.extend(batch.messages);
            during.hops.extend(batch.hops);
            during.millis.extend(batch.millis);
        }
        during.messages.sort_unstable();
        during.hops.sort_unstable();
        during.millis.sort_unstable();
        Ok(during)
    }

    /// Stops every node.
    pub async fn shutdown(self) {
        for n in self.nodes {
            let _ = n.node.shutdown().await;
        }
    }
}

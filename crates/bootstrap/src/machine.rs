//! The bootstrapper: a pure state machine with an injected clock. It is fed events (tick, peer
//! connected or disconnected, dial failed) with the current time and answers with actions (dial
//! these peers, run a Kademlia bootstrap, save backup peers). It does what Kubo does (every
//! `period`, when fewer than `min_peer_threshold` peers are connected, dial the list in parallel,
//! each round bounded by `connection_timeout`; keep up to 20 connected peers as backup bootstrap
//! peers and dial them when the list fails) and adds what Kubo lacks: exponential backoff with
//! jitter between failed rounds (1 s doubling, capped, reset on success), an immediate round when
//! the peer count falls below the threshold, and an observable [`BootstrapStatus`].

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use libp2p::{Multiaddr, PeerId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::list::{BootstrapList, BootstrapPeer};

/// Timing and thresholds; `Default` is Kubo's (`Period` 30 s, `MinPeerThreshold` 4,
/// `ConnectionTimeout` 10 s, backup every hour, 20 backup peers) plus cairn's backoff.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct BootstrapConfig {
    /// How often the peer count is checked.
    pub period: Duration,
    /// Below this many connected peers, a round of dials starts.
    pub min_peer_threshold: usize,
    /// How long one round of dials may take.
    pub connection_timeout: Duration,
    /// The first wait after a failed round.
    pub initial_backoff: Duration,
    /// The longest wait between failed rounds.
    pub max_backoff: Duration,
    /// Up to this fraction is added to each wait at random, so restarted fleets do not dial in step.
    pub jitter: f64,
    /// How many connected peers are saved as backup bootstrap peers.
    pub max_backup_peers: usize,
    /// How often the backup peers are saved.
    pub backup_interval: Duration,
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        BootstrapConfig {
            period: Duration::from_secs(30),
            min_peer_threshold: 4,
            connection_timeout: Duration::from_secs(10),
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            jitter: 0.2,
            max_backup_peers: 20,
            backup_interval: Duration::from_secs(3600),
        }
    }
}

impl BootstrapConfig {
    /// Sets [`BootstrapConfig::period`].
    pub fn with_period(mut self, d: Duration) -> Self {
        self.period = d;
        self
    }
    /// Sets [`BootstrapConfig::min_peer_threshold`].
    pub fn with_min_peer_threshold(mut self, n: usize) -> Self {
        self.min_peer_threshold = n;
        self
    }
    /// Sets [`BootstrapConfig::connection_timeout`].
    pub fn with_connection_timeout(mut self, d: Duration) -> Self {
        self.connection_timeout = d;
        self
    }
    /// Sets the backoff bounds.
    pub fn with_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max;
        self
    }
    /// Sets [`BootstrapConfig::jitter`] (0 for none).
    pub fn with_jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter.clamp(0.0, 1.0);
        self
    }

    /// The wait after `failures` consecutive failed rounds, before jitter: 1 s, 2 s, 4 s … capped.
    pub fn backoff_base(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(30);
        self.initial_backoff
            .saturating_mul(1 << doublings)
            .min(self.max_backoff)
    }
}

/// Something the bootstrapper is told.
#[derive(Clone, Debug)]
pub enum BootstrapEvent {
    /// Time passed.
    Tick,
    /// A connection to a peer opened (any peer, not only bootstrap ones).
    PeerConnected {
        /// The peer.
        peer_id: PeerId,
        /// The address it was reached at, `/p2p/` included, if dialable (saved as a backup).
        addr: Option<Multiaddr>,
    },
    /// The last connection to a peer closed.
    PeerDisconnected {
        /// The peer.
        peer_id: PeerId,
    },
    /// A dial to a peer failed.
    DialFailed {
        /// The peer.
        peer_id: PeerId,
        /// Why.
        error: String,
    },
}

/// What the bootstrapper asks the node to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BootstrapAction {
    /// Dial these peers now, in parallel.
    Dial(Vec<BootstrapPeer>),
    /// Run the first Kademlia bootstrap (a peer has answered).
    KadBootstrap,
    /// Persist these addresses as backup bootstrap peers.
    SaveBackupPeers(Vec<Multiaddr>),
}

/// Where the bootstrapper is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BootstrapPhase {
    /// A round of dials is under way.
    Connecting {
        /// Which attempt this is since the last success (1 = first).
        attempt: u32,
        /// Whether it dials the backup peers (the list failed).
        using_backup: bool,
    },
    /// The last round failed; the next one starts at `until`.
    BackingOff {
        /// When the next round starts.
        until: Instant,
        /// How many rounds have failed in a row.
        failed_rounds: u32,
    },
    /// At least `min_peer_threshold` peers are connected.
    Connected,
    /// Fewer peers than the threshold, but nothing left to dial until the next period.
    Waiting,
    /// No bootstrap or backup peers are known.
    NoPeersConfigured,
}

/// A snapshot of the bootstrapper, for `Node::bootstrap_status()`, logs and metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BootstrapStatus {
    /// The phase.
    pub phase: BootstrapPhase,
    /// Connected peers that are on the bootstrap list.
    pub connected_bootstrap_peers: Vec<PeerId>,
    /// All connected peers.
    pub connected_peers: usize,
    /// The last dial error or round failure.
    pub last_error: Option<String>,
    /// Rounds started.
    pub attempts: u64,
    /// Rounds that reached a peer.
    pub successes: u64,
    /// Rounds that reached nobody.
    pub failures: u64,
}

#[derive(Debug)]
struct Round {
    deadline: Instant,
    pending: HashSet<PeerId>,
    dialed: HashSet<PeerId>,
    using_backup: bool,
}

/// The bootstrap state machine. See the module docs.
#[derive(Debug)]
pub struct Bootstrapper {
    config: BootstrapConfig,
    list: BootstrapList,
    backup: Vec<BootstrapPeer>,
    connected: HashMap<PeerId, Option<Multiaddr>>,
    round: Option<Round>,
    next_round_at: Instant,
    failed_rounds: u32,
    kad_bootstrapped: bool,
    last_error: Option<String>,
    next_backup_save: Option<Instant>,
    attempts: u64,
    successes: u64,
    failures: u64,
    rng: StdRng,
}

impl Bootstrapper {
    /// A bootstrapper whose first round starts at the first tick. `backup` are the peers saved by
    /// an earlier run; `seed` drives the jitter (any value; fixed in tests).
    pub fn new(
        config: BootstrapConfig,
        list: BootstrapList,
        backup: Vec<BootstrapPeer>,
        now: Instant,
        seed: u64,
    ) -> Self {
        Bootstrapper {
            config,
            list,
            backup,
            connected: HashMap::new(),
            round: None,
            next_round_at: now,
            failed_rounds: 0,
            kad_bootstrapped: false,
            last_error: None,
            next_backup_save: None,
            attempts: 0,
            successes: 0,
            failures: 0,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// The configured list.
    pub fn list(&self) -> &BootstrapList {
        &self.list
    }

    /// Replaces the list (`bootstrap add/rm` take effect at the next round, as in Kubo).
    pub fn set_list(&mut self, list: BootstrapList) {
        self.list = list;
    }

    /// When the machine next needs a tick.
    pub fn next_wakeup(&self) -> Instant {
        let mut at = self.next_round_at;
        if let Some(r) = &self.round {
            at = at.min(r.deadline);
        }
        if let Some(b) = self.next_backup_save {
            at = at.min(b);
        }
        at
    }

    /// Feeds an event; returns what to do.
    pub fn handle(&mut self, event: BootstrapEvent, now: Instant) -> Vec<BootstrapAction> {
        let mut actions = Vec::new();
        match event {
            BootstrapEvent::Tick => {}
            BootstrapEvent::PeerConnected { peer_id, addr } => {
                self.connected.insert(peer_id, addr);
                let ours = self
                    .round
                    .as_ref()
                    .is_some_and(|r| r.dialed.contains(&peer_id))
                    || self.list.peers().iter().any(|p| p.peer_id == peer_id);
                if let Some(round) = self.round.take_if(|r| r.dialed.contains(&peer_id)) {
                    tracing::info!(%peer_id, backup = round.using_backup, "bootstrap: connected");
                    self.successes += 1;
                    self.failed_rounds = 0;
                    self.next_round_at = now + self.config.period;
                    self.next_backup_save.get_or_insert(now);
                }
                if ours && !self.kad_bootstrapped {
                    self.kad_bootstrapped = true;
                    actions.push(BootstrapAction::KadBootstrap);
                }
            }
            BootstrapEvent::PeerDisconnected { peer_id } => {
                self.connected.remove(&peer_id);
                // Below the threshold: go again now, unless a failed round is backing off.
                if self.round.is_none()
                    && self.connected.len() < self.config.min_peer_threshold
                    && self.failed_rounds == 0
                {
                    self.next_round_at = self.next_round_at.min(now);
                }
            }
            BootstrapEvent::DialFailed { peer_id, error } => {
                if let Some(round) = self.round.as_mut()
                    && round.pending.remove(&peer_id)
                {
                    self.last_error = Some(format!("dial {peer_id}: {error}"));
                    if round.pending.is_empty() {
                        actions.extend(self.round_failed(now, "every bootstrap peer failed"));
                    }
                }
            }
        }
        if self.round.as_ref().is_some_and(|r| now >= r.deadline) {
            let why = format!(
                "no bootstrap peer answered within {:?}",
                self.config.connection_timeout
            );
            actions.extend(self.round_failed(now, &why));
        }
        if self.round.is_none() && now >= self.next_round_at {
            actions.extend(self.start_round(now));
        }
        if let Some(at) = self.next_backup_save.filter(|at| now >= *at) {
            let addrs = self.backup_candidates();
            self.next_backup_save = Some(at.max(now) + self.config.backup_interval);
            if !addrs.is_empty() {
                actions.push(BootstrapAction::SaveBackupPeers(addrs));
            }
        }
        actions
    }

    fn start_round(&mut self, now: Instant) -> Vec<BootstrapAction> {
        if self.connected.len() >= self.config.min_peer_threshold {
            self.next_round_at = now + self.config.period;
            return Vec::new();
        }
        let candidates: Vec<BootstrapPeer> = self
            .list
            .peers()
            .iter()
            .filter(|p| !self.connected.contains_key(&p.peer_id))
            .cloned()
            .collect();
        if candidates.is_empty() {
            return self.start_backup_round(now).unwrap_or_else(|| {
                if self.list.is_empty() {
                    self.last_error
                        .get_or_insert_with(|| "no bootstrap peers configured".into());
                }
                self.next_round_at = now + self.config.period;
                Vec::new()
            });
        }
        self.begin(now, candidates, false)
    }

    fn start_backup_round(&mut self, now: Instant) -> Option<Vec<BootstrapAction>> {
        let listed: HashSet<PeerId> = self.list.peers().iter().map(|p| p.peer_id).collect();
        let backup: Vec<BootstrapPeer> = self
            .backup
            .iter()
            .filter(|p| !self.connected.contains_key(&p.peer_id) && !listed.contains(&p.peer_id))
            .cloned()
            .collect();
        (!backup.is_empty()).then(|| self.begin(now, backup, true))
    }

    fn begin(
        &mut self,
        now: Instant,
        peers: Vec<BootstrapPeer>,
        using_backup: bool,
    ) -> Vec<BootstrapAction> {
        self.attempts += 1;
        tracing::info!(
            peers = peers.len(),
            attempt = self.failed_rounds + 1,
            backup = using_backup,
            "bootstrap: dialing"
        );
        let ids: HashSet<PeerId> = peers.iter().map(|p| p.peer_id).collect();
        self.round = Some(Round {
            deadline: now + self.config.connection_timeout,
            pending: ids.clone(),
            dialed: ids,
            using_backup,
        });
        vec![BootstrapAction::Dial(peers)]
    }

    fn round_failed(&mut self, now: Instant, why: &str) -> Vec<BootstrapAction> {
        let Some(round) = self.round.take() else {
            return Vec::new();
        };
        // When every dial failed, the last dial error says more than the round's summary.
        self.last_error = Some(match self.last_error.take() {
            Some(dial_error) if round.pending.is_empty() => format!("{why} (last: {dial_error})"),
            _ => why.to_string(),
        });
        if !round.using_backup
            && let Some(actions) = self.start_backup_round(now)
        {
            return actions;
        }
        self.failures += 1;
        self.failed_rounds += 1;
        let base = self.config.backoff_base(self.failed_rounds);
        let jitter = if self.config.jitter > 0.0 {
            self.rng.random_range(0.0..self.config.jitter)
        } else {
            0.0
        };
        let wait = base.mul_f64(1.0 + jitter).min(self.config.max_backoff);
        self.next_round_at = now + wait;
        tracing::info!(failed_rounds = self.failed_rounds, retry_in = ?wait, "bootstrap: round failed: {why}");
        Vec::new()
    }

    fn backup_candidates(&self) -> Vec<Multiaddr> {
        let listed: HashSet<PeerId> = self.list.peers().iter().map(|p| p.peer_id).collect();
        let mut out: Vec<Multiaddr> = self
            .connected
            .iter()
            .filter(|(peer, _)| !listed.contains(peer))
            .filter_map(|(_, addr)| addr.clone())
            .take(self.config.max_backup_peers)
            .collect();
        // Top up from the previous backup list, as Kubo does.
        for p in &self.backup {
            if out.len() >= self.config.max_backup_peers {
                break;
            }
            if !out.contains(&p.addr) {
                out.push(p.addr.clone());
            }
        }
        out
    }

    /// The current state.
    pub fn status(&self, now: Instant) -> BootstrapStatus {
        let phase = if let Some(r) = &self.round {
            BootstrapPhase::Connecting {
                attempt: self.failed_rounds + 1,
                using_backup: r.using_backup,
            }
        } else if self.failed_rounds > 0 && self.next_round_at > now {
            BootstrapPhase::BackingOff {
                until: self.next_round_at,
                failed_rounds: self.failed_rounds,
            }
        } else if self.connected.len() >= self.config.min_peer_threshold {
            BootstrapPhase::Connected
        } else if self.list.is_empty() && self.backup.is_empty() {
            BootstrapPhase::NoPeersConfigured
        } else {
            BootstrapPhase::Waiting
        };
        BootstrapStatus {
            phase,
            connected_bootstrap_peers: self
                .list
                .peers()
                .iter()
                .map(|p| p.peer_id)
                .filter(|p| self.connected.contains_key(p))
                .collect(),
            connected_peers: self.connected.len(),
            last_error: self.last_error.clone(),
            attempts: self.attempts,
            successes: self.successes,
            failures: self.failures,
        }
    }
}

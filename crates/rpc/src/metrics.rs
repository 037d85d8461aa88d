//! Prometheus metrics served at `/debug/metrics/prometheus`: RPC requests by command and status
//! and their latency, blockstore writes and reads, peers, the bootstrapper's state, and the
//! runtime's alive task count. Node figures are read when scraped; whatever else was registered
//! (libp2p's) is served beside them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::http::StatusCode;
use cairn_node_core::Node;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    command: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CommandLabels {
    command: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    phase: String,
}

/// A counter that mirrors a monotonic value read from elsewhere.
#[derive(Debug, Default)]
struct Mirror {
    counter: Counter,
    last: AtomicU64,
}

impl Mirror {
    fn set(&self, value: u64) {
        let last = self.last.swap(value, Ordering::Relaxed);
        if value > last {
            self.counter.inc_by(value - last);
        }
    }
}

/// The RPC's metrics and the registry they live in.
#[derive(Debug)]
pub struct RpcMetrics {
    registry: Registry,
    node: Node,
    requests: Family<RequestLabels, Counter>,
    latency: Family<CommandLabels, Histogram, fn() -> Histogram>,
    in_flight: Family<CommandLabels, Gauge>,
    clients_gone: Counter,
    /// `/api/v0/cairn/events` clients connected now.
    pub event_clients: Gauge,
    /// `/api/v0/cairn/events` clients dropped because their queue was full.
    pub event_clients_dropped: Counter,
    /// Blocks served by `block/get`.
    pub block_gets: Counter,
    /// Bytes served by `block/get`.
    pub block_get_bytes: Counter,
    puts: Mirror,
    put_bytes: Mirror,
    deletes: Mirror,
    peers: Gauge,
    bootstrap_attempts: Mirror,
    bootstrap_successes: Mirror,
    bootstrap_failures: Mirror,
    bootstrap_peers: Gauge,
    bootstrap_phase: Family<PhaseLabels, Gauge>,
    alive_tasks: Gauge,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl RpcMetrics {
    /// Registers the RPC's metrics into `registry`.
    pub fn new(mut registry: Registry, node: Node) -> Self {
        let m = RpcMetrics {
            registry: Registry::default(),
            node,
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            in_flight: Family::default(),
            clients_gone: Counter::default(),
            event_clients: Gauge::default(),
            event_clients_dropped: Counter::default(),
            block_gets: Counter::default(),
            block_get_bytes: Counter::default(),
            puts: Mirror::default(),
            put_bytes: Mirror::default(),
            deletes: Mirror::default(),
            peers: Gauge::default(),
            bootstrap_attempts: Mirror::default(),
            bootstrap_successes: Mirror::default(),
            bootstrap_failures: Mirror::default(),
            bootstrap_peers: Gauge::default(),
            bootstrap_phase: Family::default(),
            alive_tasks: Gauge::default(),
        };
        let r = registry.sub_registry_with_prefix("cairn");
        r.register(
            "rpc_requests",
            "RPC requests by command and HTTP status",
            m.requests.clone(),
        );
        r.register(
            "rpc_request_duration_seconds",
            "RPC request latency by command",
            m.latency.clone(),
        );
        r.register(
            "rpc_requests_in_flight",
            "RPC commands running now, streams included, by command",
            m.in_flight.clone(),
        );
        r.register(
            "rpc_clients_gone",
            "RPC requests whose client went away before the answer ended",
            m.clients_gone.clone(),
        );
        r.register(
            "rpc_event_clients",
            "Clients of the /api/v0/cairn/events WebSocket connected now",
            m.event_clients.clone(),
        );
        r.register(
            "rpc_event_clients_dropped",
            "Event stream clients dropped because they did not read (queue full)",
            m.event_clients_dropped.clone(),
        );
        r.register(
            "blockstore_gets",
            "Blocks served by block/get",
            m.block_gets.clone(),
        );
        r.register(
            "blockstore_get_bytes",
            "Bytes served by block/get",
            m.block_get_bytes.clone(),
        );
        r.register(
            "blockstore_puts",
            "Blocks newly written to the blockstore",
            m.puts.counter.clone(),
        );
        r.register(
            "blockstore_put_bytes",
            "Bytes newly written to the blockstore",
            m.put_bytes.counter.clone(),
        );
        r.register(
            "blockstore_deletes",
            "Blocks removed from the blockstore (delete and GC)",
            m.deletes.counter.clone(),
        );
        r.register("peers", "Connected peers", m.peers.clone());
        r.register(
            "bootstrap_attempts",
            "Bootstrap rounds started",
            m.bootstrap_attempts.counter.clone(),
        );
        r.register(
            "bootstrap_successes",
            "Bootstrap rounds that reached a peer",
            m.bootstrap_successes.counter.clone(),
        );
        r.register(
            "bootstrap_failures",
            "Bootstrap rounds that reached nobody",
            m.bootstrap_failures.counter.clone(),
        );
        r.register(
            "bootstrap_connected_peers",
            "Connected peers from the bootstrap list",
            m.bootstrap_peers.clone(),
        );
        r.register(
            "bootstrap_phase",
            "1 for the bootstrapper's current phase",
            m.bootstrap_phase.clone(),
        );
        r.register(
            "runtime_alive_tasks",
            "Tasks alive on the daemon's tokio runtime (spawned and not yet finished)",
            m.alive_tasks.clone(),
        );
        RpcMetrics { registry, ..m }
    }

    /// Counts a finished request.
    pub fn record(&self, command: &str, status: StatusCode, started: Instant) {
        let command = command.to_string();
        self.requests
            .get_or_create(&RequestLabels {
                command: command.clone(),
                status: status.as_u16(),
            })
            .inc();
        self.latency
            .get_or_create(&CommandLabels { command })
            .observe(started.elapsed().as_secs_f64());
    }

    /// Counts `command` as running until the returned guard is dropped (when its answer,
    /// stream included, has ended or been dropped).
    pub(crate) fn in_flight(&self, command: &str) -> InFlight {
        let gauge = self
            .in_flight
            .get_or_create(&CommandLabels {
                command: command.to_string(),
            })
            .clone();
        gauge.inc();
        InFlight(gauge)
    }

    /// Counts a request whose client went away before its answer ended.
    pub(crate) fn client_gone(&self) {
        self.clients_gone.inc();
    }

    /// Reads the node's figures and encodes everything in the Prometheus text format.
    pub async fn encode(&self) -> String {
        if let Ok(store) = self.node.blockstore() {
            let c = store.op_counts();
            self.puts.set(c.puts);
            self.put_bytes.set(c.put_bytes);
            self.deletes.set(c.deletes);
        }
        if let Ok(peers) = self.node.peers().await {
            self.peers.set(peers.len() as i64);
        }
        if let Ok(s) = self.node.bootstrap_status().await {
            self.bootstrap_attempts.set(s.attempts);
            self.bootstrap_successes.set(s.successes);
            self.bootstrap_failures.set(s.failures);
            self.bootstrap_peers
                .set(s.connected_bootstrap_peers.len() as i64);
            let current = crate::commands::phase_name(&s.phase);
            for phase in [
                "connecting",
                "backing_off",
                "connected",
                "waiting",
                "no_peers_configured",
            ] {
                self.bootstrap_phase
                    .get_or_create(&PhaseLabels {
                        phase: phase.into(),
                    })
                    .set(i64::from(phase == current));
            }
        }
        // Stable since tokio 1.39 (no `tokio_unstable` needed). A figure that only grows under a
        // steady load is a task leak: the soak bench (`benches/soak.rs`) watches it.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let alive = handle.metrics().num_alive_tasks();
            self.alive_tasks
                .set(i64::try_from(alive).unwrap_or(i64::MAX));
        }
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode_registry(&mut out, &self.registry)
        {
            tracing::error!("encoding metrics: {e}");
        }
        out.push_str(&self.node.libp2p_metrics());
        let _ = prometheus_client::encoding::text::encode_eof(&mut out);
        out
    }
}

/// One running command, counted in `cairn_rpc_requests_in_flight` until dropped.
#[derive(Debug)]
pub(crate) struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

//! Services under supervision: each long-running part of the daemon (an RPC listener, the
//! metrics listener) runs as its own tokio task, and a supervisor restarts it when it fails — its
//! future returns an error, ends on its own, or panics — with exponential backoff, while the
//! other services keep serving. A service that keeps failing is reported as
//! [`ServiceState::Failed`] and retried only slowly from then on.
//!
//! Parts that must not be restarted (the swarm: restarting it would change the node under every
//! handle) are only *reported* with [`Services::set`].
//!
//! Every service's state, restart count and last error live in one shared [`Services`] table,
//! which `GET /health?verbose` shows and `cairn_service_restarts_total` counts. Kubo has no
//! equivalent (its HTTP servers end the daemon when they fail); the states follow the usual
//! orchestrator vocabulary.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Serialize;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// What a service is doing now, as `/health?verbose` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ServiceState {
    /// Started, not serving yet (e.g. binding its listener).
    Starting,
    /// Serving.
    Ok,
    /// Serving, but something it depends on is impaired. Used for the node as a whole: some
    /// service is restarting or failed while others serve.
    Degraded,
    /// Failed and waiting out its backoff before the next attempt.
    Restarting,
    /// Failed too often in a short time (see [`Policy::max_failures`]); retried only every
    /// [`Policy::max_backoff`], or never for a reported-only service such as the swarm.
    Failed,
    /// Shutdown has begun and the service has not ended yet.
    Stopping,
    /// Ended after shutdown.
    Stopped,
}

impl fmt::Display for ServiceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            ServiceState::Starting => "starting",
            ServiceState::Ok => "ok",
            ServiceState::Degraded => "degraded",
            ServiceState::Restarting => "restarting",
            ServiceState::Failed => "failed",
            ServiceState::Stopping => "stopping",
            ServiceState::Stopped => "stopped",
        };
        f.write_str(s)
    }
}

/// One service's row in the table, as `/health?verbose` shows it (Kubo-style PascalCase keys).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceStatus {
    /// The service's name, e.g. `api /ip4/127.0.0.1/tcp/5001`, `metrics ...`, `swarm`.
    pub name: String,
    /// Its state now.
    pub state: ServiceState,
    /// How many times it failed and was (or is about to be) restarted.
    pub restarts: u64,
    /// The cause of its last failure, if it ever failed.
    pub last_error: Option<String>,
}

/// Why a service attempt ended badly; its text is logged and shown as `LastError`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The service could not start (e.g. binding its address failed).
    #[error("could not start: {0}")]
    Start(#[source] std::io::Error),
    /// The service's I/O failed while it ran (e.g. its listener's `accept` failed for good).
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The service returned without being asked to stop.
    #[error("ended unexpectedly")]
    Ended,
    /// The service's task panicked.
    #[error("panicked: {0}")]
    Panicked(String),
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabels {
    service: String,
}

/// The shared table of services and their metrics. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Services {
    table: Arc<Mutex<BTreeMap<String, ServiceStatus>>>,
    restarts: Family<ServiceLabels, Counter>,
    up: Family<ServiceLabels, Gauge>,
    /// The node whose event bus hears of state changes (see [`Services::publish_to`]).
    bus: Arc<std::sync::OnceLock<cairn_node_core::Node>>,
}

impl Services {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `cairn_service_restarts_total{service}` and `cairn_service_up{service}` in
    /// `registry`. The same table may be registered in several registries (one per RPC router).
    pub fn register_metrics(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("cairn");
        r.register(
            "service_restarts",
            "Failures of a supervised daemon service (RPC or metrics listener, swarm), each followed by a restart unless the service is reported only",
            self.restarts.clone(),
        );
        r.register(
            "service_up",
            "1 while a daemon service is serving (state ok), else 0",
            self.up.clone(),
        );
    }

    /// Publishes every later state change on `node`'s event bus as a
    /// [`cairn_node_core::NodeEvent::ServiceStateChanged`] (the event stream's `service_state`
    /// events). Only the first node given is used.
    pub fn publish_to(&self, node: cairn_node_core::Node) {
        let _ = self.bus.set(node);
    }

    fn update(&self, name: &str, f: impl FnOnce(&mut ServiceStatus)) {
        let mut table = self.table.lock();
        let row = table
            .entry(name.to_string())
            .or_insert_with(|| ServiceStatus {
                name: name.to_string(),
                state: ServiceState::Starting,
                restarts: 0,
                last_error: None,
            });
        let before = (row.state, row.last_error.clone());
        f(row);
        if let Some(node) = self.bus.get()
            && before != (row.state, row.last_error.clone())
        {
            node.publish_event(cairn_node_core::NodeEvent::ServiceStateChanged {
                service: row.name.clone(),
                state: row.state.to_string(),
                error: row
                    .last_error
                    .clone()
                    .filter(|_| row.state != ServiceState::Ok),
            });
        }
        let labels = ServiceLabels {
            service: name.to_string(),
        };
        self.up
            .get_or_create(&labels)
            .set(i64::from(row.state == ServiceState::Ok));
        // Every service's counter exists from the start, at 0, so `rate()` has a baseline.
        let _ = self.restarts.get_or_create(&labels);
    }

    /// Sets a service's state (adding the service if it is new).
    pub fn set(&self, name: &str, state: ServiceState) {
        self.update(name, |row| row.state = state);
    }

    /// Records a failure of `name`: counts it, keeps its cause and sets `state`.
    pub fn fail(&self, name: &str, error: &str, state: ServiceState) {
        self.restarts
            .get_or_create(&ServiceLabels {
                service: name.to_string(),
            })
            .inc();
        self.update(name, |row| {
            row.state = state;
            row.restarts += 1;
            row.last_error = Some(error.to_string());
        });
    }

    /// One service's row.
    pub fn get(&self, name: &str) -> Option<ServiceStatus> {
        self.table.lock().get(name).cloned()
    }

    /// Every service, by name.
    pub fn snapshot(&self) -> Vec<ServiceStatus> {
        self.table.lock().values().cloned().collect()
    }

    /// Marks every service that has not ended as [`ServiceState::Stopping`].
    pub fn stopping(&self) {
        let names: Vec<String> = self.table.lock().keys().cloned().collect();
        for name in names {
            self.update(&name, |row| {
                if row.state != ServiceState::Stopped {
                    row.state = ServiceState::Stopping;
                }
            });
        }
    }

    /// The names of the services that have not stopped yet.
    pub fn not_stopped(&self) -> Vec<String> {
        self.table
            .lock()
            .values()
            .filter(|s| s.state != ServiceState::Stopped)
            .map(|s| s.name.clone())
            .collect()
    }

    /// The node's state as a whole: `ok` when every service is, `stopping` once any is,
    /// `degraded` while some service is restarting or failed (or still starting), `starting`
    /// while there is no service yet.
    pub fn overall(&self) -> ServiceState {
        let table = self.table.lock();
        if table.is_empty() {
            return ServiceState::Starting;
        }
        if table
            .values()
            .any(|s| matches!(s.state, ServiceState::Stopping | ServiceState::Stopped))
        {
            return ServiceState::Stopping;
        }
        if table.values().all(|s| s.state == ServiceState::Ok) {
            ServiceState::Ok
        } else {
            ServiceState::Degraded
        }
    }
}

/// How a supervisor restarts its service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// The wait before the first restart; doubled after every failure up to `max_backoff`.
    pub initial_backoff: Duration,
    /// The longest wait between restarts, also the retry interval of a failed service.
    pub max_backoff: Duration,
    /// This many failures within `failure_window` mark the service [`ServiceState::Failed`].
    pub max_failures: usize,
    /// See `max_failures`.
    pub failure_window: Duration,
    /// An attempt that served this long without failing resets the backoff to
    /// `initial_backoff`.
    pub healthy_after: Duration,
}

impl Default for Policy {
    /// 100 ms doubling to 30 s; failed after 5 failures within a minute; a minute of serving
    /// forgives earlier failures.
    fn default() -> Self {
        Policy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(30),
            max_failures: 5,
            failure_window: Duration::from_secs(60),
            healthy_after: Duration::from_secs(60),
        }
    }
}

/// Exponential backoff: `initial`, doubled at each [`Backoff::next_wait`], capped at `max`.
#[derive(Clone, Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// A backoff starting at `initial`, never longer than `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max,
            next: initial.min(max),
        }
    }

    /// The wait to use now; the following one is twice as long (up to the cap).
    pub fn next_wait(&mut self) -> Duration {
        let now = self.next;
        self.next = (self.next * 2).min(self.max);
        now
    }

    /// Back to the initial wait.
    pub fn reset(&mut self) {
        self.next = self.initial.min(self.max);
    }
}

/// What a service attempt gets: its name, the table, and the token that asks it to stop.
#[derive(Clone, Debug)]
pub struct ServiceContext {
    name: String,
    services: Services,
    stop: CancellationToken,
}

impl ServiceContext {
    /// Marks the service as serving ([`ServiceState::Ok`]), e.g. once its listener is bound.
    pub fn ready(&self) {
        self.services.set(&self.name, ServiceState::Ok);
    }

    /// Tripped when the service should stop; it should then end with `Ok(())`.
    pub fn stop_token(&self) -> &CancellationToken {
        &self.stop
    }

    /// The service's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Runs `make`'s futures as the service `name` until `stop` is tripped: each attempt in its own
/// task (so a panic is caught), restarted after a failure with [`Policy`]'s backoff. The returned
/// handle ends once the current attempt has ended after `stop`; the service is then
/// [`ServiceState::Stopped`].
///
/// An attempt should call [`ServiceContext::ready`] once it serves, and return `Ok(())` when
/// its stop token is tripped; returning at any other time counts as a failure
/// ([`ServiceError::Ended`]).
pub fn supervise<F, Fut>(
    services: &Services,
    name: impl Into<String>,
    policy: Policy,
    stop: CancellationToken,
    mut make: F,
) -> JoinHandle<()>
where
    F: FnMut(ServiceContext) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), ServiceError>> + Send + 'static,
{
    let name = name.into();
    let services = services.clone();
    services.set(&name, ServiceState::Starting);
    tokio::spawn(async move {
        let mut backoff = Backoff::new(policy.initial_backoff, policy.max_backoff);
        let mut failures: VecDeque<Instant> = VecDeque::new();
        loop {
            let ctx = ServiceContext {
                name: name.clone(),
                services: services.clone(),
                stop: stop.clone(),
            };
            let started = Instant::now();
            let mut attempt = tokio::spawn(make(ctx));
            // While stopping, wait for the attempt to end on its own: the caller's deadline
            // decides how long that may take.
            let outcome = tokio::select! {
                r = &mut attempt => r,
                _ = stop.cancelled() => {
                    services.set(&name, ServiceState::Stopping);
                    attempt.await
                }
            };
            let error = match outcome {
                Ok(Ok(())) if stop.is_cancelled() => break,
                Ok(Ok(())) => ServiceError::Ended,
                Ok(Err(e)) => e,
                Err(join) if join.is_panic() => ServiceError::Panicked(panic_text(join)),
                Err(join) => ServiceError::Panicked(join.to_string()),
            };
            if stop.is_cancelled() {
                tracing::warn!(service = %name, "service ended with an error while stopping: {error}");
                break;
            }
            let now = Instant::now();
            if now.duration_since(started) >= policy.healthy_after {
                backoff.reset();
            }
            failures.push_back(now);
            while failures
                .front()
                .is_some_and(|t| now.duration_since(*t) > policy.failure_window)
            {
                failures.pop_front();
            }
            let (state, wait) = if failures.len() >= policy.max_failures {
                (ServiceState::Failed, policy.max_backoff)
            } else {
                (ServiceState::Restarting, backoff.next_wait())
            };
            services.fail(&name, &error.to_string(), state);
            if state == ServiceState::Failed {
                tracing::error!(
                    service = %name,
                    "service failed {} times within {:?}: {error}; retrying every {:?}",
                    failures.len(),
                    policy.failure_window,
                    wait
                );
            } else {
                tracing::warn!(service = %name, "service failed: {error}; restarting in {wait:?}");
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.cancelled() => break,
            }
            if state != ServiceState::Failed {
                services.set(&name, ServiceState::Starting);
            }
        }
        services.set(&name, ServiceState::Stopped);
    })
}

fn panic_text(join: tokio::task::JoinError) -> String {
    let payload = join.into_panic();
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn fast() -> Policy {
        Policy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(30),
            max_failures: 5,
            failure_window: Duration::from_secs(60),
            healthy_after: Duration::from_secs(60),
        }
    }

    /// Polls the (paused) clock forward until `cond` holds, failing after `limit` of test time.
    async fn until(limit: Duration, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + limit;
        while !cond() {
            assert!(
                Instant::now() < deadline,
                "condition not met within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(30));
        let waits: Vec<u128> = (0..12).map(|_| b.next_wait().as_millis()).collect();
        assert_eq!(
            waits,
            [
                100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000, 30000
            ]
        );
        b.reset();
        assert_eq!(b.next_wait(), Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn a_panicking_service_is_restarted() {
        let services = Services::new();
        let runs = Arc::new(AtomicUsize::new(0));
        let stop = CancellationToken::new();
        let r = runs.clone();
        let handle = supervise(&services, "svc", fast(), stop.clone(), move |ctx| {
            let n = r.fetch_add(1, Ordering::SeqCst);
            async move {
                ctx.ready();
                if n == 0 {
                    panic!("boom");
                }
                ctx.stop_token().cancelled().await;
                Ok(())
            }
        });
        until(Duration::from_secs(5), || runs.load(Ordering::SeqCst) == 2).await;
        until(Duration::from_secs(5), || {
            services.get("svc").unwrap().state == ServiceState::Ok
        })
        .await;
        let row = services.get("svc").unwrap();
        assert_eq!(row.restarts, 1);
        assert_eq!(row.last_error.as_deref(), Some("panicked: boom"));
        stop.cancel();
        handle.await.unwrap();
        assert_eq!(services.get("svc").unwrap().state, ServiceState::Stopped);
    }

    #[tokio::test(start_paused = true)]
    async fn restarts_back_off_and_give_up_after_max_failures() {
        let services = Services::new();
        let starts = Arc::new(Mutex::new(Vec::<Instant>::new()));
        let stop = CancellationToken::new();
        let s = starts.clone();
        let t0 = Instant::now();
        let handle = supervise(&services, "svc", fast(), stop.clone(), move |_ctx| {
            s.lock().push(Instant::now());
            async { Err(ServiceError::Io(std::io::Error::other("accept broke"))) }
        });
        // Five failures: restarts after 100, 200, 400, 800 ms, then `failed`.
        until(Duration::from_secs(10), || {
            services.get("svc").unwrap().state == ServiceState::Failed
        })
        .await;
        let gaps: Vec<u128> = starts
            .lock()
            .windows(2)
            .map(|w| (w[1] - w[0]).as_millis())
            .collect();
        assert_eq!(gaps, [100, 200, 400, 800]);
        let row = services.get("svc").unwrap();
        assert_eq!(row.restarts, 5);
        assert_eq!(row.last_error.as_deref(), Some("accept broke"));
        // Failed: the next attempt comes only after the long wait, not at full speed.
        tokio::time::sleep(Duration::from_secs(29)).await;
        assert_eq!(starts.lock().len(), 5);
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(starts.lock().len(), 6);
        assert!(t0.elapsed() >= Duration::from_secs(31));
        stop.cancel();
        handle.await.unwrap();
        assert_eq!(services.get("svc").unwrap().state, ServiceState::Stopped);
    }

    #[tokio::test(start_paused = true)]
    async fn a_service_that_ends_on_its_own_counts_as_failed_and_overall_is_degraded() {
        let services = Services::new();
        services.set("swarm", ServiceState::Ok);
        let stop = CancellationToken::new();
        let handle = supervise(&services, "svc", fast(), stop.clone(), |ctx| async move {
            ctx.ready();
            Ok(())
        });
        until(Duration::from_secs(1), || {
            services.get("svc").unwrap().restarts >= 1
        })
        .await;
        assert_eq!(
            services.get("svc").unwrap().last_error.as_deref(),
            Some("ended unexpectedly")
        );
        assert_eq!(services.overall(), ServiceState::Degraded);
        stop.cancel();
        handle.await.unwrap();
        services.stopping();
        assert_eq!(services.overall(), ServiceState::Stopping);
        assert_eq!(services.not_stopped(), ["swarm"]);
    }

    #[tokio::test]
    async fn restarts_are_counted_in_metrics() {
        let services = Services::new();
        let mut registry = Registry::default();
        services.register_metrics(&mut registry);
        services.set("api", ServiceState::Ok);
        services.fail("metrics", "accept failed", ServiceState::Restarting);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
        assert!(out.contains("# HELP cairn_service_restarts Failures of a supervised"));
        assert!(out.contains("cairn_service_restarts_total{service=\"metrics\"} 1"));
        assert!(out.contains("cairn_service_restarts_total{service=\"api\"} 0"));
        assert!(out.contains("cairn_service_up{service=\"api\"} 1"));
        assert!(out.contains("cairn_service_up{service=\"metrics\"} 0"));
    }
}

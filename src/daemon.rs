//! `cairn daemon`: the node and its RPC, run the way Kubo's daemon runs: it prints its swarm and
//! RPC addresses and `Daemon is ready`, writes the repo's `api` file, tells systemd `READY=1`
//! (and `STOPPING=1`, and `WATCHDOG=1` when asked), takes its RPC listeners from systemd socket
//! activation when given, and stops along one path: `cairn shutdown`, `/api/v0/shutdown`,
//! SIGINT, SIGTERM and SIGHUP all start the same shutdown. A second signal during shutdown exits
//! at once with status 255, as Kubo does.
//!
//! Its services — each RPC listener, the optional metrics listener (`Cairn.Metrics.Address`) —
//! run under [`cairn::rpc::supervisor`], restarted with backoff when they fail; the swarm is
//! reported; so does the watched import folder (`Cairn.Watch`, `--watch DIR`, see
//! `crate::watch`). Shutdown (see `shut_down`) is bounded by Kubo's `Internal.ShutdownTimeout`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use cairn::node::config::Profile;
use cairn::node::{CancellationToken, Node, Repo};
use cairn::rpc::supervisor::{self, Policy, ServiceError, ServiceState, Services};
use cairn::rpc::{InFlightRequests, ServeOptions};
use sd_notify::NotifyState;
use tokio::signal::unix::{SignalKind, signal};

use crate::cli::DaemonArgs;

/// Socket names that carry the RPC (Kubo's `io.ipfs.api`, or the unit's own name).
fn is_api_name(name: &str) -> bool {
    matches!(name, "io.ipfs.api" | "cairn.api" | "api") || name.ends_with("api.socket")
}

/// The listeners systemd handed over, if `LISTEN_PID` is this process and `LISTEN_FDS` is set.
/// Bad values are ignored with a warning; an fd that is not a TCP socket is an error.
pub fn activated_listeners() -> anyhow::Result<Option<Vec<std::net::TcpListener>>> {
    let Ok(fds) = std::env::var("LISTEN_FDS") else {
        return Ok(None);
    };
    let count: usize = match fds.trim().parse() {
        Ok(n) => n,
        Err(_) => {
            tracing::warn!("LISTEN_FDS={fds:?} is not a number; ignoring socket activation");
            return Ok(None);
        }
    };
    let pid = std::env::var("LISTEN_PID").unwrap_or_default();
    if pid.trim().parse::<u32>().ok() != Some(std::process::id()) {
        tracing::warn!(
            "LISTEN_PID={pid:?} is not this process ({}); ignoring socket activation",
            std::process::id()
        );
        return Ok(None);
    }
    let names: Vec<String> = std::env::var("LISTEN_FDNAMES")
        .map(|n| n.split(':').map(String::from).collect())
        .unwrap_or_default();
    let mut fds = listenfd::ListenFd::from_env();
    let mut listeners = Vec::new();
    for idx in 0..count {
        let fd = 3 + idx;
        if let Some(name) = names.get(idx).filter(|n| !n.is_empty())
            && !is_api_name(name)
        {
            tracing::warn!(
                fd,
                name,
                "socket from systemd is not an RPC socket; not using it"
            );
            continue;
        }
        let listener = fds
            .take_tcp_listener(idx)
            .with_context(|| format!("socket-activation fd {fd} is not a listening TCP socket"))?
            .with_context(|| format!("socket-activation fd {fd} was already taken"))?;
        listener.set_nonblocking(true)?;
        listeners.push(listener);
    }
    if listeners.is_empty() {
        tracing::warn!(
            "socket activation handed over no RPC socket; binding Addresses.API instead"
        );
        return Ok(None);
    }
    Ok(Some(listeners))
}

/// `/ip4/127.0.0.1/tcp/5001` → `127.0.0.1:5001`.
fn socket_addr(multiaddr: &str) -> anyhow::Result<SocketAddr> {
    let parts: Vec<&str> = multiaddr.split('/').collect();
    match parts.as_slice() {
        ["", "ip4", ip, "tcp", port] => Ok(format!("{ip}:{port}").parse()?),
        ["", "ip6", ip, "tcp", port] => Ok(format!("[{ip}]:{port}").parse()?),
        _ => bail!("{multiaddr:?} is not an /ip4/.../tcp/... or /ip6/.../tcp/... address"),
    }
}

fn multiaddr_of(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => format!("/ip4/{}/tcp/{}", a.ip(), a.port()),
        SocketAddr::V6(a) => format!("/ip6/{}/tcp/{}", a.ip(), a.port()),
    }
}

fn notify(state: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(state) {
        tracing::debug!("sd_notify: {e}");
    }
}

/// `--enable-gc`, as Kubo's `corerepo.PeriodicGC`: every `Datastore.GCPeriod`, if the store takes
/// more than `StorageGCWatermark` percent of `StorageMax` on disk, collect garbage. The task ends
/// with the node. Bad values are refused at start, as Kubo refuses them.
fn spawn_periodic_gc(
    node: &cairn::node::Node,
    datastore: &cairn::node::config::DatastoreConfig,
) -> anyhow::Result<()> {
    let period = datastore
        .gc_period()
        .filter(|p| !p.is_zero())
        .with_context(|| {
            format!(
                "Datastore.GCPeriod {:?} is not a duration",
                datastore.gc_period
            )
        })?;
    let watermark = datastore.gc_watermark_bytes().with_context(|| {
        format!(
            "Datastore.StorageMax {:?} is not a size",
            datastore.storage_max
        )
    })?;
    out!("Garbage collection every {period:?} above {watermark} bytes");
    let node = node.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        loop {
            tick.tick().await;
            let Ok(store) = node.blockstore() else { return };
            let run = tokio::task::spawn_blocking(
                move || -> Result<_, cairn::blockstore::BlockstoreError> {
                    let used = store.disk_usage()?;
                    if used <= watermark {
                        return Ok((used, None));
                    }
                    Ok((used, Some(store.gc_each(|_, _| {})?)))
                },
            );
            match run.await {
                Ok(Ok((used, Some(s)))) => tracing::info!(
                    "periodic GC: repo was {used} bytes (watermark {watermark}); removed {} blocks, {} bytes",
                    s.removed,
                    s.freed_bytes
                ),
                Ok(Ok((used, None))) => {
                    tracing::debug!("periodic GC skipped: {used} bytes <= watermark {watermark}")
                }
                Ok(Err(e)) => tracing::error!("periodic GC failed: {e}"),
                Err(e) => tracing::error!("periodic GC task failed: {e}"),
            }
        }
    });
    Ok(())
}

/// Runs the daemon until it is shut down; returns the exit code.
/// Raises the soft open-file limit to the hard one. Every RPC connection costs the daemon two
/// descriptors (its socket and the close watch's duplicate, see `cairn_rpc::client_gone`), so the
/// soft limit many shells and systemd units start with (1,024) would refuse a few hundred clients
/// with `EMFILE`, below `Cairn.Limits.MaxConnections`. Go raises the soft limit to the hard one in
/// every program since 1.19, so Kubo serves them; so does cairn. Failure is not fatal: the daemon
/// runs with the limit it was given.
fn raise_fd_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current.is_some() && limit.current != limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => tracing::debug!(
                "open-file limit raised from {:?} to {:?}",
                limit.current,
                limit.maximum
            ),
            Err(e) => tracing::warn!("could not raise the open-file limit: {e}"),
        }
    }
}

pub async fn run(
    repo: PathBuf,
    args: DaemonArgs,
    logs: cairn::node::LogBus,
) -> anyhow::Result<i32> {
    raise_fd_limit();
    out!("Initializing daemon...");
    out!("cairn version: {}", cairn::VERSION);
    out!("Repo directory: {}", repo.display());
    if !Repo::is_initialized(&repo) {
        if !args.init {
            bail!(
                "no cairn repo at {}: run `cairn init` or `cairn daemon --init`",
                repo.display()
            );
        }
        let profiles = args
            .init_profile
            .iter()
            .map(|p| p.parse())
            .collect::<Result<Vec<Profile>, _>>()?;
        let config = Repo::init(&repo, &profiles)?;
        out!(
            "initialized a new repo; peer identity: {}",
            config.identity.peer_id
        );
    }
    let mut config = cairn::node::repo::read_config(&repo)?;
    report_config(&config)?;
    if args.enable_pubsub_experiment {
        config.pubsub.enabled = Some(true);
    }
    // Take the RPC sockets before anything else can fail, so systemd's fds are not left dangling.
    let activated = activated_listeners()?;
    let mut builder = Node::builder()
        .repo(&repo)
        .gossipsub(config.pubsub_enabled());
    if args.enable_namesys_pubsub {
        builder = builder.ipns_pubsub(true);
    }
    let node = builder.build().await?;
    let token = node.shutdown_token();
    // Transport addresses, each once, shaped where the RPC shapes them (as Kubo prints them).
    for addr in cairn::rpc::addrs::transports(&node.listen_addrs().await?) {
        out!("Swarm listening on {addr}");
    }
    for addr in cairn::rpc::addrs::transports(&node.external_addrs().await?) {
        out!("Swarm announcing {addr}");
    }
    // A bad certificate stops the start, as a busy port does; it is loaded before any listener
    // accepts.
    let tls = match cairn::rpc::tls::TlsConfig::from_config(&config)? {
        Some(files) => {
            let acceptor = cairn::rpc::tls::ReloadingAcceptor::new(&files)?;
            tracing::info!(
                cert = %files.cert_path.display(),
                "RPC API served over TLS; the certificate is reloaded when its files change"
            );
            Some(std::sync::Arc::new(acceptor))
        }
        None => None,
    };
    let settings = DaemonSettings::from_config(&config)?;
    let listeners = match activated {
        Some(l) => l,
        None => {
            let mut l = Vec::new();
            for a in &config.addresses.api.0 {
                let addr = socket_addr(a).context("Addresses.API")?;
                l.push(
                    std::net::TcpListener::bind(addr)
                        .with_context(|| format!("binding the RPC to {a}"))?,
                );
            }
            l
        }
    };
    if listeners.is_empty() {
        bail!("no RPC address: set Addresses.API");
    }
    // The metrics listener is bound before anything is announced, so a bad address fails the
    // start instead of a service that never comes up.
    let metrics_listener = match &settings.metrics_address {
        Some(a) => Some(
            std::net::TcpListener::bind(socket_addr(a).context("Cairn.Metrics.Address")?)
                .with_context(|| format!("binding the metrics server to {a}"))?,
        ),
        None => None,
    };

    // The gateway's listeners (`Addresses.Gateway`; none when the list is empty), bound before
    // anything is announced, as the RPC's are. A malformed `Gateway` section stops the start.
    let gateway_config = cairn::gateway::GatewayConfig::from_config(&config)?;
    let mut gateway_listeners = Vec::new();
    for a in &config.addresses.gateway.0 {
        let addr = socket_addr(a).context("Addresses.Gateway")?;
        gateway_listeners.push(
            std::net::TcpListener::bind(addr)
                .with_context(|| format!("binding the gateway to {a}"))?,
        );
    }
    // One set of gateway metrics, shown by every RPC listener's `/debug/metrics/prometheus`.
    let gateway_metrics = cairn::gateway::GatewayMetrics::default();

    // Shutdown goes in steps, each with its own token (see `shut_down`): `requested` is what
    // signals and `/api/v0/shutdown` trip (from then on `/health` answers 503); the listeners
    // close on `stop_accepting`; connections still open at the end of the grace are closed on
    // `abort`; the node's own token stops the swarm last.
    let requested = CancellationToken::new();
    let stop_accepting = CancellationToken::new();
    let abort = CancellationToken::new();
    let services = Services::new();
    // State changes reach the event stream (`service_state` events).
    services.publish_to(node.clone());
    let requests = InFlightRequests::new();
    let mut supervised = Vec::new();
    // The watched import folder (`Cairn.Watch`, `--watch DIR`), stopped with the listeners.
    let watch = crate::watch::start(
        &node,
        &config,
        &repo,
        args.watch.clone(),
        &services,
        stop_accepting.clone(),
    )?
    .map(|(handle, task)| {
        supervised.push(task);
        handle
    });
    let mut api_addr = None;
    let mut metrics_router = None;
    for listener in listeners {
        listener.set_nonblocking(true)?;
        let local = listener.local_addr()?;
        let mut builder = cairn::rpc::ApiBuilder::new(node.clone(), config.clone())
            .repo_path(&repo)
            .port(local.port())
            .log_bus(logs.clone())
            .shutdown_token(requested.clone())
            .services(services.clone())
            .requests(requests.clone())
            .registry({
                let mut registry = prometheus_client::registry::Registry::default();
                gateway_metrics.register(&mut registry);
                registry
            });
        if let Some(tls) = &tls {
            builder = builder.tls(tls.clone());
        }
        if let Some(watch) = &watch {
            builder = builder.watch(watch.clone());
        }
        // `Cairn.Limits`, `Cairn.AuditLog`, and TLS when `Cairn.TLS` is set (the options carry
        // the acceptor).
        let (router, metrics, options) = builder.build_server_with_metrics()?;
        metrics_router.get_or_insert((metrics, options.clone()));
        let name = format!("api {}", multiaddr_of(local));
        supervised.push(supervise_listener(
            &services,
            name,
            listener,
            router,
            stop_accepting.clone(),
            ServeOptions {
                abort: abort.clone(),
                ..options
            },
        ));
        out!("RPC API server listening on {}", multiaddr_of(local));
        api_addr.get_or_insert(local);
    }
    // The gateway is served with the API's listener limits.
    let api_serve_options = metrics_router.as_ref().map(|(_, o)| o.clone());
    if let (Some(listener), Some((router, api_options))) = (metrics_listener, metrics_router) {
        listener.set_nonblocking(true)?;
        let local = listener.local_addr()?;
        supervised.push(supervise_listener(
            &services,
            format!("metrics {}", multiaddr_of(local)),
            listener,
            router,
            stop_accepting.clone(),
            // The API's limits, plain HTTP (metrics carry no secrets and scrapers rarely speak
            // TLS to a sidecar port).
            ServeOptions {
                name: "metrics",
                tls: None,
                abort: abort.clone(),
                ..api_options
            },
        ));
        out!("Metrics server listening on {}", multiaddr_of(local));
    }
    let mut gateway_url = None;
    for listener in gateway_listeners {
        listener.set_nonblocking(true)?;
        let local = listener.local_addr()?;
        let router = cairn::gateway::Gateway::new(node.clone(), gateway_config.clone())
            .metrics(gateway_metrics.clone())
            .router();
        // `Cairn.Limits` (header and body read timeouts, the connection cap) hold here too, and
        // `Cairn.TLS` when set: the gateway is served over TLS with the RPC's certificate
        // (reloaded when its files change). Without it, plain HTTP, as Kubo's gateway.
        let options = match &api_serve_options {
            Some(api_options) => ServeOptions {
                name: "gateway",
                abort: abort.clone(),
                ..api_options.clone()
            },
            None => ServeOptions {
                name: "gateway",
                abort: abort.clone(),
                ..ServeOptions::default()
            },
        };
        supervised.push(supervise_listener(
            &services,
            format!("gateway {}", multiaddr_of(local)),
            listener,
            router,
            stop_accepting.clone(),
            options,
        ));
        out!("Gateway server listening on {}", multiaddr_of(local));
        gateway_url.get_or_insert(local);
    }
    // The swarm is reported, never restarted: a new swarm would be a different node under
    // every handle. If its task ends before shutdown was asked for, the node is `failed`.
    services.set(SWARM, ServiceState::Ok);
    {
        let (node, services, requested) = (node.clone(), services.clone(), requested.clone());
        tokio::spawn(async move {
            tokio::select! {
                _ = node.stopped() => {
                    if !requested.is_cancelled() {
                        tracing::error!("the swarm task ended unexpectedly; the node is failed");
                        services.fail(SWARM, "the swarm task ended unexpectedly", ServiceState::Failed);
                    }
                }
                _ = requested.cancelled() => {}
            }
        });
    }
    let mut api = api_addr.expect("at least one listener");
    if api.ip().is_unspecified() {
        api.set_ip(if api.is_ipv4() {
            [127, 0, 0, 1].into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    write_api_file(&repo, &multiaddr_of(api))?;
    if let Some(mut gateway) = gateway_url {
        if gateway.ip().is_unspecified() {
            gateway.set_ip([127, 0, 0, 1].into());
        }
        // Kubo's `gateway` repo file: the URL tools open.
        let scheme = if tls.is_some() { "https" } else { "http" };
        write_repo_file(&repo, "gateway", &format!("{scheme}://{gateway}"))?;
    }
    // Signal handlers go in before readiness is announced: a signal right after "ready" must
    // take the graceful path, not the default action.
    let signals = Signals::install()?;
    tokio::spawn(signals.handle(requested.clone()));
    out!("Daemon is ready");
    notify(&[NotifyState::Ready, NotifyState::Status("ready")]);

    if args.enable_gc {
        spawn_periodic_gc(&node, &config.datastore)?;
    }

    if let Some(interval) = sd_notify::watchdog_enabled() {
        let node = node.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval / 2);
            loop {
                tick.tick().await;
                // Only a node whose event loop answers is alive.
                if tokio::time::timeout(interval / 2, node.peers())
                    .await
                    .is_ok_and(|r| r.is_ok())
                {
                    notify(&[NotifyState::Watchdog]);
                }
            }
        });
    }

    // An embedder-style `Node::shutdown` (or the node's own end) also ends the daemon.
    tokio::select! {
        _ = requested.cancelled() => {}
        _ = token.cancelled() => requested.cancel(),
    }
    let code = shut_down(ShutdownParts {
        node: &node,
        services: &services,
        requests: &requests,
        supervised,
        stop_accepting,
        abort,
        timeout: settings.shutdown_timeout,
        repo: &repo,
    })
    .await;
    // Already removed before the lock was released, unless the shutdown timed out first.
    remove_api_file(&repo);
    if code == 0 {
        out!("Daemon stopped");
    }
    Ok(code)
}

/// The reported-only service: the node's swarm task.
const SWARM: &str = "swarm";

/// How long in-flight requests may run on after shutdown began before their connections are
/// closed: Kubo's HTTP servers give them 30 s (`core/corehttp/corehttp.go` `shutdownTimeout`).
const REQUEST_GRACE: Duration = Duration::from_secs(30);

/// The default of `Internal.ShutdownTimeout`. Kubo 0.42's is 12 h, chosen there not to change
/// old behaviour; cairn's shutdown was bounded already (about 20 s), so its default is one that
/// covers the 30 s request grace plus the swarm's and store's close (a few seconds), and stays
/// under systemd's default `TimeoutStopSec` (90 s), so a hung shutdown is logged by the daemon
/// itself, naming what hung, rather than ended by SIGKILL.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(60);

/// What the daemon reads from the config beyond the node's settings.
#[derive(Debug)]
struct DaemonSettings {
    /// `Internal.ShutdownTimeout` (Kubo's key, a Go duration; `0` waits forever): `None` is
    /// no limit.
    shutdown_timeout: Option<Duration>,
    /// `Cairn.Metrics.Address`: a multiaddr for a listener of its own serving
    /// `/debug/metrics/prometheus` and `/health`; absent, metrics are on the API port only.
    metrics_address: Option<String>,
}

impl DaemonSettings {
    /// Reads them from the config's free-form sections; bad values are refused at start, as
    /// Kubo refuses a bad `Internal.ShutdownTimeout`.
    fn from_config(config: &cairn::node::Config) -> anyhow::Result<Self> {
        let timeout = config
            .extra
            .get("Internal")
            .and_then(|i| i.get("ShutdownTimeout"))
            .filter(|v| !v.is_null());
        let shutdown_timeout = match timeout {
            None => Some(DEFAULT_SHUTDOWN_TIMEOUT),
            Some(v) => {
                let text = v
                    .as_str()
                    .with_context(|| format!("Internal.ShutdownTimeout {v} is not a string"))?;
                let d = cairn::node::config::parse_go_duration(text).with_context(|| {
                    format!("Internal.ShutdownTimeout {text:?} is not a duration")
                })?;
                (!d.is_zero()).then_some(d)
            }
        };
        let metrics = config
            .extra
            .get("Cairn")
            .and_then(|c| c.get("Metrics"))
            .and_then(|m| m.get("Address"))
            .filter(|v| !v.is_null());
        let metrics_address = match metrics {
            None => None,
            Some(v) => Some(
                v.as_str()
                    .with_context(|| format!("Cairn.Metrics.Address {v} is not a string"))?
                    .to_string(),
            ),
        };
        Ok(DaemonSettings {
            shutdown_timeout,
            metrics_address,
        })
    }
}

/// Runs one HTTP listener as a supervised service. The first attempt serves the listener the
/// daemon bound (or systemd handed over); a restart binds the same address again, so the `api`
/// file stays right (`SO_REUSEADDR`, which tokio sets, lets it rebind at once).
fn supervise_listener(
    services: &Services,
    name: String,
    listener: std::net::TcpListener,
    router: axum::Router,
    stop: CancellationToken,
    options: ServeOptions,
) -> tokio::task::JoinHandle<()> {
    let addr = listener.local_addr().ok();
    let mut first = Some(listener);
    supervisor::supervise(services, name, Policy::default(), stop, move |ctx| {
        let first = first.take();
        let router = router.clone();
        let options = options.clone();
        async move {
            let listener = match first {
                Some(l) => tokio::net::TcpListener::from_std(l).map_err(ServiceError::Start)?,
                None => {
                    let addr = addr.ok_or_else(|| {
                        ServiceError::Start(std::io::Error::other("the listener had no address"))
                    })?;
                    tokio::net::TcpListener::bind(addr)
                        .await
                        .map_err(ServiceError::Start)?
                }
            };
            ctx.ready();
            cairn::rpc::serve_with(listener, router, ctx.stop_token().clone(), options).await?;
            Ok(())
        }
    })
}

struct ShutdownParts<'a> {
    node: &'a Node,
    services: &'a Services,
    requests: &'a InFlightRequests,
    supervised: Vec<tokio::task::JoinHandle<()>>,
    stop_accepting: CancellationToken,
    abort: CancellationToken,
    timeout: Option<Duration>,
    repo: &'a Path,
}

/// The shutdown, in order, all within `Internal.ShutdownTimeout`; returns the exit code.
///
/// 1. `/health` answers 503 already (the `requested` token); in-flight requests are let finish
///    for up to [`REQUEST_GRACE`] while the RPC keeps answering, as Kubo's does while it stops.
/// 2. The listeners stop accepting; connections still open after the grace are closed.
/// 3. The `api` file is removed (while the lock is still held, so it can never remove the file
///    of a daemon started on the same repo after this one let go), then the swarm stops and the
///    node flushes and closes the store and releases `repo.lock`.
///
/// When the deadline passes first, the services not stopped are logged and the exit code is 1,
/// as Kubo's watchdog does.
async fn shut_down(parts: ShutdownParts<'_>) -> i32 {
    let started = tokio::time::Instant::now();
    let deadline = parts.timeout.map(|t| started + t);
    let until_deadline = || async move {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    parts.services.stopping();
    notify(&[NotifyState::Stopping]);
    out!("Shutting down...");
    let grace_end = started + REQUEST_GRACE;
    let timed_out = |what: String| {
        tracing::error!(
            "shutdown did not finish within Internal.ShutdownTimeout ({:?}): {what}; exiting with status 1",
            parts.timeout.unwrap_or_default()
        );
        1
    };

    // The listeners still running, by name, for the timeout's log line.
    let listeners_left = || {
        let names: Vec<String> = parts
            .services
            .not_stopped()
            .into_iter()
            .filter(|n| n != SWARM)
            .collect();
        names.join(", ")
    };

    // 1. In-flight requests.
    let in_flight = parts.requests.count();
    if in_flight > 0 {
        tracing::info!("waiting for {in_flight} in-flight RPC requests to finish");
    }
    tokio::select! {
        _ = parts.requests.idle() => {}
        _ = tokio::time::sleep_until(grace_end) => {
            tracing::warn!(
                "{} RPC requests still running after {REQUEST_GRACE:?}; closing their connections",
                parts.requests.count()
            );
            parts.abort.cancel();
        }
        _ = until_deadline() => {
            return timed_out(format!(
                "service {} has not stopped: {} RPC requests still in flight",
                listeners_left(),
                parts.requests.count()
            ));
        }
    }

    // 2. Listeners.
    parts.stop_accepting.cancel();
    let listeners = futures::future::join_all(parts.supervised);
    tokio::select! {
        _ = listeners => {}
        _ = until_deadline() => {
            return timed_out(format!("service {} has not stopped", listeners_left()));
        }
    }

    // 3. The api file, then the swarm, the store, the repo lock.
    remove_api_file(parts.repo);
    parts.node.shutdown_token().cancel();
    tokio::select! {
        _ = parts.node.stopped() => parts.services.set(SWARM, ServiceState::Stopped),
        _ = until_deadline() => {
            return timed_out(format!(
                "service {SWARM} has not stopped (the swarm, the store flush or the repo lock)"
            ));
        }
    }
    0
}

/// The signals that stop the daemon: SIGINT, SIGTERM and SIGHUP.
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Self> {
        Ok(Signals {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// The first signal shuts down gracefully; a second one exits at once with 255.
    async fn handle(mut self, token: CancellationToken) {
        let mut received = 0;
        loop {
            tokio::select! {
                _ = self.int.recv() => {}
                _ = self.term.recv() => {}
                _ = self.hup.recv() => {}
            }
            received += 1;
            if received == 1 {
                out!("Received interrupt signal, shutting down...");
                out!("(Hit ctrl-c again to force-shutdown the daemon.)");
                notify(&[NotifyState::Stopping]);
                token.cancel();
            } else {
                eprintln!("Received another interrupt before graceful shutdown, terminating...");
                std::process::exit(255);
            }
        }
    }
}

fn write_api_file(repo: &Path, multiaddr: &str) -> anyhow::Result<()> {
    write_repo_file(repo, "api", multiaddr)
}

/// Writes one of the repo's address files (`api`, `gateway`) atomically, so a client never
/// reads half an address.
fn write_repo_file(repo: &Path, name: &str, text: &str) -> anyhow::Result<()> {
    let tmp = repo.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, repo.join(name))?;
    Ok(())
}

/// Removes the `api` and `gateway` files (Kubo's `FSRepo.Close` removes both).
fn remove_api_file(repo: &Path) {
    let _ = std::fs::remove_file(repo.join("api"));
    let _ = std::fs::remove_file(repo.join("gateway"));
}

/// Checks the config against Kubo's schema at start-up, as Kubo decodes its config: a known key
/// holding the wrong type stops the start (Kubo: `failure to decode config`). Keys Kubo does not
/// know (Kubo ignores them when loading) and keys cairn stores but does not act on are each
/// reported once, as a warning.
fn report_config(config: &cairn::node::Config) -> anyhow::Result<()> {
    let report = cairn::node::config::edit::report(config)
        .map_err(|e| anyhow::anyhow!("failure to decode config: {e}"))?;
    if !report.unknown.is_empty() {
        tracing::warn!(
            "config keys Kubo does not know are kept but ignored: {}",
            report.unknown.join(", ")
        );
    }
    if let Some(note) = cairn::node::config::edit::inert_note(&report.inert) {
        tracing::warn!("{note}");
    }
    Ok(())
}

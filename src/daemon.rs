//! `cairn daemon`: the node and its RPC, run the way Kubo's daemon runs: it prints its swarm and
//! RPC addresses and `Daemon is ready`, writes the repo's `api` file, tells systemd `READY=1`
//! (and `STOPPING=1`, and `WATCHDOG=1` when asked), takes its RPC listeners from systemd socket
//! activation when given, and stops along one path: `cairn shutdown`, `/api/v0/shutdown`,
//! SIGINT, SIGTERM and SIGHUP all trip the node's shutdown token. A second signal during
//! shutdown exits at once with status 255, as Kubo does.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use cairn::node::config::Profile;
use cairn::node::{CancellationToken, Node, Repo};
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
        _ => bail!(
            "Addresses.API {multiaddr:?} is not an /ip4/.../tcp/... or /ip6/.../tcp/... address"
        ),
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
pub async fn run(
    repo: PathBuf,
    args: DaemonArgs,
    logs: cairn::node::LogBus,
) -> anyhow::Result<i32> {
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
    let node = Node::builder()
        .repo(&repo)
        .gossipsub(config.pubsub_enabled())
        .build()
        .await?;
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
    let listeners = match activated {
        Some(l) => l
            .into_iter()
            .map(tokio::net::TcpListener::from_std)
            .collect::<Result<Vec<_>, _>>()?,
        None => {
            let mut l = Vec::new();
            for a in &config.addresses.api.0 {
                let addr = socket_addr(a)?;
                l.push(
                    tokio::net::TcpListener::bind(addr)
                        .await
                        .with_context(|| format!("binding the RPC to {a}"))?,
                );
            }
            l
        }
    };
    if listeners.is_empty() {
        bail!("no RPC address: set Addresses.API");
    }
    let mut servers = Vec::new();
    let mut api_addr = None;
    for listener in listeners {
        let local = listener.local_addr()?;
        let mut builder = cairn::rpc::ApiBuilder::new(node.clone(), config.clone())
            .repo_path(&repo)
            .port(local.port())
            .log_bus(logs.clone());
        if let Some(tls) = &tls {
            builder = builder.tls(tls.clone());
        }
        // Served over TLS when `Cairn.TLS` is set (the options carry the acceptor).
        let (router, options) = builder.build_server()?;
        servers.push(tokio::spawn(cairn::rpc::serve_with(
            listener,
            router,
            token.clone(),
            options,
        )));
        out!("RPC API server listening on {}", multiaddr_of(local));
        api_addr.get_or_insert(local);
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
    // Signal handlers go in before readiness is announced: a signal right after "ready" must
    // take the graceful path, not the default action.
    let signals = Signals::install()?;
    tokio::spawn(signals.handle(token.clone()));
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

    token.cancelled().await;
    notify(&[NotifyState::Stopping]);
    out!("Shutting down...");
    for s in servers {
        let _ = tokio::time::timeout(Duration::from_secs(10), s).await;
    }
    if tokio::time::timeout(Duration::from_secs(10), node.stopped())
        .await
        .is_err()
    {
        tracing::error!("the node did not stop within 10 s");
        return Ok(1);
    }
    remove_api_file(&repo);
    out!("Daemon stopped");
    Ok(0)
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
    // Atomically, so a client never reads half an address.
    let tmp = repo.join(".api.tmp");
    std::fs::write(&tmp, multiaddr)?;
    std::fs::rename(&tmp, repo.join("api"))?;
    Ok(())
}

fn remove_api_file(repo: &Path) {
    let _ = std::fs::remove_file(repo.join("api"));
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

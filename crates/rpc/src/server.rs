//! The HTTP server: `/api/v0/*` with Kubo's handler chain (authorization, cross-site checks,
//! POST-only, parse, run), the `/api/v0/cairn/events` WebSocket (see [`crate::events`]), the
//! status page `/cairn/status` (see [`crate::status`]),
//! `/debug/metrics/prometheus`, and `/health` (`?verbose` for every supervised service's state,
//! see [`crate::supervisor`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use cairn_node_core::{Config, Node};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use crate::audit::AuditLog;
use crate::client_gone::ClientGone;
use crate::commands;
use crate::error::{ApiError, text_response};
use crate::limits::{BodyLimit, LimitCounters, Limits, LimitsError, ServeOptions};
use crate::metrics::RpcMetrics;
use crate::request::CommandRequest;
use crate::response::{accepts_trailers, preamble};
use crate::security::Security;
use crate::tls::ReloadingAcceptor;

/// Why [`ApiBuilder::build_server`] could not build the RPC.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// `Cairn.Limits` is malformed.
    #[error(transparent)]
    Limits(#[from] LimitsError),
    /// `Cairn.AuditLog` is malformed or its file cannot be opened.
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
}

/// The client's address, as a request extension (for the audit log).
#[derive(Clone, Copy, Debug)]
pub(crate) struct RemoteAddr(pub std::net::SocketAddr);
use crate::supervisor::{ServiceState, ServiceStatus, Services};

/// What the handlers share.
#[derive(Clone, Debug)]
pub struct ApiState {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub node: Node,
    /// The config as the RPC edits it (`bootstrap`, `config`); written to the repo if there is one.
    pub config: Mutex<Config>,
    pub repo_path: Option<PathBuf>,
    pub security: Security,
    pub metrics: RpcMetrics,
    /// Tripped by `/api/v0/shutdown`: the same token signals and `Node::shutdown` use.
    pub shutdown: CancellationToken,
    /// When the API started (for `stats/bw` rates).
    pub started: Instant,
    /// The audit log, if the config's `Cairn.AuditLog` asks for one.
    pub audit: Option<crate::audit::AuditLog>,
    /// Log lines for the event stream's `{"log":…}` command, when the daemon installed the layer.
    pub logs: Option<cairn_node_core::LogBus>,
    /// The daemon's supervised services, for `/health?verbose`.
    pub services: Services,
    /// Commands running now, counted across every router that shares this tracker.
    pub requests: InFlightRequests,
    /// The watched import folder, when the daemon runs one (`cairn/watch/*`).
    pub watch: Option<cairn_watch::WatchHandle>,
}

/// Counts the commands running now (streams included, until their answer ends), so shutdown
/// can wait for them to finish. Cheap to clone; clones count together.
#[derive(Clone, Debug, Default)]
pub struct InFlightRequests {
    inner: Arc<InFlightInner>,
}

#[derive(Debug, Default)]
struct InFlightInner {
    count: std::sync::atomic::AtomicUsize,
    idle: tokio::sync::Notify,
}

impl InFlightRequests {
    /// A tracker with nothing in flight.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many commands are running now.
    pub fn count(&self) -> usize {
        self.inner.count.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Resolves once no command is running.
    pub async fn idle(&self) {
        loop {
            let notified = self.inner.idle.notified();
            if self.count() == 0 {
                return;
            }
            notified.await;
        }
    }

    fn start(&self) -> RequestGuard {
        self.inner
            .count
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        RequestGuard(self.inner.clone())
    }
}

/// One running command; dropping it ends its count.
#[derive(Debug)]
struct RequestGuard(Arc<InFlightInner>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        if self
            .0
            .count
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst)
            == 1
        {
            self.0.idle.notify_waiters();
        }
    }
}

/// Builds the RPC for a node.
#[derive(Debug)]
#[must_use]
pub struct ApiBuilder {
    node: Node,
    config: Config,
    repo_path: Option<PathBuf>,
    port: u16,
    registry: Option<prometheus_client::registry::Registry>,
    shutdown: Option<CancellationToken>,
    tls: Option<Arc<ReloadingAcceptor>>,
    logs: Option<cairn_node_core::LogBus>,
    services: Services,
    requests: InFlightRequests,
    watch: Option<cairn_watch::WatchHandle>,
}

impl ApiBuilder {
    /// The RPC of `node`, whose config is `config`.
    pub fn new(node: Node, config: Config) -> Self {
        ApiBuilder {
            node,
            config,
            repo_path: None,
            port: 5001,
            registry: None,
            shutdown: None,
            tls: None,
            logs: None,
            services: Services::new(),
            requests: InFlightRequests::new(),
            watch: None,
        }
    }

    /// The watched import folder: `cairn/watch/ls` and `cairn/watch/refresh` answer from it
    /// (without it they answer that no folder is watched), the status page shows it, and its
    /// `cairn_watch_*` metrics are served with the RPC's.
    pub fn watch(mut self, handle: cairn_watch::WatchHandle) -> Self {
        self.watch = Some(handle);
        self
    }

    /// The daemon's service table: `/health?verbose` lists it, and its metrics
    /// (`cairn_service_*`) are served with the RPC's.
    pub fn services(mut self, services: Services) -> Self {
        self.services = services;
        self
    }

    /// The tracker that counts this RPC's running commands (share one between listeners so
    /// shutdown can wait for all of them).
    pub fn requests(mut self, requests: InFlightRequests) -> Self {
        self.requests = requests;
        self
    }

    /// The repo the config is saved to when the RPC changes it.
    pub fn repo_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.repo_path = Some(path.into());
        self
    }

    /// The port the API listens on (its localhost origins are allowed by default, as in Kubo).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// A registry with metrics registered already (e.g. libp2p's); the RPC adds its own.
    pub fn registry(mut self, registry: prometheus_client::registry::Registry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// The token `/api/v0/shutdown` trips (default: the node's own shutdown token). Once it is
    /// tripped, `/health` answers 503.
    pub fn shutdown_token(mut self, token: CancellationToken) -> Self {
        self.shutdown = Some(token);
        self
    }

    /// The TLS acceptor the router is served with (by [`serve_tls`], or [`serve_with`] with
    /// [`ServeOptions::tls`]): its certificate reload counters are served with the RPC's metrics.
    pub fn tls(mut self, acceptor: Arc<ReloadingAcceptor>) -> Self {
        self.tls = Some(acceptor);
        self
    }

    /// The log channel whose [layer](cairn_node_core::LogBus::layer) the process installed:
    /// clients of `/api/v0/cairn/events` may then ask for log lines (without it they are told
    /// log lines are not available).
    pub fn log_bus(mut self, logs: cairn_node_core::LogBus) -> Self {
        self.logs = Some(logs);
        self
    }

    /// The axum router, served with the default [`ServeOptions`] (see [`ApiBuilder::build_server`]
    /// for the config's `Cairn.Limits`).
    ///
    /// This router has no audit log.
    pub fn build(self) -> Router {
        self.build_with(LimitCounters::default(), None).0
    }

    /// The axum router, and a second one sharing its state that serves only
    /// `/debug/metrics/prometheus` and `/health`, for a listener of its own
    /// (`Cairn.Metrics.Address`). Like [`ApiBuilder::build`]: default limits, no audit log.
    pub fn build_with_metrics(self) -> (Router, Router) {
        self.build_with(LimitCounters::default(), None)
    }

    /// The axum router and how to serve it: the listener limits set in the config's
    /// `Cairn.Limits` (see [`crate::limits`]), whose triggers are counted in this RPC's metrics.
    /// Serve with [`serve_with`] (over TLS when [`ApiBuilder::tls`] was given).
    ///
    /// With `Cairn.AuditLog` set, every call is written to the audit log (see [`crate::audit`]).
    ///
    /// # Errors
    /// A malformed `Cairn.Limits` or `Cairn.AuditLog`, or an audit log file that cannot be
    /// opened.
    pub fn build_server(self) -> Result<(Router, ServeOptions), BuildError> {
        self.build_server_with_metrics()
            .map(|(api, _, options)| (api, options))
    }

    /// [`ApiBuilder::build_server`], with the metrics-only router of
    /// [`ApiBuilder::build_with_metrics`].
    ///
    /// # Errors
    /// As [`ApiBuilder::build_server`].
    pub fn build_server_with_metrics(self) -> Result<(Router, Router, ServeOptions), BuildError> {
        let limits = Limits::from_config(&self.config)?;
        let audit = AuditLog::from_config(&self.config, self.repo_path.as_deref())?;
        let counters = LimitCounters::default();
        let tls = self.tls.clone();
        let (api, metrics) = self.build_with(counters.clone(), audit);
        Ok((
            api,
            metrics,
            ServeOptions {
                name: "api",
                limits,
                counters,
                tls,
                abort: CancellationToken::new(),
            },
        ))
    }

    fn build_with(mut self, counters: LimitCounters, audit: Option<AuditLog>) -> (Router, Router) {
        let mut registry = self.registry.take().unwrap_or_default();
        counters.register(&mut registry);
        if let Some(log) = &audit {
            log.register(&mut registry);
        }
        self.registry = Some(registry);
        let security = Security::new(
            self.port,
            &self.config.api.authorizations,
            &self.config.api.http_headers,
        );
        if security.auth_enabled() {
            tracing::info!("RPC API access is limited by the rules defined in API.Authorizations");
        }
        let mut registry = self.registry.unwrap_or_default();
        if let Some(tls) = &self.tls {
            tls.register_metrics(&mut registry);
        }
        self.services.register_metrics(&mut registry);
        if let Some(watch) = &self.watch {
            watch.register_metrics(&mut registry);
        }
        let metrics = RpcMetrics::new(registry, self.node.clone());
        let shutdown = self.shutdown.unwrap_or_else(|| self.node.shutdown_token());
        let state = ApiState {
            inner: Arc::new(Inner {
                node: self.node,
                config: Mutex::new(self.config),
                repo_path: self.repo_path,
                security,
                metrics,
                shutdown,
                started: Instant::now(),
                audit,
                logs: self.logs,
                services: self.services,
                requests: self.requests,
                watch: self.watch,
            }),
        };
        let api = Router::new()
            // A GET WebSocket upgrade beside the POST-only commands, with the same checks.
            .route(crate::events::PATH, any(crate::events::handler))
            // The status page and its assets: GET, with the same checks (see `status`).
            .route(crate::status::PATH, any(crate::status::handler))
            .route("/cairn/status/{*asset}", any(crate::status::handler))
            .route("/api/v0/{*command}", any(api))
            .route("/debug/metrics/prometheus", get(metrics_handler))
            .route("/health", get(health))
            .fallback(|| async { ApiError::NotFound })
            .with_state(state.clone());
        let metrics = Router::new()
            .route("/debug/metrics/prometheus", get(metrics_handler))
            .route("/health", get(health))
            .fallback(|| async { ApiError::NotFound })
            .with_state(state);
        (api, metrics)
    }
}

/// `/health?verbose`: the node's state as a whole and every service's row.
#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct Health {
    status: ServiceState,
    services: Vec<ServiceStatus>,
}

/// The node's state as a whole, as `/health?verbose` and `cairn/status` report it: `stopping`
/// once shutdown has begun, `failed` once the swarm has stopped, else the services' overall state
/// (`ok` while nothing is registered yet, e.g. an embedder's RPC).
pub(crate) fn overall_state(state: &ApiState) -> ServiceState {
    if state.inner.shutdown.is_cancelled() {
        ServiceState::Stopping
    } else if !state.inner.node.is_running() {
        ServiceState::Failed
    } else {
        match state.inner.services.overall() {
            // Before the daemon registers anything (an embedder's RPC), a running node is ok.
            ServiceState::Starting => ServiceState::Ok,
            s => s,
        }
    }
}

/// `GET /health`: `200 OK` while the node serves (some service restarting still counts: the
/// node is degraded, not down), `503` as soon as shutdown has begun or once the swarm has stopped,
/// so a load balancer or orchestrator stops sending work while in-flight requests finish. With
/// `?verbose` (or `?verbose=true`) the body is JSON: `{"Status":..,"Services":[{"Name",
/// "State","Restarts","LastError"}]}`.
async fn health(State(state): State<ApiState>, uri: axum::http::Uri) -> Response {
    let verbose = uri.query().is_some_and(|q| {
        q.split('&').any(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, "true"));
            k == "verbose" && !matches!(v, "false" | "0")
        })
    });
    let stopping = state.inner.shutdown.is_cancelled();
    let running = state.inner.node.is_running();
    let status = overall_state(&state);
    let code = if stopping || !running {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    if verbose {
        let body = Health {
            status,
            services: state.inner.services.snapshot(),
        };
        return (code, axum::Json(body)).into_response();
    }
    match (stopping, running) {
        (false, true) => (code, "OK").into_response(),
        (true, _) => (code, "shutting down").into_response(),
        (false, false) => (code, "node stopped").into_response(),
    }
}

async fn metrics_handler(State(state): State<ApiState>) -> Response {
    let mut r = state.inner.metrics.encode().await.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    r
}

/// Kubo's chain for `/api/v0/<command>`, with the call written to the audit log (when there is
/// one) once its answer has ended.
async fn api(State(state): State<ApiState>, request: Request) -> Response {
    let Some(log) = state.inner.audit.clone() else {
        return api_chain(state, request).await;
    };
    let call = crate::audit::Call {
        remote: request.extensions().get::<RemoteAddr>().map(|r| r.0),
        user: state
            .inner
            .security
            .user(request.headers())
            .map(str::to_string),
        command: request
            .uri()
            .path()
            .trim_start_matches("/api/v0/")
            .trim_end_matches('/')
            .to_string(),
        query: crate::long_uri::query(request.headers(), request.uri().query())
            .and_then(|q| crate::request::parse_query(q).ok())
            .unwrap_or_default(),
        started: Instant::now(),
    };
    let response = api_chain(state, request).await;
    let status = response.status().as_u16();
    response
        .map(|body| axum::body::Body::new(crate::audit::AuditedBody::new(body, log, call, status)))
}

/// Kubo's chain for `/api/v0/<command>`.
async fn api_chain(state: ApiState, request: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let body = match parts.extensions.get::<BodyLimit>() {
        Some(limit) => limit.clone().apply(body),
        None => body,
    };
    let gone = parts
        .extensions
        .get::<ClientGone>()
        .cloned()
        .unwrap_or_default();
    let path = parts.uri.path().to_string();
    let security = &state.inner.security;
    // 1. Authorizations, before anything else (even an OPTIONS preflight needs them).
    if let Some(denied) = security.check_auth(&path, &parts.headers) {
        state
            .inner
            .metrics
            .record("(denied)", denied.status(), started);
        return denied;
    }
    let command = path
        .trim_start_matches("/api/v0/")
        .trim_end_matches('/')
        .to_string();
    let mut response = match parts.method {
        Method::OPTIONS => {
            let mut r = StatusCode::NO_CONTENT.into_response();
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("OPTIONS, POST"));
            if parts.headers.contains_key("access-control-request-method") {
                if let Ok(m) = HeaderValue::from_str(security.allow_methods()) {
                    r.headers_mut().insert("access-control-allow-methods", m);
                }
                r.headers_mut().insert(
                    "access-control-allow-headers",
                    HeaderValue::from_static(
                        "Origin, Accept, Content-Type, X-Requested-With, Authorization",
                    ),
                );
            }
            r
        }
        Method::POST => match security.check_origin(&parts.headers) {
            Some(forbidden) => forbidden,
            None => {
                let content_type = parts
                    .headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok());
                // A query too long for hyper's URI arrives in a header (see `long_uri`).
                let query = crate::long_uri::query(&parts.headers, parts.uri.query());
                let trailers = accepts_trailers(&parts.headers);
                // Only known names become metric labels: a client cannot grow the registry.
                let label = if commands::COMMANDS.contains(&command.as_str()) {
                    command.as_str()
                } else {
                    "(unknown)"
                };
                let running = Running {
                    _in_flight: state.inner.metrics.in_flight(label),
                    _request: state.inner.requests.start(),
                    client: gone.clone(),
                    state: state.clone(),
                };
                match CommandRequest::new(&command, query, content_type, body) {
                    Ok(req) => match commands::run(&state, req.with_client(gone), running).await {
                        Ok(output) => output.into_response_for(trailers),
                        Err(e) => error_response(e),
                    },
                    Err(e) => error_response(e),
                }
            }
        },
        _ => {
            let mut r = text_response(
                StatusCode::METHOD_NOT_ALLOWED,
                "405 - Method Not Allowed\n".into(),
            );
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("OPTIONS, POST"));
            r
        }
    };
    security.decorate(&parts.headers, response.headers_mut());
    let label = if response.status() == StatusCode::NOT_FOUND {
        "(unknown)"
    } else {
        command.as_str()
    };
    state
        .inner
        .metrics
        .record(label, response.status(), started);
    response
}

/// Held while a command and its answer run: the in-flight gauge, and on drop a count of the
/// requests whose client went away meanwhile.
struct Running {
    _in_flight: crate::metrics::InFlight,
    _request: RequestGuard,
    client: ClientGone,
    state: ApiState,
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.client.is_gone() {
            self.state.inner.metrics.client_gone();
        }
    }
}

fn error_response(e: ApiError) -> Response {
    let mut r = e.into_response();
    if r.status() != StatusCode::NOT_FOUND {
        preamble(r.headers_mut());
    }
    r
}

/// Serves the RPC on a listener until `shutdown` is tripped, then stops accepting and lets
/// in-flight requests finish.
///
/// HTTP/1 connections are served as Go's server (and so Kubo) serves them: up to
/// 1 MiB of request line and headers (Go's `DefaultMaxHeaderBytes`), a request-target
/// longer than hyper's URI limit included (see [`crate::long_uri`]), and a client that half-closes
/// its side after sending a request (`shutdown(SHUT_WR)`, as `nc -q` does) still gets its answer.
/// HTTP/2 with prior knowledge is served as before.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    serve_with(listener, router, shutdown, ServeOptions::default()).await
}

/// [`serve`], with a second token: once `shutdown` is tripped the listener closes and in-flight
/// requests are waited for, until `abort` is tripped, which closes the connections still open.
///
/// # Errors
/// As [`serve_with`].
pub async fn serve_until(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: CancellationToken,
    abort: CancellationToken,
) -> std::io::Result<()> {
    let options = ServeOptions {
        abort,
        ..ServeOptions::default()
    };
    serve_with(listener, router, shutdown, options).await
}

/// [`serve`] over TLS: every accepted connection first does its handshake with `tls` (in the
/// connection's own task, so a slow handshake holds up no one else), then is served as
/// [`serve`] serves plain ones; HTTP/2 is chosen by ALPN. A failed or timed-out handshake
/// drops the connection and is logged at debug level.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: CancellationToken,
    tls: Arc<ReloadingAcceptor>,
) -> std::io::Result<()> {
    let options = ServeOptions {
        tls: Some(tls),
        ..ServeOptions::default()
    };
    serve_with(listener, router, shutdown, options).await
}

/// [`serve`] with the given options: TLS when [`ServeOptions::tls`] is set, and the limits of
/// [`crate::limits`]: a request head (or an idle keep-alive connection) is cut after
/// `HeaderReadTimeout` (the TLS handshake counts towards the first head), an upload that stalls
/// after `BodyReadTimeout`, and at `MaxConnections` the listener stops accepting until a
/// connection ends. Each trigger is counted under `options.name`. After `shutdown`, the
/// listener closes and in-flight requests are waited for until [`ServeOptions::abort`] is
/// tripped, which closes the connections still open.
///
/// # Errors
///
/// Returns the listener's error when `accept` fails in a way waiting cannot cure (the socket
/// was shut down or closed under it: `EINVAL`, `EBADF`, `ENOTSOCK`...), so a supervisor can
/// bind a new one. Running out of file descriptors or memory is waited out instead, as Go's
/// server (and so Kubo) does.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: CancellationToken,
    options: ServeOptions,
) -> std::io::Result<()> {
    let ServeOptions {
        name,
        limits,
        counters,
        tls,
        abort,
    } = options;
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .max_buf_size(crate::long_uri::MAX_HEAD)
        .half_close(true)
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let slots = limits
        .max_connections
        .map(|n| Arc::new(tokio::sync::Semaphore::new(n)));
    let body_limit = limits.body_read_timeout.map(|timeout| BodyLimit {
        timeout,
        listener: name,
        counters: counters.clone(),
    });
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut connections = tokio::task::JoinSet::new();
    loop {
        // A free connection slot first: at the cap, new clients wait in the kernel's backlog.
        let slot = match &slots {
            None => None,
            Some(slots) => match slots.clone().try_acquire_owned() {
                Ok(slot) => Some(slot),
                Err(_) => {
                    counters.hit(name, "connections");
                    tracing::warn!(
                        listener = name,
                        "at its connection cap; accepting again when one ends"
                    );
                    tokio::select! {
                        slot = slots.clone().acquire_owned() => Some(slot.expect("never closed")),
                        _ = shutdown.cancelled() => break,
                    }
                }
            },
        };
        let (tcp, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) if is_listener_broken(&e) => {
                    // The connections already accepted are not the listener's fault: they are
                    // left to finish while a new listener is bound.
                    connections.detach_all();
                    return Err(e);
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning, as
                    // axum's and Go's accept loops do.
                    tracing::warn!("RPC accept failed: {e}");
                    tokio::select! {
                        _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => continue,
                        _ = shutdown.cancelled() => break,
                    }
                }
            },
            _ = shutdown.cancelled() => break,
        };
        // TCP_NODELAY, as Go's (and so Kubo's) listeners have it: without it a response written
        // in two pieces waits for the client's delayed ACK.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("TCP_NODELAY: {e}");
        }
        // The client's going away is noticed at once, not at the next failed write (on the raw
        // socket, under TLS too).
        let (gone, watch) = match crate::client_gone::watch(&tcp) {
            Ok((gone, guard)) => (gone, Some(guard)),
            Err(e) => {
                tracing::debug!("RPC connection served without a close watch: {e}");
                (ClientGone::default(), None)
            }
        };
        let body_limit = body_limit.clone();
        let first_request = CancellationToken::new();
        let started = first_request.clone();
        let service = TowerToHyperService::new(tower::ServiceExt::map_request(
            router.clone(),
            move |mut request: hyper::Request<hyper::body::Incoming>| {
                started.cancel();
                request.extensions_mut().insert(gone.clone());
                request.extensions_mut().insert(RemoteAddr(remote));
                if let Some(limit) = &body_limit {
                    request.extensions_mut().insert(limit.clone());
                }
                request
            },
        ));
        // Taken now, before shutdown can be signalled: graceful shutdown then also waits for
        // connections still in their handshake, and tells them to stop once served.
        let watcher = graceful.watcher();
        let builder = builder.clone();
        let shutdown = shutdown.clone();
        let tls = tls.clone();
        let counters = counters.clone();
        let header_timeout = limits.header_read_timeout;
        // Finished connections are reaped here so the set does not grow with them.
        while connections.try_join_next().is_some() {}
        connections.spawn(async move {
            let serve = async {
                let outcome = match tls {
                    None => {
                        let io = TokioIo::new(crate::long_uri::LongUriIo::new(tcp));
                        watcher
                            .watch(builder.serve_connection_with_upgrades(io, service))
                            .await
                    }
                    Some(tls) => {
                        let stream = tokio::select! {
                            stream = tls.accept(tcp) => match stream {
                                Ok(stream) => stream,
                                Err(e) => {
                                    tracing::debug!("RPC TLS handshake: {e}");
                                    return;
                                }
                            },
                            _ = shutdown.cancelled() => return,
                        };
                        let io = TokioIo::new(crate::long_uri::LongUriIo::new(stream));
                        watcher
                            .watch(builder.serve_connection_with_upgrades(io, service))
                            .await
                    }
                };
                if let Err(e) = outcome {
                    let timed_out = e
                        .downcast_ref::<hyper::Error>()
                        .is_some_and(hyper::Error::is_timeout);
                    if timed_out {
                        counters.hit(name, "header_timeout");
                    }
                    tracing::debug!("RPC connection: {e}");
                }
            };
            // hyper's own header timer starts only once it has a request's first bytes (and
            // `LongUriIo` holds a head back until it is whole), so the first head is timed
            // here; later ones, and idle keep-alive time, by hyper.
            let first_head = async {
                match header_timeout {
                    Some(t) => {
                        tokio::time::sleep(t).await;
                        if first_request.is_cancelled() {
                            std::future::pending::<()>().await;
                        }
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = serve => {}
                () = first_head => counters.hit(name, "header_timeout"),
            }
            drop(watch);
            drop(slot);
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = abort.cancelled() => {
            tracing::warn!("closing {} RPC connections still open", connections.len());
            connections.abort_all();
        }
    }
    Ok(())
}

/// Errors that mean the listening socket itself is broken: shut down (`EINVAL`), closed
/// (`EBADF`) or not a socket (`ENOTSOCK`). accept(2) tells callers to treat the other errors
/// (network errors of the pending connection, `EMFILE`, `ENOBUFS`...) as transient, so those are
/// waited out in place.
fn is_listener_broken(e: &std::io::Error) -> bool {
    // Linux errno values: EBADF 9, EFAULT 14, EINVAL 22, ENOTSOCK 88.
    matches!(e.raw_os_error(), Some(9 | 14 | 22 | 88))
}

fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn http_get(addr: std::net::SocketAddr, path: &str) -> std::io::Result<String> {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await?;
        let mut out = String::new();
        s.read_to_string(&mut out).await?;
        Ok(out)
    }

    fn router() -> Router {
        Router::new().route("/ok", get(|| async { "fine" })).route(
            "/panic",
            get(|| async {
                if true {
                    panic!("handler bug");
                }
                "unreachable"
            }),
        )
    }

    /// A handler that panics takes down only its own connection (each connection is its own
    /// task): the listener goes on serving.
    #[tokio::test]
    async fn a_panicking_handler_does_not_stop_the_listener() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let server = tokio::spawn(serve(listener, router(), stop.clone()));
        let answer = http_get(addr, "/panic").await.unwrap_or_default();
        assert!(!answer.contains("200 OK"), "{answer}");
        for _ in 0..3 {
            let answer = http_get(addr, "/ok").await.unwrap();
            assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
            assert!(answer.ends_with("fine"), "{answer}");
        }
        stop.cancel();
        server.await.unwrap().unwrap();
    }

    /// A listener shut down under the accept loop (`shutdown(SHUT_RD)` makes Linux's accept
    /// fail with `EINVAL`) ends `serve` with the error, so a supervisor can bind a new one.
    #[tokio::test]
    async fn a_listener_broken_under_serve_is_an_error() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dup = {
            use std::os::fd::AsFd;
            listener.as_fd().try_clone_to_owned().unwrap()
        };
        let stop = CancellationToken::new();
        let server = tokio::spawn(serve(listener, router(), stop.clone()));
        tokio::task::yield_now().await;
        rustix::net::shutdown(&dup, rustix::net::Shutdown::Read).unwrap();
        let result = tokio::time::timeout(std::time::Duration::from_secs(10), server)
            .await
            .expect("serve noticed the broken listener")
            .unwrap();
        let e = result.expect_err("an accept error");
        assert_eq!(e.raw_os_error(), Some(22), "{e}");
    }
}

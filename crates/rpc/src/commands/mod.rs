//! The commands: one function per `/api/v0/<path>`, dispatched by name. Anything not listed is
//! an unknown command (404), exactly as Kubo answers for commands it does not have.

mod basic;
mod bitswap;
mod block;
mod config;
mod dag;
mod files;
mod mfs;
mod names;
mod network;
mod pin;
mod pubsub;
mod repo;
mod resolve;
mod routing;
mod status;
mod unixfs;
mod watch;

use cairn_blockstore::Cid;
use cairn_bootstrap::BootstrapPhase;
use futures::FutureExt;
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;

use crate::client_gone::{ClientGone, GONE_GRACE};
use crate::error::ApiError;
use crate::request::CommandRequest;
use crate::response::Output;
use crate::server::ApiState;

/// Every command path cairn serves under `/api/v0/`.
pub const COMMANDS: &[&str] = &[
    "id",
    "version",
    "shutdown",
    "diag/healthy",
    "block/put",
    "block/get",
    "block/stat",
    "block/rm",
    "swarm/peers",
    "swarm/connect",
    "swarm/disconnect",
    "swarm/addrs",
    "swarm/addrs/local",
    "swarm/addrs/listen",
    "bootstrap",
    "bootstrap/list",
    "bootstrap/add",
    "bootstrap/add/default",
    "bootstrap/rm",
    "bootstrap/rm/all",
    "cairn/bootstrap/status",
    "cairn/status",
    "cairn/watch/ls",
    "cairn/watch/refresh",
    "pubsub/pub",
    "pubsub/sub",
    "pubsub/ls",
    "pubsub/peers",
    "routing/findprovs",
    "routing/findpeer",
    "routing/provide",
    "dht/findprovs",
    "dht/findpeer",
    "dht/provide",
    "repo/stat",
    "repo/gc",
    "repo/verify",
    "repo/version",
    "stats/repo",
    "stats/bw",
    "pin/add",
    "pin/rm",
    "pin/ls",
    "pin/update",
    "pin/verify",
    "resolve",
    "config",
    "config/show",
    "config/replace",
    "config/profile/apply",
    "ping",
    "add",
    "cat",
    "files/mkdir",
    "files/write",
    "files/read",
    "files/ls",
    "files/stat",
    "files/cp",
    "files/mv",
    "files/rm",
    "files/flush",
    "files/chcid",
    "files/chmod",
    "files/touch",
    "refs",
    "refs/local",
    "get",
    "ls",
    "dag/get",
    "dag/put",
    "dag/stat",
    "dag/resolve",
    "dag/import",
    "dag/export",
    "bitswap/stat",
    "bitswap/wantlist",
    "bitswap/ledger",
    "bitswap/reprovide",
    "stats/bitswap",
    "provide/stat",
    "stats/provide",
    "stats/reprovide",
    "key/gen",
    "key/list",
    "key/ls",
    "key/rm",
    "key/rename",
    "key/import",
    "name/publish",
    "name/resolve",
    "name/inspect",
    "name/pubsub/state",
    "name/pubsub/subs",
    "name/pubsub/cancel",
    "routing/get",
    "routing/put",
    "dht/get",
    "dht/put",
    "dht/query",
];

/// Kubo's text when the `timeout` option runs out (Go's `context.DeadlineExceeded`).
pub(crate) const DEADLINE_EXCEEDED: &str = "context deadline exceeded";

/// Kubo's `coreiface.ErrOffline`: what its swarm commands answer when the request's `offline`
/// option takes the network away (Kubo's offline core API has no peer host).
pub(crate) const ERR_OFFLINE: &str =
    "this action must be run in online mode, try running 'ipfs daemon' first";

/// The commands that read the swarm's state and answer [`ERR_OFFLINE`] outright under
/// `offline=true`, as Kubo's do (`swarm/connect` and `swarm/disconnect` say it per peer).
const SWARM_STATE: &[&str] = &[
    "swarm/peers",
    "swarm/addrs",
    "swarm/addrs/local",
    "swarm/addrs/listen",
];

/// Kubo's `ErrNotOnline`: what its routing commands and `ping` answer on a node without a
/// network.
pub(crate) const ERR_NOT_ONLINE: &str =
    "this command must be run in online mode. Try running 'ipfs daemon' first";

/// Commands that do nothing but reach the network: under `offline=true` they fail at once
/// with [`ERR_NOT_ONLINE`] instead of querying the DHT or dialling. (Kubo, on a running daemon,
/// ignores `offline` for these and goes to the network anyway; a client that asks for offline
/// means it, so cairn fails fast with the text Kubo gives when it has no network.)
const NETWORK_ONLY: &[&str] = &[
    "routing/get",
    "dht/get",
    "dht/query",
    "routing/findprovs",
    "routing/findpeer",
    "routing/provide",
    "dht/findprovs",
    "dht/findpeer",
    "dht/provide",
    "ping",
    "bitswap/reprovide",
];

/// Go's `context.Canceled`: how a command whose client went away ends.
pub(crate) const CANCELED: &str = "context canceled";

/// Runs one command under Kubo's request context: the global `timeout` and the client's
/// presence. Like Kubo's context, both cover the command and whatever it streams afterwards
/// (an NDJSON or raw stream still running at the deadline ends with the error in the
/// `X-Stream-Error` trailer). A command whose client has gone away is dropped, releasing what
/// it holds (a subscription, a want, a provider query), [`GONE_GRACE`] later: a client that
/// only half-closed still gets the answer of a command that finishes within that.
///
/// `hold` lives as long as the command and its stream (the in-flight metric's guard).
pub(crate) async fn run(
    state: &ApiState,
    req: CommandRequest,
    hold: impl Send + 'static,
) -> Result<Output, ApiError> {
    let deadline = req.deadline();
    let client = req.client().clone();
    let output = tokio::select! {
        biased;
        output = dispatch(state, req) => output?,
        e = stop_at(deadline, client.clone()) => return Err(e),
    };
    let stop = || stop_at(deadline, client.clone()).boxed();
    Ok(match output {
        Output::Stream(s) => Output::Stream(until(s, stop(), hold)),
        Output::Raw {
            content_type,
            length,
            body,
        } => Output::Raw {
            content_type,
            length,
            body: until(body, stop(), hold),
        },
        done => done,
    })
}

/// When a command must stop, and with what error: at the `timeout` deadline, or
/// [`GONE_GRACE`] after its client went away, whichever comes first.
async fn stop_at(deadline: Option<tokio::time::Instant>, client: ClientGone) -> ApiError {
    let expiry = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    let gone = async {
        client.gone().await;
        tokio::time::sleep(GONE_GRACE).await;
    };
    tokio::select! {
        () = expiry => ApiError::command(DEADLINE_EXCEEDED),
        () = gone => ApiError::command(CANCELED),
    }
}

/// A stream that ends with `stop`'s error once `stop` resolves (dropping, and so cancelling,
/// what produces it), holding `hold` until it ends or is dropped.
fn until<T: Send + 'static>(
    stream: BoxStream<'static, Result<T, ApiError>>,
    stop: BoxFuture<'static, ApiError>,
    hold: impl Send + 'static,
) -> BoxStream<'static, Result<T, ApiError>> {
    futures::stream::unfold(Some((stream, stop, hold)), |state| async move {
        let (mut stream, mut stop, hold) = state?;
        tokio::select! {
            biased;
            item = stream.next() => item.map(|i| (i, Some((stream, stop, hold)))),
            e = &mut stop => Some((Err(e), None)),
        }
    })
    .boxed()
}

/// Spawns the task that produces a streamed answer into `tx`, and drops it (cancelling its
/// work: a fetch, a query, an import) as soon as nobody receives any more, whether or not it
/// is about to send: the client went away or the deadline passed.
pub(crate) fn spawn_producer<T, F>(
    tx: tokio::sync::mpsc::Sender<T>,
    work: impl FnOnce(tokio::sync::mpsc::Sender<T>) -> F,
) where
    T: Send + 'static,
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let watch = tx.clone();
    let work = work(tx);
    tokio::spawn(async move {
        tokio::select! {
            () = work => {}
            () = watch.closed() => {}
        }
    });
}

/// Runs one command.
async fn dispatch(state: &ApiState, mut req: CommandRequest) -> Result<Output, ApiError> {
    let s = state;
    if req.offline() && SWARM_STATE.contains(&req.command.as_str()) {
        return Err(ApiError::command(ERR_OFFLINE));
    }
    if req.offline() && NETWORK_ONLY.contains(&req.command.as_str()) {
        return Err(ApiError::command(ERR_NOT_ONLINE));
    }
    match req.command.as_str() {
        "id" => basic::id(s, &req).await,
        "version" => basic::version(&req),
        "shutdown" => basic::shutdown(s),
        "diag/healthy" => basic::diag_healthy(s),
        "block/put" => block::put(s, &mut req).await,
        "block/get" => block::get(s, &req).await,
        "block/stat" => block::stat(s, &req).await,
        "block/rm" => block::rm(s, &req).await,
        "swarm/peers" => network::peers(s, &req).await,
        "swarm/connect" => network::connect(s, &req).await,
        "swarm/disconnect" => network::disconnect(s, &req).await,
        "swarm/addrs" => network::addrs(s).await,
        "swarm/addrs/local" => network::addrs_local(s, &req).await,
        "swarm/addrs/listen" => network::addrs_listen(s).await,
        "bootstrap" | "bootstrap/list" => network::bootstrap_list(s),
        "bootstrap/add" => network::bootstrap_add(s, &req, false).await,
        "bootstrap/add/default" => network::bootstrap_add(s, &req, true).await,
        "bootstrap/rm" => network::bootstrap_rm(s, &req, false).await,
        "bootstrap/rm/all" => network::bootstrap_rm(s, &req, true).await,
        "cairn/bootstrap/status" => network::bootstrap_status(s).await,
        "cairn/status" => status::status(s).await,
        "cairn/watch/ls" => watch::ls(s),
        "cairn/watch/refresh" => watch::refresh(s).await,
        "pubsub/pub" => pubsub::publish(s, &mut req).await,
        "pubsub/sub" => pubsub::subscribe(s, &req).await,
        "pubsub/ls" => pubsub::ls(s).await,
        "pubsub/peers" => pubsub::peers(s, &req).await,
        "routing/findprovs" | "dht/findprovs" => routing::findprovs(s, &req).await,
        "routing/findpeer" | "dht/findpeer" => routing::findpeer(s, &req).await,
        "routing/provide" | "dht/provide" => routing::provide(s, &req).await,
        "repo/stat" | "stats/repo" => repo::stat(s, &req).await,
        "repo/gc" => repo::gc(s, &req).await,
        "repo/verify" => repo::verify(s).await,
        "repo/version" => repo::version(),
        "stats/bw" => repo::bandwidth(s, &req).await,
        "pin/add" => pin::add(s, &req).await,
        "pin/rm" => pin::rm(s, &req).await,
        "pin/ls" => pin::ls(s, &req).await,
        "pin/update" => pin::update(s, &req).await,
        "pin/verify" => pin::verify(s, &req).await,
        "resolve" => resolve::resolve(s, &req).await,
        "config/show" => config::show(s),
        "config" => config::get_set(s, &req).await,
        "config/replace" => config::replace(s, &mut req).await,
        "config/profile/apply" => config::profile_apply(s, &req).await,
        "ping" => routing::ping(s, &req).await,
        "add" => files::add(s, &mut req).await,
        "cat" => unixfs::cat(s, &req).await,
        "files/mkdir" => mfs::mkdir(s, &req).await,
        "files/write" => mfs::write(s, &mut req).await,
        "files/read" => mfs::read(s, &req).await,
        "files/ls" => mfs::ls(s, &req).await,
        "files/stat" => mfs::stat(s, &req).await,
        "files/cp" => mfs::cp(s, &req).await,
        "files/mv" => mfs::mv(s, &req).await,
        "files/rm" => mfs::rm(s, &req).await,
        "files/flush" => mfs::flush(s, &req).await,
        "files/chcid" => mfs::chcid(s, &req).await,
        "files/chmod" => mfs::chmod(s, &req).await,
        "files/touch" => mfs::touch(s, &req).await,
        "refs" => dag::refs(s, &req).await,
        "refs/local" => files::refs_local(s),
        "get" => files::get(s, &req).await,
        "ls" => files::ls(s, &req).await,
        "dag/get" => files::dag_get(s, &req).await,
        "dag/put" => files::dag_put(s, &mut req).await,
        "dag/stat" => files::dag_stat(s, &req).await,
        "dag/resolve" => files::dag_resolve(s, &req).await,
        "dag/import" => files::dag_import(s, &mut req).await,
        "dag/export" => dag::export(s, &req).await,
        "bitswap/stat" | "stats/bitswap" => bitswap::stat(s, &req).await,
        "bitswap/wantlist" => bitswap::wantlist(s, &req).await,
        "bitswap/ledger" => bitswap::ledger(s, &req).await,
        "bitswap/reprovide" => bitswap::reprovide(s).await,
        "provide/stat" | "stats/provide" | "stats/reprovide" => bitswap::provide_stat(s).await,
        "key/gen" => names::key_gen(s, &req).await,
        "key/list" | "key/ls" => names::key_list(s, &req).await,
        "key/rm" => names::key_rm(s, &req).await,
        "key/rename" => names::key_rename(s, &req).await,
        "key/import" => names::key_import(s, &mut req).await,
        "name/publish" => names::name_publish(s, &req).await,
        "name/resolve" => names::name_resolve(s, &req).await,
        "name/inspect" => names::name_inspect(s, &mut req).await,
        "name/pubsub/state" => names::pubsub_state(s),
        "name/pubsub/subs" => names::pubsub_subs(s, &req),
        "name/pubsub/cancel" => names::pubsub_cancel(s, &req).await,
        "routing/get" | "dht/get" => names::routing_get(s, &req).await,
        "routing/put" | "dht/put" => names::routing_put(s, &mut req).await,
        "dht/query" => names::dht_query(s, &req).await,
        _ => Err(ApiError::NotFound),
    }
}

/// An NDJSON stream answered as Kubo answers one: its headers go with its first value, so an
/// error before any value is an error answer (JSON, 500 or 400), not a 200 stream that fails.
/// Waits for the first item `rx` yields, then streams it and the rest.
pub(crate) async fn stream_from_first(
    mut rx: tokio::sync::mpsc::Receiver<Result<serde_json::Value, ApiError>>,
) -> Result<Output, ApiError> {
    match rx.recv().await {
        None => Ok(Output::stream_of(Vec::new())),
        Some(Err(e)) => Err(e),
        Some(Ok(first)) => Ok(Output::Stream(
            futures::stream::once(async move { Ok(first) })
                .chain(dag::receiver_stream(rx))
                .boxed(),
        )),
    }
}

/// A path argument (`<cid>`, `/ipfs/<cid>`, `/ipfs/<cid>/a/b`) resolved to the CID it names, as
/// Kubo's `ResolvePath`: a bare CID is used as it is (nothing fetched), a path is walked with
/// `opts` (Kubo's `no link named "x" under <cid>` for a missing name).
pub(crate) async fn resolve_arg(
    state: &ApiState,
    arg: &str,
    opts: cairn_node_core::FetchOptions,
) -> Result<Cid, ApiError> {
    if let Ok(cid) = parse_cid_arg(arg) {
        return Ok(cid);
    }
    let resolved = state
        .inner
        .node
        .resolve(arg, opts)
        .await
        .map_err(dag::fetch_error)?;
    match resolved.remainder.first() {
        None => Ok(resolved.cid),
        Some(name) => Err(ApiError::command(format!(
            "no link named {name:?} under {}",
            resolved.cid
        ))),
    }
}

/// [`resolve_arg`] for each argument, in order.
pub(crate) async fn resolve_args(
    state: &ApiState,
    args: &[String],
    opts: cairn_node_core::FetchOptions,
) -> Result<Vec<Cid>, ApiError> {
    let mut cids = Vec::with_capacity(args.len());
    for arg in args {
        cids.push(resolve_arg(state, arg, opts).await?);
    }
    Ok(cids)
}

/// A CID argument: a CID, or an `/ipfs/<cid>` path (sub-paths need UnixFS, which cairn lacks).
pub(crate) fn parse_cid_arg(arg: &str) -> Result<Cid, ApiError> {
    let text = arg.strip_prefix("/ipfs/").unwrap_or(arg);
    if text.contains('/') {
        return Err(ApiError::client(format!(
            "cannot resolve path {arg:?}: only /ipfs/<cid> paths are supported"
        )));
    }
    cairn_blockstore::parse_cid_str(text).map_err(|e| ApiError::client(e.to_string()))
}

pub(crate) use crate::request::{multibase_decode, multibase_encode};

/// A Go `time.Duration` string (`1.234ms`, `2.5s`), as Kubo prints latencies.
pub(crate) fn go_duration(d: std::time::Duration) -> String {
    let ns = d.as_nanos();
    let trim = |v: f64, unit: &str| {
        let s = format!("{v:.6}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        format!("{s}{unit}")
    };
    match ns {
        0 => "0s".into(),
        n if n < 1_000 => format!("{n}ns"),
        n if n < 1_000_000 => trim(n as f64 / 1e3, "µs"),
        n if n < 1_000_000_000 => trim(n as f64 / 1e6, "ms"),
        n => trim(n as f64 / 1e9, "s"),
    }
}

/// The metric label of a bootstrap phase.
pub(crate) fn phase_name(phase: &BootstrapPhase) -> &'static str {
    match phase {
        BootstrapPhase::Connecting { .. } => "connecting",
        BootstrapPhase::BackingOff { .. } => "backing_off",
        BootstrapPhase::Connected => "connected",
        BootstrapPhase::Waiting => "waiting",
        BootstrapPhase::NoPeersConfigured => "no_peers_configured",
    }
}

/// Saves the config to the repo, if the node has one.
pub(crate) fn save_config(
    state: &ApiState,
    config: &cairn_node_core::Config,
) -> Result<(), ApiError> {
    if let Some(path) = &state.inner.repo_path {
        cairn_node_core::repo::write_config(path, config).map_err(ApiError::command)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_print_like_go() {
        use std::time::Duration;
        assert_eq!(go_duration(Duration::from_micros(1234)), "1.234ms");
        assert_eq!(go_duration(Duration::from_millis(2500)), "2.5s");
        assert_eq!(go_duration(Duration::from_nanos(999)), "999ns");
        assert_eq!(go_duration(Duration::ZERO), "0s");
    }

    #[test]
    fn pubsub_multibase() {
        assert_eq!(
            multibase_encode(b"smoke-1795245271254"),
            "uc21va2UtMTc5NTI0NTI3MTI1NA"
        );
        assert_eq!(
            multibase_decode("udG9waWMvw6k").unwrap(),
            "topic/é".as_bytes()
        );
        assert!(multibase_decode("topic").is_err());
        assert!(multibase_decode("u!!").is_err());
    }
}

#[cfg(test)]
mod tests_listing {
    /// Every name `dispatch` answers is in [`super::COMMANDS`] (metrics label by it, and the
    /// security and bad-input tests walk it), and nothing else is.
    #[test]
    fn commands_lists_every_dispatched_name() {
        let source = include_str!("mod.rs");
        let body = &source[source.find("async fn dispatch").unwrap()..];
        let body = &body[..body.find("\n}\n").unwrap()];
        let mut arms: Vec<&str> = body
            .lines()
            .filter(|l| l.contains("=>") && l.trim_start().starts_with('"'))
            .flat_map(|l| l.split("=>").next().unwrap().split('|'))
            .map(|name| name.trim().trim_matches('"'))
            .collect();
        arms.sort_unstable();
        let mut listed = super::COMMANDS.to_vec();
        listed.sort_unstable();
        assert_eq!(arms, listed);
    }
}

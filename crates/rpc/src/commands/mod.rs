//! The commands: one function per `/api/v0/<path>`, dispatched by name. Anything not listed is
//! an unknown command (404), exactly as Kubo answers for commands it does not have.

mod basic;
mod bitswap;
mod block;
mod config;
mod dag;
mod files;
mod network;
mod pin;
mod pubsub;
mod repo;
mod resolve;
mod routing;
mod unixfs;

use cairn_blockstore::Cid;
use cairn_bootstrap::BootstrapPhase;
use futures::StreamExt;
use futures::stream::BoxStream;

use crate::error::ApiError;
use crate::request::CommandRequest;
use crate::response::Output;
use crate::server::ApiState;

/// Every command path cairn serves under `/api/v0/`.
pub const COMMANDS: &[&str] = &[
    "id",
    "version",
    "shutdown",
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
    "refs",
    "dag/export",
    "bitswap/stat",
    "bitswap/wantlist",
    "bitswap/ledger",
    "bitswap/reprovide",
    "stats/bitswap",
    "provide/stat",
    "stats/provide",
    "stats/reprovide",
];

/// Kubo's text when the `timeout` option runs out (Go's `context.DeadlineExceeded`).
pub(crate) const DEADLINE_EXCEEDED: &str = "context deadline exceeded";

/// Runs one command under Kubo's global `timeout`: like Kubo's request context, the deadline
/// covers the command and whatever it streams afterwards (an NDJSON or raw stream still running
/// at the deadline ends with the error in the `X-Stream-Error` trailer).
pub(crate) async fn run(state: &ApiState, req: CommandRequest) -> Result<Output, ApiError> {
    let Some(deadline) = req.deadline() else {
        return dispatch(state, req).await;
    };
    let expired = || ApiError::command(DEADLINE_EXCEEDED);
    let output = tokio::time::timeout_at(deadline, dispatch(state, req))
        .await
        .map_err(|_| expired())??;
    Ok(match output {
        Output::Stream(s) => Output::Stream(until(s, deadline)),
        Output::Raw {
            content_type,
            length,
            body,
        } => Output::Raw {
            content_type,
            length,
            body: until(body, deadline),
        },
        done => done,
    })
}

/// A stream that ends with [`DEADLINE_EXCEEDED`] at `deadline` (dropping, and so cancelling,
/// what produces it).
fn until<T: Send + 'static>(
    stream: BoxStream<'static, Result<T, ApiError>>,
    deadline: tokio::time::Instant,
) -> BoxStream<'static, Result<T, ApiError>> {
    let start = Some((stream, Box::pin(tokio::time::sleep_until(deadline))));
    futures::stream::unfold(start, |state| async move {
        let (mut stream, mut expiry) = state?;
        tokio::select! {
            biased;
            item = stream.next() => item.map(|i| (i, Some((stream, expiry)))),
            () = &mut expiry => Some((Err(ApiError::command(DEADLINE_EXCEEDED)), None)),
        }
    })
    .boxed()
}

/// Runs one command.
async fn dispatch(state: &ApiState, mut req: CommandRequest) -> Result<Output, ApiError> {
    let s = state;
    match req.command.as_str() {
        "id" => basic::id(s, &req).await,
        "version" => basic::version(&req),
        "shutdown" => basic::shutdown(s),
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

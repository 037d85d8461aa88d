//! `cairn daemon`'s watched import folder (`Cairn.Watch`, `--watch DIR`): the
//! [`cairn::watch::Watcher`] over the node, run as a supervised service named `watch <dir>`, so
//! a watcher that fails (its notifier breaks, its state file cannot be written) is restarted with
//! backoff and starts again with a full scan.
//!
//! The watcher stops with the listeners (the daemon's `stop_accepting` token), before the node
//! closes its store, and saves its state on the way out; imports still running then are
//! dropped and done again at the next start. Its handle goes to every RPC listener
//! (`cairn/watch/ls|refresh`, the status page, the `cairn_watch_*` metrics), and its entry
//! changes go on the node's event bus (`watch_import` events).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use cairn::node::{CancellationToken, Node};
use cairn::rpc::supervisor::{self, Policy, ServiceError, Services};
use cairn::watch::{NodeImporter, WatchConfig, WatchHandle, Watcher};

/// Reads `Cairn.Watch` (with `--watch DIR` in place of `Dir`) and, when a folder is named,
/// starts the watcher under `services`; it stops when `stop` is tripped. Returns its handle for
/// the RPC and the supervisor's task. A malformed section or an unreadable state file stops the
/// start.
pub fn start(
    node: &Node,
    config: &cairn::node::Config,
    repo: &Path,
    dir: Option<PathBuf>,
    services: &Services,
    stop: CancellationToken,
) -> anyhow::Result<Option<(WatchHandle, tokio::task::JoinHandle<()>)>> {
    let dir = dir
        .map(|d| std::path::absolute(&d).with_context(|| format!("--watch {}", d.display())))
        .transpose()?;
    let Some(watch) = WatchConfig::from_config(config, dir)? else {
        return Ok(None);
    };
    let importer = Arc::new(NodeImporter::new(node.clone(), &watch));
    let dir = watch.dir.clone();
    let watcher = Arc::new(Watcher::new(
        watch,
        importer,
        Some(cairn::watch::state_path(repo)),
    )?);
    let handle = watcher.handle();
    let task = supervisor::supervise(
        services,
        format!("watch {}", dir.display()),
        Policy::default(),
        stop,
        move |ctx| {
            let watcher = watcher.clone();
            async move {
                ctx.ready();
                watcher
                    .run(ctx.stop_token().clone())
                    .await
                    .map_err(|e| ServiceError::Io(std::io::Error::other(e)))
            }
        },
    );
    out!("Watching {} for imports", dir.display());
    Ok(Some((handle, task)))
}

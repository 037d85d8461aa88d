//! `cairn-watch`: the watched import folder. Files and folders dropped into a directory are
//! added to the node with the configured add options and pinned once they are complete — after
//! a close-after-write event, or when their size and mtime have stayed unchanged for a settle
//! interval (2 s by default) — and never while they are still being written.
//!
//! - [`WatchConfig`]: the settings, a builder with defaults, read from the repo config's
//!   `Cairn.Watch` section ([`config`]).
//! - [`Watcher`]: the service ([`watcher`] explains when an entry counts as complete, scans,
//!   and memory); [`Watcher::run`] is one run, which the daemon's supervisor restarts after a
//!   failure. [`WatchHandle`] is what the RPC holds: the entries ([`Entry`], [`EntryState`]),
//!   a refresh, the metrics ([`metrics`]), the changes.
//! - [`Importer`]: the small trait the watcher adds, pins and unpins through, so it can be tested
//!   alone; [`NodeImporter`] implements it over a [`cairn_node_core::Node`] and publishes every
//!   state change on the node's event bus as a `watch_import` event.
//! - The state of every entry is saved in the repo ([`state`]) and read back at start, so an
//!   unchanged file is never imported twice.
//!
//! ```no_run
//! # async fn f(node: cairn_node_core::Node) -> Result<(), cairn_watch::WatchError> {
//! use std::sync::Arc;
//! use cairn_watch::{NodeImporter, WatchConfig, Watcher};
//!
//! let config = WatchConfig::new("/srv/drop").settle_interval(std::time::Duration::from_secs(2));
//! let importer = Arc::new(NodeImporter::new(node.clone(), &config));
//! let watcher = Watcher::new(config, importer, None)?;
//! let handle = watcher.handle();
//! let stop = cairn_node_core::CancellationToken::new();
//! tokio::spawn(async move { watcher.run(stop).await });
//! handle.refresh().await?; // rescan now
//! # Ok(()) }
//! ```

pub mod config;
pub mod error;
pub mod import;
pub mod metrics;
mod signature;
pub mod state;
pub mod watcher;

pub use config::{IgnoreList, WatchConfig};
pub use error::WatchError;
pub use import::{Imported, Importer, NodeImporter, Source};
pub use state::{Entry, EntryKind, EntryState, Signature, state_path};
pub use watcher::{ScanReport, WatchHandle, Watcher};

//! The watcher: one task per run that listens for change notifications, rescans, decides when an
//! entry is complete, and imports it with bounded concurrency.
//!
//! ## When an entry is complete
//!
//! - a close-after-write event on it (inotify's `IN_CLOSE_WRITE`, `Access(Close(Write))` in
//!   `notify`), or a rename onto its name (rsync and many uploaders write a temp name, which the
//!   ignore list skips, then rename): imported at once;
//! - otherwise, when its signature (size, mtime, inode, mode; for a folder, over everything under
//!   it) has not changed for the settle interval, checked every quarter of it. A file seen for the
//!   first time whose mtime is already older than the settle interval (placed while the daemon
//!   was down, or found by a rescan) is complete at once.
//!
//! A write, a create or a metadata change sends the entry back to waiting. An entry whose
//! signature equals the one it was imported with is never imported again, across restarts.
//! If the entry changed while it was being imported, the import is discarded (its pin removed)
//! and the entry settles again.
//!
//! ## Scans
//!
//! A scan lists the folder's top level (streamed, one name at a time), compares each entry's
//! signature with its state, and marks new, changed and vanished entries for checking. Scans run
//! at start, every rescan interval, on refresh, and when notifications were lost (the kernel
//! queue overflowed, or the bounded channel of [`EVENT_QUEUE`] events filled). When the folder
//! itself is missing (an unmounted share), entries are left alone, not deleted, and the folder
//! is looked for every second; when it is back it is watched and scanned again.
//!
//! ## Memory
//!
//! The watcher keeps every entry's state (a few hundred bytes each), the names waiting to be
//! checked or imported, and at most `concurrency` imports, each streaming its file through the
//! node's add pipeline (about 32 MiB of blocks in flight at most, whatever the file's size).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
use notify::{EventKind, RecursiveMode, Watcher as _};
use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::WatchConfig;
use crate::error::WatchError;
use crate::import::{Imported, Importer, Source};
use crate::metrics::WatchMetrics;
use crate::signature::{age, signature};
use crate::state::{self, Entry, EntryKind, EntryState, Signature, Stored};

/// Notifications queued between `notify`'s thread and the watcher; when full, later ones are
/// dropped and a rescan is made instead.
pub const EVENT_QUEUE: usize = 4096;

/// How often a missing folder is looked for, and the longest wait between settle checks.
const POLL: Duration = Duration::from_secs(1);

/// The state file is written at most this often while entries change.
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// Entry state changes kept for [`WatchHandle::subscribe`] receivers that fall behind.
const CHANGES_CAPACITY: usize = 1024;

/// What a scan found (the answer of `cairn/watch/refresh`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct ScanReport {
    /// Entries in the folder (not counting ignored names).
    pub entries: usize,
    /// New, changed, vanished or failed entries now being checked.
    pub changed: usize,
    /// Whether the folder exists.
    pub present: bool,
}

/// What a [`WatchHandle`] asks of the running watcher.
enum Command {
    /// Scan now (retrying failed entries) and answer what the scan found.
    Refresh(oneshot::Sender<ScanReport>),
}

/// What the watcher and its handles share; it outlives every run, so a restarted run keeps the
/// entries and answers the same handles.
struct Shared {
    /// The watched folder.
    dir: PathBuf,
    /// Every entry by name, with its signature: what `ls` shows and the state file holds.
    entries: Mutex<BTreeMap<String, Stored>>,
    /// The handles' side of the command channel.
    commands: mpsc::Sender<Command>,
    /// The running run's side (locked by it for as long as it runs).
    command_rx: tokio::sync::Mutex<mpsc::Receiver<Command>>,
    /// The `cairn_watch_*` metrics.
    metrics: WatchMetrics,
    /// Entry changes for [`WatchHandle::subscribe`].
    changes: broadcast::Sender<Entry>,
    /// Whether a run is active (refresh fails at once otherwise).
    running: AtomicBool,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("dir", &self.dir).finish()
    }
}

/// A handle on a watcher for the RPC and the CLI: its entries, a refresh, its metrics, its
/// changes. Cheap to clone.
#[derive(Clone, Debug)]
pub struct WatchHandle {
    shared: Arc<Shared>,
}

impl WatchHandle {
    /// The watched folder.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// Every entry, by name.
    pub fn entries(&self) -> Vec<Entry> {
        self.shared
            .entries
            .lock()
            .values()
            .map(|s| s.entry.clone())
            .collect()
    }

    /// One entry.
    pub fn entry(&self, name: &str) -> Option<Entry> {
        self.shared
            .entries
            .lock()
            .get(name)
            .map(|s| s.entry.clone())
    }

    /// Entry counts in [`EntryState::ALL`] order (settling, importing, imported, failed).
    pub fn counts(&self) -> [usize; 4] {
        count(&self.shared.entries.lock())
    }

    /// Rescans the folder now (failed entries are retried) and returns what the scan found;
    /// the imports it starts finish later.
    ///
    /// # Errors
    /// [`WatchError::NotRunning`] when no run of the watcher is active.
    pub async fn refresh(&self) -> Result<ScanReport, WatchError> {
        let (tx, rx) = oneshot::channel();
        if !self.shared.running.load(Ordering::SeqCst) {
            return Err(WatchError::NotRunning);
        }
        self.shared
            .commands
            .send(Command::Refresh(tx))
            .await
            .map_err(|_| WatchError::NotRunning)?;
        rx.await.map_err(|_| WatchError::NotRunning)
    }

    /// Every later entry change: the entry as it is after the change (a deleted entry comes
    /// once more with state [`EntryState::Removed`] and the CID it had). A receiver more than
    /// 1024 changes behind loses the oldest.
    pub fn subscribe(&self) -> broadcast::Receiver<Entry> {
        self.shared.changes.subscribe()
    }

    /// Registers the `cairn_watch_*` metrics (see [`crate::metrics`]) in `registry`.
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        self.shared.metrics.register(registry);
    }

    /// Whether a run of the watcher is active.
    pub fn is_running(&self) -> bool {
        self.shared.running.load(Ordering::SeqCst)
    }
}

/// The watched import folder service; see the [module docs](self).
///
/// [`Watcher::run`] is one run; a supervisor calls it again after it failed (a restart starts
/// with a full scan, and keeps the entries).
pub struct Watcher {
    config: Arc<WatchConfig>,
    importer: Arc<dyn Importer>,
    state_file: Option<PathBuf>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("config", &self.config)
            .field("state_file", &self.state_file)
            .finish()
    }
}

/// One pending entry's progress towards being complete.
#[derive(Debug)]
struct Tracked {
    /// The signature last observed, and since when it has not changed.
    seen: Option<(Signature, Instant)>,
    /// A close-after-write or rename-onto event: complete now.
    complete: bool,
    /// Import even if unchanged (refresh retries failed entries).
    retry: bool,
    /// An import of it is running.
    importing: bool,
    /// Something happened to it while it was importing.
    dirty: bool,
}

impl Tracked {
    fn new() -> Self {
        Tracked {
            seen: None,
            complete: false,
            retry: false,
            importing: false,
            dirty: false,
        }
    }
}

/// What one run keeps.
struct Run {
    /// Entries that may have changed, by name: checked every quarter settle interval until they
    /// are imported, found unchanged, failed or gone. Only these cost work per check.
    tracked: HashMap<String, Tracked>,
    /// Complete entries waiting for an import slot, in the order they became complete.
    ready: VecDeque<String>,
    /// The running imports (at most `concurrency`): each answers its entry's name, kind,
    /// signature when the import started, and result.
    tasks: JoinSet<(String, EntryKind, Signature, Result<Imported, WatchError>)>,
    /// The change notifier while the folder is watched (dropped while it is missing).
    notifier: Option<notify::RecommendedWatcher>,
    /// Whether the folder exists (as far as the last scan or check saw).
    present: bool,
    /// A full scan is due (lost notifications, the folder itself changed, the periodic tick).
    rescan: bool,
    /// Set by the notifier's thread when the event queue was full and events were dropped.
    overflow: Arc<AtomicBool>,
    /// The notifier's side of the event queue (a new notifier gets a clone).
    event_tx: mpsc::Sender<notify::Result<notify::Event>>,
    /// Entries changed since the state file was last written.
    dirty: bool,
    /// When the state file was last written.
    last_save: Instant,
}

impl Watcher {
    /// A watcher of `config.dir` importing through `importer`, its state kept in `state_file`
    /// (see [`state::state_path`]; `None` keeps it in memory only). The saved state is read
    /// now.
    ///
    /// # Errors
    /// [`WatchError::State`] for a state file that cannot be read or parsed.
    pub fn new(
        config: WatchConfig,
        importer: Arc<dyn Importer>,
        state_file: Option<PathBuf>,
    ) -> Result<Self, WatchError> {
        let entries = match &state_file {
            Some(path) => state::load(path, &config.dir)?,
            None => Vec::new(),
        };
        let entries: BTreeMap<String, Stored> = entries
            .into_iter()
            .map(|s| (s.entry.path.clone(), s))
            .collect();
        let (commands, command_rx) = mpsc::channel(16);
        let metrics = WatchMetrics::default();
        metrics.set_counts(count(&entries));
        Ok(Watcher {
            shared: Arc::new(Shared {
                dir: config.dir.clone(),
                entries: Mutex::new(entries),
                commands,
                command_rx: tokio::sync::Mutex::new(command_rx),
                metrics,
                changes: broadcast::channel(CHANGES_CAPACITY).0,
                running: AtomicBool::new(false),
            }),
            config: Arc::new(config),
            importer,
            state_file,
        })
    }

    /// A handle for the RPC.
    pub fn handle(&self) -> WatchHandle {
        WatchHandle {
            shared: self.shared.clone(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &WatchConfig {
        &self.config
    }

    /// Runs until `stop` is tripped (then returns `Ok(())` after saving the state), or until
    /// the watcher itself fails: its notifier cannot be set up, or its state cannot be saved.
    /// An import's failure is kept on its entry and never ends the run. Imports running at
    /// stop are dropped; their entries are imported on the next run.
    ///
    /// # Errors
    /// [`WatchError::Notify`], [`WatchError::State`].
    pub async fn run(&self, stop: CancellationToken) -> Result<(), WatchError> {
        let mut commands = self.shared.command_rx.lock().await;
        let (event_tx, mut event_rx) = mpsc::channel(EVENT_QUEUE);
        let mut run = Run {
            tracked: HashMap::new(),
            ready: VecDeque::new(),
            tasks: JoinSet::new(),
            notifier: None,
            present: false,
            rescan: false,
            overflow: Arc::new(AtomicBool::new(false)),
            event_tx,
            dirty: false,
            last_save: Instant::now(),
        };
        // Imports interrupted by the last stop are retried.
        for (name, stored) in self.shared.entries.lock().iter_mut() {
            if stored.entry.state == EntryState::Importing {
                stored.entry.state = EntryState::Settling;
            }
            if stored.entry.state == EntryState::Settling {
                run.tracked.insert(name.clone(), Tracked::new());
            }
        }
        self.shared.running.store(true, Ordering::SeqCst);
        let result = self
            .run_loop(&mut run, &mut commands, &mut event_rx, &stop)
            .await;
        self.shared.running.store(false, Ordering::SeqCst);
        run.tasks.abort_all();
        run.notifier = None;
        {
            let mut entries = self.shared.entries.lock();
            for s in entries.values_mut() {
                if s.entry.state == EntryState::Importing {
                    s.entry.state = EntryState::Settling;
                }
            }
        }
        let saved = self.save().await;
        result.and(saved)
    }

    /// The body of a run: a first scan, then one event at a time, in this order of priority:
    /// stop, a handle's command, an import that ended, a notification, the settle check tick
    /// (a quarter of the settle interval, at most [`POLL`]), the periodic rescan, and the
    /// once-a-second look for a missing folder. After each: a rescan if one is due, imports
    /// started up to the concurrency limit, and the state file written if entries changed and
    /// [`SAVE_EVERY`] has passed.
    async fn run_loop(
        &self,
        run: &mut Run,
        commands: &mut mpsc::Receiver<Command>,
        event_rx: &mut mpsc::Receiver<notify::Result<notify::Event>>,
        stop: &CancellationToken,
    ) -> Result<(), WatchError> {
        self.scan(run, false).await?;
        let check_every = (self.config.settle_interval / 4).clamp(Duration::from_millis(20), POLL);
        let mut check = tokio::time::interval(check_every);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let rescan_every = self.config.rescan_interval.unwrap_or(Duration::MAX / 4);
        let mut rescan = tokio::time::interval_at(Instant::now() + rescan_every, rescan_every);
        rescan.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut poll = tokio::time::interval(POLL);
        loop {
            tokio::select! {
                biased;
                () = stop.cancelled() => return Ok(()),
                Some(cmd) = commands.recv() => match cmd {
                    Command::Refresh(reply) => {
                        let report = self.scan(run, true).await?;
                        let _ = reply.send(report);
                    }
                },
                Some(res) = run.tasks.join_next(), if !run.tasks.is_empty() => {
                    match res {
                        Ok((name, kind, sig, result)) => {
                            self.finished(run, name, kind, sig, result).await;
                        }
                        Err(e) => tracing::error!("a watch import task failed: {e}"),
                    }
                }
                Some(ev) = event_rx.recv() => self.on_event(run, ev),
                _ = check.tick() => self.check(run).await,
                _ = rescan.tick() => run.rescan = true,
                _ = poll.tick(), if !run.present => run.rescan = true,
            }
            if run.overflow.swap(false, Ordering::SeqCst) {
                tracing::warn!("watch notifications were lost; rescanning");
                run.rescan = true;
            }
            if std::mem::take(&mut run.rescan) {
                self.scan(run, false).await?;
            }
            self.start_imports(run);
            if run.dirty && run.last_save.elapsed() >= SAVE_EVERY {
                run.dirty = false;
                run.last_save = Instant::now();
                self.save().await?;
            }
        }
    }

    /// Writes the state file (if there is one), on a blocking thread, from a copy of the
    /// entries taken under the lock (the lock is not held while writing).
    async fn save(&self) -> Result<(), WatchError> {
        let Some(path) = self.state_file.clone() else {
            return Ok(());
        };
        let entries: Vec<Stored> = self.shared.entries.lock().values().cloned().collect();
        let dir = self.config.dir.clone();
        tokio::task::spawn_blocking(move || state::save(&path, &dir, entries))
            .await
            .map_err(|e| WatchError::State {
                path: PathBuf::new(),
                source: std::io::Error::other(e),
            })?
    }

    /// Starts watching the folder (when notifications are on and it is not watched yet),
    /// recursively, so a change anywhere under a top-level folder is heard. `notify`'s thread
    /// never blocks on the watcher: an event that does not fit in the queue is dropped and
    /// [`Run::overflow`] set, which makes the loop rescan.
    fn attach(&self, run: &mut Run) -> Result<(), WatchError> {
        if !self.config.notify || run.notifier.is_some() {
            return Ok(());
        }
        let tx = run.event_tx.clone();
        let overflow = run.overflow.clone();
        let mut notifier = notify::recommended_watcher(move |ev| {
            if tx.try_send(ev).is_err() {
                overflow.store(true, Ordering::SeqCst);
            }
        })?;
        notifier.watch(&self.config.dir, RecursiveMode::Recursive)?;
        run.notifier = Some(notifier);
        Ok(())
    }

    /// A full scan of the top level; see the module docs. Marks for checking every entry that is
    /// new, whose signature differs from the stored one, that is still settling, that vanished,
    /// or (on `refresh`) that failed; then checks them at once. A folder that cannot be listed
    /// is "missing": its entries are left alone and nothing is deleted.
    async fn scan(&self, run: &mut Run, refresh: bool) -> Result<ScanReport, WatchError> {
        self.shared.metrics.scans.inc();
        let dir = self.config.dir.clone();
        let missing = |run: &mut Run, e: &dyn std::fmt::Display| {
            if run.present || refresh {
                tracing::warn!(dir = %dir.display(), "the watched folder cannot be read: {e}; its entries are kept");
            }
            run.present = false;
            run.notifier = None;
            Ok(ScanReport::default())
        };
        if !run.present {
            // Watch first, then list (tokio's `read_dir` reads its first names at once):
            // whatever is created in between is in the listing or in a notification.
            match tokio::fs::metadata(&dir).await {
                Ok(m) if m.is_dir() => {}
                Ok(_) => return missing(run, &"not a folder"),
                Err(e) => return missing(run, &e),
            }
            if let Err(e) = self.attach(run) {
                if std::fs::metadata(&dir).is_err() {
                    return missing(run, &e);
                }
                return Err(e);
            }
            run.present = true;
        }
        let mut rd = match tokio::fs::read_dir(&dir).await {
            Ok(rd) => rd,
            Err(e) => return missing(run, &e),
        };
        let mut names = HashSet::new();
        let mut report = ScanReport {
            present: true,
            ..ScanReport::default()
        };
        loop {
            let child = match rd.next_entry().await {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), "listing the watched folder failed: {e}");
                    return Ok(report);
                }
            };
            let name = child.file_name().to_string_lossy().into_owned();
            if self.config.ignore.is_ignored(&name) {
                continue;
            }
            report.entries += 1;
            let sig = signature(child.path(), &self.config).await.ok();
            let known = self
                .shared
                .entries
                .lock()
                .get(&name)
                .map(|s| (s.signature, s.entry.state));
            let changed = match known {
                None => true,
                Some((old, st)) => {
                    sig.is_none()
                        || old != sig.map(|s| s.1)
                        || (refresh && st == EntryState::Failed)
                        || st == EntryState::Settling
                }
            };
            if changed {
                report.changed += 1;
                let t = run.tracked.entry(name.clone()).or_insert_with(Tracked::new);
                if refresh {
                    t.retry = true;
                }
                if t.importing {
                    t.dirty = true;
                }
            }
            names.insert(name);
        }
        let vanished: Vec<String> = self
            .shared
            .entries
            .lock()
            .keys()
            .filter(|k| !names.contains(*k))
            .cloned()
            .collect();
        for name in vanished {
            report.changed += 1;
            run.tracked.entry(name).or_insert_with(Tracked::new);
        }
        self.check(run).await;
        Ok(report)
    }

    /// Takes one notification: maps each path to its top-level entry, skips ignored names at
    /// any depth and reads (our own imports open files too), and marks the entry either
    /// complete (close-after-write or rename onto it, at the top level) or still changing (its
    /// settle interval starts again). A notification about the folder itself, or one saying
    /// events were lost, makes the loop rescan.
    fn on_event(&self, run: &mut Run, ev: notify::Result<notify::Event>) {
        let ev = match ev {
            Ok(ev) => ev,
            Err(e) => {
                tracing::warn!("watch notification error: {e}; rescanning");
                run.rescan = true;
                return;
            }
        };
        tracing::trace!(?ev, "watch notification");
        if ev.need_rescan() {
            run.rescan = true;
            return;
        }
        let close_write = matches!(
            ev.kind,
            EventKind::Access(AccessKind::Close(AccessMode::Write))
        );
        // Reads (our own imports among them) change nothing.
        if matches!(ev.kind, EventKind::Access(_)) && !close_write {
            return;
        }
        let renamed_onto = |i: usize| match ev.kind {
            EventKind::Modify(ModifyKind::Name(RenameMode::To)) => true,
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => i == 1,
            _ => false,
        };
        for (i, path) in ev.paths.iter().enumerate() {
            let Ok(rel) = path.strip_prefix(&self.config.dir) else {
                continue;
            };
            let mut parts = rel.components();
            let Some(top) = parts.next() else {
                // The folder itself (removed, moved, recreated).
                run.rescan = true;
                continue;
            };
            if rel.components().any(|c| {
                self.config
                    .ignore
                    .is_ignored(&c.as_os_str().to_string_lossy())
            }) {
                continue;
            }
            let at_top = parts.next().is_none();
            let name = top.as_os_str().to_string_lossy().into_owned();
            let t = run.tracked.entry(name).or_insert_with(Tracked::new);
            if t.importing {
                t.dirty = true;
            }
            if at_top && (close_write || renamed_onto(i)) {
                t.complete = true;
            } else {
                // Still changing: the settle interval starts again.
                t.complete = false;
                t.seen = None;
            }
        }
    }

    /// Checks every tracked entry that is not importing or queued. One `stat` (a walk for a
    /// folder) each, then:
    /// - gone (and the folder is still there): removed, its CID unpinned;
    /// - unreadable or unsupported: `failed` with the reason;
    /// - unchanged since its import (or failure), and not a refresh retry: no longer tracked;
    /// - otherwise `settling`, and queued for import when complete (see the module docs).
    async fn check(&self, run: &mut Run) {
        if !run.present {
            return;
        }
        if std::fs::metadata(&self.config.dir).is_err() {
            // The folder itself went away (unmounted, moved): its entries are kept, and it is
            // looked for every second.
            tracing::warn!(dir = %self.config.dir.display(), "the watched folder is gone; waiting for it to come back");
            run.present = false;
            run.notifier = None;
            return;
        }
        let names: Vec<String> = run
            .tracked
            .iter()
            .filter(|(_, t)| !t.importing)
            .map(|(n, _)| n.clone())
            .collect();
        let settle = self.config.settle_interval;
        for name in names {
            let path = self.config.dir.join(&name);
            let observed = signature(path.clone(), &self.config).await;
            let now = Instant::now();
            let gone = matches!(
                std::fs::symlink_metadata(&path),
                Err(ref e) if e.kind() == std::io::ErrorKind::NotFound
            );
            let (kind, sig) = match observed {
                Ok((kind, sig)) => (kind, sig),
                Err(_) if gone => {
                    run.tracked.remove(&name);
                    self.removed(run, &name).await;
                    continue;
                }
                Err(e) => {
                    // Unreadable, unsupported: reported, not fatal.
                    run.tracked.remove(&name);
                    self.update(run, &name, None, |s| {
                        s.entry.state = EntryState::Failed;
                        s.entry.error = Some(e.to_string());
                        s.signature = None;
                    });
                    self.shared.metrics.failures.inc();
                    continue;
                }
            };
            let stored = self
                .shared
                .entries
                .lock()
                .get(&name)
                .map(|s| (s.signature, s.entry.state));
            let t = run.tracked.get_mut(&name).expect("tracked");
            if let Some((Some(old), st)) = stored
                && old == sig
                && matches!(st, EntryState::Imported | EntryState::Failed)
                && !t.retry
            {
                run.tracked.remove(&name);
                continue;
            }
            let first = t.seen.is_none();
            let steady = match t.seen {
                Some((s, since)) if s == sig => now.duration_since(since) >= settle,
                _ => {
                    t.seen = Some((sig, now));
                    false
                }
            };
            // Already old when first seen: nothing has written to it for a settle interval.
            let old_enough = first && age(sig.mtime_ns) >= settle;
            tracing::trace!(entry = %name, ?sig, complete = t.complete, steady, old_enough, "watch check");
            if t.complete || steady || old_enough {
                t.complete = false;
                t.retry = false;
                t.importing = true;
                run.ready.push_back(name.clone());
            }
            let size = sig.len;
            self.update(run, &name, Some(kind), |s| {
                if s.entry.state != EntryState::Settling {
                    s.entry.state = EntryState::Settling;
                    s.entry.error = None;
                }
                s.entry.size = size;
            });
        }
    }

    /// Starts imports from the ready queue up to the concurrency limit. Each import task takes
    /// the entry's signature first, so the result can be checked against what the entry is when
    /// the import ends.
    fn start_imports(&self, run: &mut Run) {
        while run.tasks.len() < self.config.concurrency {
            let Some(name) = run.ready.pop_front() else {
                return;
            };
            let path = self.config.dir.join(&name);
            let config = self.config.clone();
            let importer = self.importer.clone();
            self.update(run, &name, None, |s| {
                s.entry.state = EntryState::Importing;
            });
            let task_name = name.clone();
            run.tasks.spawn(async move {
                let (kind, sig) = match signature(path.clone(), &config).await {
                    Ok(k) => k,
                    Err(e) => return (task_name, EntryKind::File, Signature::default(), Err(e)),
                };
                let source = Source {
                    name: task_name.clone(),
                    path,
                    kind,
                };
                let result = importer.import(source).await;
                (task_name, kind, sig, result)
            });
        }
    }

    /// An import ended. If the entry is unchanged since the import started, it is `imported`
    /// (its previous CID unpinned first, unless another entry has it) or `failed`; if it changed
    /// meanwhile, the result is discarded (its pin removed unless used) and the entry settles
    /// again.
    async fn finished(
        &self,
        run: &mut Run,
        name: String,
        kind: EntryKind,
        sig: Signature,
        result: Result<Imported, WatchError>,
    ) {
        let path = self.config.dir.join(&name);
        let now_sig = signature(path, &self.config).await.ok().map(|s| s.1);
        let dirty = run.tracked.get(&name).is_some_and(|t| t.dirty);
        if let Some(t) = run.tracked.get_mut(&name) {
            t.importing = false;
            t.dirty = false;
        }
        match result {
            Ok(imported) if now_sig == Some(sig) => {
                let cid = imported.cid.to_string();
                let old = self
                    .shared
                    .entries
                    .lock()
                    .get(&name)
                    .and_then(|s| s.entry.cid.clone());
                self.shared.metrics.imports.inc();
                self.shared.metrics.bytes.inc_by(imported.bytes);
                // The old pin goes first, so whoever hears of the import sees it replaced.
                if let Some(old) = old.filter(|o| *o != cid) {
                    self.unpin_unless_used(&old, Some(&name)).await;
                }
                self.update(run, &name, Some(kind), |s| {
                    s.entry.state = EntryState::Imported;
                    s.entry.cid = Some(cid.clone());
                    s.entry.size = sig.len;
                    s.entry.imported_at = Some(unix_ms());
                    s.entry.error = None;
                    s.signature = Some(sig);
                });
                tracing::info!(entry = %name, %cid, "watched entry imported");
                if !dirty {
                    run.tracked.remove(&name);
                }
            }
            Ok(imported) => {
                // It changed while being read: this import is of no version that exists.
                let cid = imported.cid.to_string();
                let current = self
                    .shared
                    .entries
                    .lock()
                    .get(&name)
                    .and_then(|s| s.entry.cid.clone());
                if current.as_deref() != Some(cid.as_str()) {
                    self.unpin_unless_used(&cid, None).await;
                }
                let t = run.tracked.entry(name.clone()).or_insert_with(Tracked::new);
                t.seen = None;
                self.update(run, &name, None, |s| {
                    s.entry.state = EntryState::Settling;
                });
            }
            Err(e) => {
                tracing::warn!(entry = %name, "watched entry could not be imported: {e}");
                self.shared.metrics.failures.inc();
                self.update(run, &name, None, |s| {
                    s.entry.state = EntryState::Failed;
                    s.entry.error = Some(e.to_string());
                    s.signature = Some(sig);
                });
                if !dirty {
                    run.tracked.remove(&name);
                }
            }
        }
    }

    /// An entry disappeared: forget it, and unpin its CID (if set so and no other entry has it).
    async fn removed(&self, run: &mut Run, name: &str) {
        let Some(stored) = self.shared.entries.lock().remove(name) else {
            return;
        };
        run.dirty = true;
        if self.config.unpin_on_delete
            && let Some(cid) = &stored.entry.cid
        {
            self.unpin_unless_used(cid, None).await;
        }
        tracing::info!(entry = %name, "watched entry removed");
        self.publish(&Entry {
            state: EntryState::Removed,
            ..stored.entry.clone()
        });
    }

    /// Unpins `cid` unless an entry (other than `except`) still has it.
    async fn unpin_unless_used(&self, cid: &str, except: Option<&str>) {
        let used =
            self.shared.entries.lock().values().any(|s| {
                s.entry.cid.as_deref() == Some(cid) && Some(s.entry.path.as_str()) != except
            });
        if used {
            return;
        }
        let Ok(parsed) = cairn_blockstore::parse_cid_str(cid) else {
            return;
        };
        match self.importer.unpin(parsed).await {
            Ok(()) => {
                self.shared.metrics.unpins.inc();
            }
            Err(e) => {
                tracing::warn!(%cid, "unpinning a replaced or deleted watched entry failed: {e}")
            }
        }
    }

    /// Changes (or creates) an entry with `f`, setting its kind when given. Any change marks the
    /// state file dirty and updates the gauges; a change of state or CID is also published
    /// (to [`WatchHandle::subscribe`] and the importer's [`Importer::report`]).
    fn update(
        &self,
        run: &mut Run,
        name: &str,
        kind: Option<EntryKind>,
        f: impl FnOnce(&mut Stored),
    ) {
        let (changed, entry, counts) = {
            let mut entries = self.shared.entries.lock();
            let stored = entries.entry(name.to_string()).or_insert_with(|| Stored {
                entry: Entry {
                    path: name.to_string(),
                    kind: kind.unwrap_or(EntryKind::File),
                    state: EntryState::Settling,
                    cid: None,
                    size: 0,
                    imported_at: None,
                    error: None,
                },
                signature: None,
            });
            let before = stored.clone();
            f(stored);
            if let Some(kind) = kind {
                stored.entry.kind = kind;
            }
            let state_changed = before.entry.state != stored.entry.state
                || before.entry.cid != stored.entry.cid
                || before.entry.path != name;
            (
                (before != *stored).then_some(state_changed),
                stored.entry.clone(),
                count(&entries),
            )
        };
        if let Some(state_changed) = changed {
            tracing::debug!(entry = %name, state = entry.state.as_str(), cid = ?entry.cid, error = ?entry.error, "watched entry changed");
            run.dirty = true;
            self.shared.metrics.set_counts(counts);
            if state_changed {
                self.publish(&entry);
            }
        }
    }

    /// Tells the importer (the node's event bus) and [`WatchHandle::subscribe`] receivers.
    fn publish(&self, entry: &Entry) {
        let _ = self.shared.changes.send(entry.clone());
        self.importer.report(entry);
        let counts = count(&self.shared.entries.lock());
        self.shared.metrics.set_counts(counts);
    }
}

fn count(entries: &BTreeMap<String, Stored>) -> [usize; 4] {
    let mut counts = [0; 4];
    for s in entries.values() {
        let i = EntryState::ALL
            .iter()
            .position(|x| *x == s.entry.state)
            .unwrap_or(0);
        counts[i] += 1;
    }
    counts
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

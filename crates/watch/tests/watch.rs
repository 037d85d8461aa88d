//! The watcher over a real in-process node (in-memory store, test profile): complete-only
//! imports (slow copies, rsync's temp-then-rename), changes, deletes, refresh without
//! notifications, restarts, a folder that goes and comes back, unreadable entries.
//!
//! Every wait is on the watcher's change stream ([`WatchHandle::subscribe`]) with a generous
//! deadline. The only fixed waits are observation windows for things that must *not* happen
//! (an import before a copy ended, a second import), each at least twice the settle interval.

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cairn_blockstore::PinState;
use cairn_node_core::{AddOptions, CancellationToken, Node, Profile};
use cairn_watch::{Entry, EntryState, NodeImporter, WatchConfig, WatchHandle, Watcher};
use tokio::sync::broadcast;

const SETTLE: Duration = Duration::from_millis(1000);
const DEADLINE: Duration = Duration::from_secs(120);

struct Running {
    node: Node,
    handle: WatchHandle,
    changes: broadcast::Receiver<Entry>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), cairn_watch::WatchError>>,
}

impl Running {
    async fn stop(self) -> Node {
        self.stop.cancel();
        self.task.await.unwrap().unwrap();
        self.node
    }
}

async fn node() -> Node {
    // `RUST_LOG=cairn_watch=trace` shows the watcher's decisions.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    Node::builder()
        .profile(Profile::Test)
        .build()
        .await
        .unwrap()
}

fn config(dir: &Path) -> WatchConfig {
    WatchConfig::new(dir).settle_interval(SETTLE)
}

/// Starts a watcher on `node`; waits until its first scan is done (a refresh is answered only
/// after it).
async fn start(node: Node, config: WatchConfig, state: Option<&Path>) -> Running {
    let importer = Arc::new(NodeImporter::new(node.clone(), &config));
    let watcher = Watcher::new(config, importer, state.map(Path::to_path_buf)).unwrap();
    let handle = watcher.handle();
    let changes = handle.subscribe();
    let stop = CancellationToken::new();
    let s = stop.clone();
    let task = tokio::spawn(async move { watcher.run(s).await });
    while !handle.is_running() {
        tokio::task::yield_now().await;
    }
    Running {
        node,
        handle,
        changes,
        stop,
        task,
    }
}

/// The next change of `path` into `state`, skipping others; panics after [`DEADLINE`].
async fn wait_for(rx: &mut broadcast::Receiver<Entry>, path: &str, state: EntryState) -> Entry {
    tokio::time::timeout(DEADLINE, async {
        loop {
            let e = rx.recv().await.unwrap();
            if e.path == path && e.state == state {
                return e;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{path} did not become {state:?}"))
}

/// Every change that arrived so far (without waiting).
fn drain(rx: &mut broadcast::Receiver<Entry>) -> Vec<Entry> {
    let mut out = Vec::new();
    while let Ok(e) = rx.try_recv() {
        out.push(e);
    }
    out
}

/// The CID `cairn add` would give `data` with default options.
async fn cid_of(node: &Node, data: Vec<u8>) -> String {
    let mut opts = AddOptions::new();
    opts.only_hash = true;
    node.add_bytes(data.into(), opts)
        .await
        .unwrap()
        .cid
        .to_string()
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 11) as u8)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_50_mib_file_copied_in_slow_chunks_is_imported_once_after_the_last_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = start(node().await, config(dir.path()), None).await;
    let data = pattern(50 << 20, 7);
    let chunk = 5 << 20;
    let mut file = std::fs::File::create(dir.path().join("big.iso")).unwrap();
    for (i, part) in data.chunks(chunk).enumerate() {
        file.write_all(part).unwrap();
        file.flush().unwrap();
        // Input pacing, shorter than the settle interval: a copy over a slow link.
        tokio::time::sleep(SETTLE / 3).await;
        let seen = drain(&mut w.changes);
        assert!(
            seen.iter()
                .all(|e| !matches!(e.state, EntryState::Importing | EntryState::Imported)),
            "imported before the copy ended (after chunk {i}): {seen:?}"
        );
    }
    // The last write is done; closing the file ends the copy.
    drop(file);
    let imported = wait_for(&mut w.changes, "big.iso", EntryState::Imported).await;
    assert_eq!(imported.size, 50 << 20);
    let expected = cid_of(&w.node, data).await;
    assert_eq!(imported.cid.as_deref(), Some(expected.as_str()));
    // Exactly one import: nothing more within two settle intervals, nor after a rescan.
    w.handle.refresh().await.unwrap();
    tokio::time::sleep(SETTLE * 2).await;
    let later = drain(&mut w.changes);
    assert!(
        later.iter().all(|e| e.state != EntryState::Importing),
        "imported again: {later:?}"
    );
    let cid = cairn_blockstore::parse_cid_str(&expected).unwrap();
    assert_eq!(
        w.node.pin_state(&cid).await.unwrap(),
        Some(PinState::Recursive)
    );
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsync_style_temp_then_rename_imports_once_under_the_final_name() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = start(node().await, config(dir.path()), None).await;
    let data = pattern(3 << 20, 1);
    // rsync writes `.name.XXXXXX` next to the target, then renames it over the target.
    let temp = dir.path().join(".photo.jpg.Xa81Bq");
    let mut file = std::fs::File::create(&temp).unwrap();
    for part in data.chunks(1 << 20) {
        file.write_all(part).unwrap();
        tokio::time::sleep(SETTLE / 3).await;
    }
    drop(file);
    // Longer than the settle interval: the temp name is never imported, however long it sits.
    tokio::time::sleep(SETTLE * 2).await;
    assert!(drain(&mut w.changes).is_empty());
    std::fs::rename(&temp, dir.path().join("photo.jpg")).unwrap();
    let imported = wait_for(&mut w.changes, "photo.jpg", EntryState::Imported).await;
    assert_eq!(imported.cid, Some(cid_of(&w.node, data).await));
    tokio::time::sleep(SETTLE * 2).await;
    let later = drain(&mut w.changes);
    assert!(
        later.iter().all(|e| e.state != EntryState::Importing),
        "{later:?}"
    );
    let names: Vec<String> = w.handle.entries().into_iter().map(|e| e.path).collect();
    assert_eq!(names, ["photo.jpg"]);
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_file_is_unpinned_and_a_changed_one_replaces_its_pin() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = start(node().await, config(dir.path()), None).await;
    let pinned = |node: Node, cid: String| async move {
        let cid = cairn_blockstore::parse_cid_str(&cid).unwrap();
        node.pin_state(&cid).await.unwrap() == Some(PinState::Recursive)
    };
    std::fs::write(dir.path().join("a.txt"), b"first version").unwrap();
    std::fs::write(dir.path().join("twin.txt"), b"same bytes").unwrap();
    std::fs::write(dir.path().join("twin2.txt"), b"same bytes").unwrap();
    let first = wait_for(&mut w.changes, "a.txt", EntryState::Imported)
        .await
        .cid
        .unwrap();
    assert!(pinned(w.node.clone(), first.clone()).await);
    // Changed: imported again, the old pin replaced by the new one.
    std::fs::write(dir.path().join("a.txt"), b"second version").unwrap();
    let second = wait_for(&mut w.changes, "a.txt", EntryState::Imported)
        .await
        .cid
        .unwrap();
    assert_ne!(first, second);
    assert!(pinned(w.node.clone(), second.clone()).await);
    assert!(!pinned(w.node.clone(), first).await);
    // Deleted: unpinned.
    std::fs::remove_file(dir.path().join("a.txt")).unwrap();
    let gone = wait_for(&mut w.changes, "a.txt", EntryState::Removed).await;
    assert_eq!(gone.cid.as_deref(), Some(second.as_str()));
    assert!(!pinned(w.node.clone(), second).await);
    assert!(w.handle.entry("a.txt").is_none());
    // Two entries with one CID: deleting one keeps the pin the other needs.
    let twin = match w.handle.entry("twin2.txt") {
        Some(e) if e.state == EntryState::Imported => e.cid.unwrap(),
        _ => wait_for(&mut w.changes, "twin2.txt", EntryState::Imported)
            .await
            .cid
            .unwrap(),
    };
    while w.handle.entry("twin.txt").map(|e| e.state) != Some(EntryState::Imported) {
        wait_for(&mut w.changes, "twin.txt", EntryState::Imported).await;
    }
    std::fs::remove_file(dir.path().join("twin.txt")).unwrap();
    wait_for(&mut w.changes, "twin.txt", EntryState::Removed).await;
    assert!(pinned(w.node.clone(), twin).await);
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_unpin_on_delete_off_a_deleted_file_keeps_its_pin() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = start(
        node().await,
        config(dir.path()).unpin_on_delete(false),
        None,
    )
    .await;
    std::fs::write(dir.path().join("keep.txt"), b"keep me").unwrap();
    let cid = wait_for(&mut w.changes, "keep.txt", EntryState::Imported)
        .await
        .cid
        .unwrap();
    std::fs::remove_file(dir.path().join("keep.txt")).unwrap();
    wait_for(&mut w.changes, "keep.txt", EntryState::Removed).await;
    let cid = cairn_blockstore::parse_cid_str(&cid).unwrap();
    assert_eq!(
        w.node.pin_state(&cid).await.unwrap(),
        Some(PinState::Recursive)
    );
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_picks_up_what_notifications_missed() {
    let dir = tempfile::tempdir().unwrap();
    // Notifications off and no periodic rescan: a network mount whose changes are not reported.
    let mut w = start(
        node().await,
        config(dir.path()).notify(false).rescan_interval(None),
        None,
    )
    .await;
    w.handle.refresh().await.unwrap();
    std::fs::write(dir.path().join("missed.txt"), b"nobody told the watcher").unwrap();
    tokio::time::sleep(SETTLE * 2).await;
    assert!(drain(&mut w.changes).is_empty());
    assert!(w.handle.entries().is_empty());
    let report = w.handle.refresh().await.unwrap();
    assert_eq!((report.entries, report.changed), (1, 1));
    wait_for(&mut w.changes, "missed.txt", EntryState::Imported).await;
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_survives_a_restart_and_files_placed_while_stopped_are_imported() {
    let dir = tempfile::tempdir().unwrap();
    let repo = tempfile::tempdir().unwrap();
    let state = cairn_watch::state_path(repo.path());
    let mut w = start(node().await, config(dir.path()), Some(&state)).await;
    std::fs::write(dir.path().join("old.txt"), b"imported before the restart").unwrap();
    let cid = wait_for(&mut w.changes, "old.txt", EntryState::Imported)
        .await
        .cid;
    let node = w.stop().await;
    assert!(state.exists());
    std::fs::write(dir.path().join("new.txt"), b"placed while stopped").unwrap();
    let mut w = start(node, config(dir.path()), Some(&state)).await;
    wait_for(&mut w.changes, "new.txt", EntryState::Imported).await;
    w.handle.refresh().await.unwrap();
    tokio::time::sleep(SETTLE * 2).await;
    let later = drain(&mut w.changes);
    assert!(
        later.iter().all(|e| e.path != "old.txt"),
        "the unchanged file was imported again: {later:?}"
    );
    assert_eq!(w.handle.entry("old.txt").unwrap().cid, cid);
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_folder_disappearing_and_coming_back_is_survived() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("drop");
    std::fs::create_dir(&dir).unwrap();
    let mut w = start(node().await, config(&dir), None).await;
    std::fs::write(dir.join("a.txt"), b"before").unwrap();
    let cid = wait_for(&mut w.changes, "a.txt", EntryState::Imported)
        .await
        .cid;
    // Gone (an unmounted share): entries and pins are kept.
    std::fs::rename(&dir, parent.path().join("elsewhere")).unwrap();
    let report = w.handle.refresh().await.unwrap();
    assert!(!report.present);
    assert_eq!(w.handle.entry("a.txt").unwrap().cid, cid);
    // Back: watched again, nothing re-imported, new files imported.
    std::fs::rename(parent.path().join("elsewhere"), &dir).unwrap();
    let report = w.handle.refresh().await.unwrap();
    assert!(report.present);
    std::fs::write(dir.join("b.txt"), b"after").unwrap();
    wait_for(&mut w.changes, "b.txt", EntryState::Imported).await;
    let seen = drain(&mut w.changes);
    assert!(seen.iter().all(|e| e.path != "a.txt"), "{seen:?}");
    assert_eq!(w.handle.entry("a.txt").unwrap().state, EntryState::Imported);
    // A folder created again from nothing is found by the once-a-second look.
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("c.txt"), b"recreated").unwrap();
    wait_for(&mut w.changes, "c.txt", EntryState::Imported).await;
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_entries_fail_with_the_reason_and_others_still_import() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = start(node().await, config(dir.path()).follow_symlinks(true), None).await;
    std::os::unix::fs::symlink(dir.path().join("nowhere"), dir.path().join("dangling")).unwrap();
    std::fs::write(dir.path().join("fine.txt"), b"fine").unwrap();
    let failed = wait_for(&mut w.changes, "dangling", EntryState::Failed).await;
    assert!(
        failed.error.as_deref().unwrap().contains("No such file"),
        "{failed:?}"
    );
    wait_for(&mut w.changes, "fine.txt", EntryState::Imported).await;
    assert!(w.handle.is_running());
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlinks_are_not_followed_unless_asked_and_folders_are_one_entry() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), b"outside the folder").unwrap();
    let mut w = start(node().await, config(dir.path()), None).await;
    std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
    let link = wait_for(&mut w.changes, "link", EntryState::Imported).await;
    assert_eq!(link.kind, cairn_watch::EntryKind::Symlink);
    // A folder: one directory entry, its hidden files skipped.
    let album = tempfile::tempdir().unwrap();
    std::fs::create_dir(album.path().join("album")).unwrap();
    std::fs::write(album.path().join("album/1.jpg"), b"one").unwrap();
    std::fs::write(album.path().join("album/.DS_Store"), b"junk").unwrap();
    std::fs::create_dir(album.path().join("album/sub")).unwrap();
    std::fs::write(album.path().join("album/sub/2.jpg"), b"two").unwrap();
    std::fs::rename(album.path().join("album"), dir.path().join("album")).unwrap();
    let e = wait_for(&mut w.changes, "album", EntryState::Imported).await;
    assert_eq!(e.kind, cairn_watch::EntryKind::Directory);
    assert_eq!(e.size, 6);
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_fails_returns_the_error_and_the_next_run_rescans() {
    let dir = tempfile::tempdir().unwrap();
    let repo = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let node = node().await;
    let importer = Arc::new(NodeImporter::new(node.clone(), &config));
    let watcher =
        Watcher::new(config, importer, Some(cairn_watch::state_path(repo.path()))).unwrap();
    // The state file's folder is a regular file: saving fails, and with it the run.
    let blocker = repo.path().join("watch");
    std::fs::write(&blocker, b"not a folder").unwrap();
    let handle = watcher.handle();
    let mut changes = handle.subscribe();
    std::fs::write(
        dir.path().join("a.txt"),
        b"imported, then the state cannot be saved",
    )
    .unwrap();
    let err = watcher.run(CancellationToken::new()).await.unwrap_err();
    assert!(
        matches!(err, cairn_watch::WatchError::State { .. }),
        "{err}"
    );
    // What a supervisor does: the cause goes away, the watcher runs again and rescans.
    std::fs::remove_file(&blocker).unwrap();
    std::fs::write(dir.path().join("b.txt"), b"placed while it was down").unwrap();
    let stop = CancellationToken::new();
    let s = stop.clone();
    let task = tokio::spawn(async move { watcher.run(s).await });
    for name in ["a.txt", "b.txt"] {
        if handle.entry(name).map(|e| e.state) != Some(EntryState::Imported) {
            wait_for(&mut changes, name, EntryState::Imported).await;
        }
    }
    stop.cancel();
    task.await.unwrap().unwrap();
    assert!(cairn_watch::state_path(repo.path()).exists());
}

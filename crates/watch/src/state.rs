//! The state of every watched entry, and its file in the repo.
//!
//! Each top-level name in the watched folder is one [`Entry`]: a file, a folder (imported as one
//! UnixFS directory) or a symlink. Its [`EntryState`] moves `settling` → `importing` →
//! `imported` (or `failed` with the reason); a change sends it back to `settling`, a delete
//! removes it.
//!
//! The entries are saved as JSON in `<repo>/watch/state.json` (written to a temporary file,
//! fsynced and renamed over the old one, so a crash leaves the old or the new file, never half of
//! one), at most once a second while things change and when the watcher stops. At start they are
//! read back: an entry whose size, mtime, inode and mode are unchanged is not imported again.
//! The file is about 250 bytes an entry.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::WatchError;

/// The state file's name under the repo.
pub const STATE_FILE: &str = "watch/state.json";

/// Where an entry is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum EntryState {
    /// Seen, not complete yet: waiting for a close-after-write event or for its size and mtime
    /// to stay unchanged for the settle interval.
    Settling,
    /// Being added.
    Importing,
    /// Added and pinned; [`Entry::cid`] is its root.
    Imported,
    /// The import failed; [`Entry::error`] says why. Retried when the entry changes, and on
    /// refresh.
    Failed,
    /// Deleted: only in change events (the entry is gone from the list).
    Removed,
}

impl EntryState {
    /// Every state, in order (for metrics).
    pub const ALL: [EntryState; 4] = [
        EntryState::Settling,
        EntryState::Importing,
        EntryState::Imported,
        EntryState::Failed,
    ];

    /// The state's name: `settling`, `importing`, `imported` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryState::Settling => "settling",
            EntryState::Importing => "importing",
            EntryState::Imported => "imported",
            EntryState::Failed => "failed",
            EntryState::Removed => "removed",
        }
    }
}

/// What kind of thing an entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A folder, imported with everything under it as one UnixFS directory.
    Directory,
    /// A symlink, stored as a UnixFS symlink (when symlinks are not followed).
    Symlink,
}

/// One watched entry, as `cairn/watch/ls` lists it (Kubo-style PascalCase keys).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct Entry {
    /// Its name in the watched folder (top level).
    pub path: String,
    /// File, directory or symlink.
    pub kind: EntryKind,
    /// Its state.
    pub state: EntryState,
    /// The CID of its last import (kept while a changed version settles), if any.
    pub cid: Option<String>,
    /// Its size in bytes: a file's length, the sum of a folder's file lengths.
    pub size: u64,
    /// When its last import finished, in Unix milliseconds.
    pub imported_at: Option<u64>,
    /// Why its last import failed (state `failed`).
    pub error: Option<String>,
}

/// What tells a changed entry from an unchanged one: its length, mtime (ns), inode and mode
/// bits; for a folder, the sum of its files' lengths, their latest mtime, and a hash of every
/// name, length and mtime under it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Signature {
    /// Bytes.
    pub len: u64,
    /// Modification time, ns since the Unix epoch.
    pub mtime_ns: i128,
    /// Inode number (a file renamed over the old one has a new one).
    pub ino: u64,
    /// Mode bits (a `chmod` that makes a file readable is a change); for a folder, the hash.
    pub mode: u64,
}

/// An entry with what the watcher needs to recognise it after a restart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Stored {
    #[serde(flatten)]
    pub entry: Entry,
    /// The signature the entry had when it was last imported (or failed).
    pub signature: Option<Signature>,
}

/// The state file's contents.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StateFile {
    version: u32,
    dir: PathBuf,
    entries: Vec<Stored>,
}

/// Reads the state saved for `dir`. A missing file, or one written for another folder, is an
/// empty state; an unreadable or corrupt file is an error (it is never silently replaced).
pub(crate) fn load(path: &Path, dir: &Path) -> Result<Vec<Stored>, WatchError> {
    let state_err = |source| WatchError::State {
        path: path.to_path_buf(),
        source,
    };
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(state_err(e)),
    };
    let file: StateFile = serde_json::from_slice(&bytes)
        .map_err(|e| state_err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
    if file.dir != dir {
        tracing::info!(
            old = %file.dir.display(),
            new = %dir.display(),
            "the watched folder changed; starting with an empty watch state (old pins are kept)"
        );
        return Ok(Vec::new());
    }
    Ok(file.entries)
}

/// Writes the state atomically: a temporary file, fsync, rename, fsync of the folder.
pub(crate) fn save(path: &Path, dir: &Path, entries: Vec<Stored>) -> Result<(), WatchError> {
    let state_err = |source| WatchError::State {
        path: path.to_path_buf(),
        source,
    };
    let file = StateFile {
        version: 1,
        dir: dir.to_path_buf(),
        entries,
    };
    let parent = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(state_err)?;
    let tmp = path.with_extension("json.tmp");
    {
        use std::io::Write as _;
        let mut f = std::fs::File::create(&tmp).map_err(state_err)?;
        let mut w = std::io::BufWriter::new(&mut f);
        serde_json::to_writer(&mut w, &file).map_err(|e| state_err(std::io::Error::other(e)))?;
        w.flush().map_err(state_err)?;
        drop(w);
        f.sync_all().map_err(state_err)?;
    }
    std::fs::rename(&tmp, path).map_err(state_err)?;
    if let Ok(d) = std::fs::File::open(parent) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// A [`PathBuf`] for the state file of the repo at `repo`.
pub fn state_path(repo: &Path) -> PathBuf {
    repo.join(STATE_FILE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_another_folder_starts_empty() {
        let tmp = tempfile::tempdir().unwrap();
        let path = state_path(tmp.path());
        let stored = Stored {
            entry: Entry {
                path: "a.txt".into(),
                kind: EntryKind::File,
                state: EntryState::Imported,
                cid: Some("bafkreiabc".into()),
                size: 5,
                imported_at: Some(1),
                error: None,
            },
            signature: Some(Signature {
                len: 5,
                mtime_ns: 7,
                ino: 9,
                mode: 0o644,
            }),
        };
        save(&path, Path::new("/d"), vec![stored.clone()]).unwrap();
        assert_eq!(load(&path, Path::new("/d")).unwrap(), vec![stored]);
        assert!(load(&path, Path::new("/other")).unwrap().is_empty());
        std::fs::write(&path, b"{not json").unwrap();
        assert!(matches!(
            load(&path, Path::new("/d")),
            Err(WatchError::State { .. })
        ));
    }
}

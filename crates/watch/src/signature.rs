//! Signatures: what tells a changed entry from an unchanged one without reading it (see
//! [`Signature`]). A file's comes from one `stat`; a folder's from a walk of everything under it
//! (names matching the ignore list skipped, as the import skips them), combined in an
//! order-independent way so the listing order does not matter. The walk runs on a blocking
//! thread and holds one folder's listing at a time.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::{IgnoreList, WatchConfig};
use crate::error::WatchError;
use crate::state::{EntryKind, Signature};

/// How long ago a Unix time in ns was (zero for a time in the future, as a clock step can
/// make it).
pub(crate) fn age(mtime_ns: i128) -> Duration {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or_default();
    Duration::from_nanos(u64::try_from((now - mtime_ns).max(0)).unwrap_or(u64::MAX))
}

/// An entry's kind and signature, computed on a blocking thread (a folder's walk may take a
/// while). Symlinks are followed only when the config says so.
///
/// # Errors
/// [`WatchError::Io`] for an entry that cannot be read (gone, a dangling symlink being
/// followed, a folder that cannot be listed), [`WatchError::Unsupported`] for a socket, FIFO
/// or device.
pub(crate) async fn signature(
    path: PathBuf,
    config: &WatchConfig,
) -> Result<(EntryKind, Signature), WatchError> {
    let follow = config.follow_symlinks;
    let ignore = config.ignore.clone();
    tokio::task::spawn_blocking(move || signature_blocking(&path, follow, &ignore))
        .await
        .map_err(|e| WatchError::io(PathBuf::new(), std::io::Error::other(e)))?
}

/// The modification time in ns since the Unix epoch (negative before it).
fn mtime_ns(meta: &std::fs::Metadata) -> i128 {
    use std::os::unix::fs::MetadataExt as _;
    i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec())
}

/// [`signature`]'s blocking part. A folder's signature: `len` the sum of its files' lengths,
/// `mtime_ns` the newest mtime of anything under it (itself included), `ino` its own inode,
/// `mode` the wrapping sum of a hash of every entry's relative path, length, mtime and mode
/// (a sum, so the order entries are listed in does not matter). Walks at most
/// [`crate::import::MAX_DEPTH`] levels deep.
fn signature_blocking(
    path: &Path,
    follow: bool,
    ignore: &IgnoreList,
) -> Result<(EntryKind, Signature), WatchError> {
    use std::os::unix::fs::MetadataExt as _;
    let meta = if follow {
        std::fs::metadata(path)
    } else {
        std::fs::symlink_metadata(path)
    }
    .map_err(|e| WatchError::io(path, e))?;
    let t = meta.file_type();
    let file_sig = |meta: &std::fs::Metadata| Signature {
        len: meta.len(),
        mtime_ns: mtime_ns(meta),
        ino: meta.ino(),
        mode: u64::from(meta.mode()),
    };
    if t.is_symlink() {
        return Ok((EntryKind::Symlink, file_sig(&meta)));
    }
    if t.is_file() {
        return Ok((EntryKind::File, file_sig(&meta)));
    }
    if !t.is_dir() {
        return Err(WatchError::Unsupported(path.to_path_buf()));
    }
    // A folder: total length, newest mtime, and an order-independent hash of every entry.
    let mut sig = Signature {
        len: 0,
        mtime_ns: mtime_ns(&meta),
        ino: meta.ino(),
        mode: 0,
    };
    let mut stack = vec![(path.to_path_buf(), 0usize)];
    while let Some((dir, depth)) = stack.pop() {
        if depth > crate::import::MAX_DEPTH {
            return Err(WatchError::io(
                &dir,
                std::io::Error::other("too deep (a symlink loop?)"),
            ));
        }
        for child in std::fs::read_dir(&dir).map_err(|e| WatchError::io(&dir, e))? {
            let child = child.map_err(|e| WatchError::io(&dir, e))?;
            let name = child.file_name();
            if ignore.is_ignored(&name.to_string_lossy()) {
                continue;
            }
            let p = child.path();
            let m = if follow {
                std::fs::metadata(&p)
            } else {
                std::fs::symlink_metadata(&p)
            }
            .map_err(|e| WatchError::io(&p, e))?;
            let mut h = std::collections::hash_map::DefaultHasher::new();
            p.strip_prefix(path).unwrap_or(&p).hash(&mut h);
            m.len().hash(&mut h);
            mtime_ns(&m).hash(&mut h);
            m.mode().hash(&mut h);
            sig.mode = sig.mode.wrapping_add(h.finish());
            sig.mtime_ns = sig.mtime_ns.max(mtime_ns(&m));
            if m.is_dir() {
                stack.push((p, depth + 1));
            } else if m.is_file() {
                sig.len += m.len();
            }
        }
    }
    Ok((EntryKind::Directory, sig))
}

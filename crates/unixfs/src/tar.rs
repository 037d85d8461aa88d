//! The byte stream of Kubo's `get`: a tar archive of a file or directory tree (optionally
//! gzipped), or, for `--compress` without `--archive`, a file's bytes gzipped.
//!
//! This follows Kubo's `fileArchive` (`core/commands/get.go`) and boxo's `files.TarWriter`: the
//! archive's top entry is named after the last segment of the requested path; directories are
//! written as `TypeDir` entries (mode 0777), files as regular entries (mode 0644) with their
//! contents, symlinks as `TypeSymlink` (mode 0777) with their target; entries in listing order
//! (see [`crate::exporter::ls`]); the archive ends with two zero blocks. Headers are written with
//! the `tar` crate (GNU format; a path over 100 bytes gets a GNU long-name entry, where Go's
//! writer would use a PAX record: both are read by GNU tar, bsdtar, Go and Python).
//!
//! Safety: every entry name from the DAG is checked by [`check_entry_name`] before it becomes a
//! path, so a malicious DAG cannot make an archive whose paths leave the output directory
//! (`..`, `/`, absolute paths, NUL, empty names are refused, as boxo's writer refuses paths
//! outside the root). Symlink targets are written as stored: extracting tools decide whether
//! to follow them (GNU tar does not write through them by default).
//!
//! Memory: one block of file data at a time, one directory listing stream per directory level
//! (a plain directory's link list, or a HAMT's current shard path), and the gzip encoder's
//! window; directory depth is capped at [`MAX_DEPTH`].

use std::io::Write as _;
use std::pin::Pin;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use futures::stream::{self, Stream, StreamExt};

use crate::exporter::{DirEntry, NodeKind, cat, load, ls, node_kind};
use crate::{BlockSource, Cid, UnixfsError};

/// The deepest directory nesting the writer follows; deeper is an error, not a stack of
/// unbounded size.
pub const MAX_DEPTH: usize = 4096;

/// boxo's text for an entry path that would leave the archive root (its typo included).
pub const OUTSIDE_ROOT: &str =
    "relative UnixFS paths outside the root are now allowed, use CAR instead";

const BLOCK: usize = 512;

/// Options of Kubo's `get`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GetOptions {
    /// `--archive`: the output is a tar archive even with `compress` (without `compress`, Kubo
    /// sends a tar archive anyway, as its transport format).
    pub archive: bool,
    /// `--compress`/`--compression-level`: gzip level 1–9, `None` for no compression.
    pub compression: Option<u32>,
    /// The modification time written in headers (Unix seconds): Kubo writes the current time.
    pub mtime: u64,
}

/// Checks one DAG entry name before it is used as a path component.
///
/// # Errors
/// [`UnixfsError::UnsafePath`] if the name is empty, `.` or `..`, contains `/` or NUL, or (for
/// the root name only, which comes from the request) is absolute.
pub fn check_entry_name(name: &str) -> Result<(), UnixfsError> {
    if name.is_empty() || name.contains('\0') {
        return Err(UnixfsError::UnsafePath(format!(
            "invalid entry name {name:?} in the DAG"
        )));
    }
    if name == "." || name == ".." || name.contains('/') {
        return Err(UnixfsError::UnsafePath(OUTSIDE_ROOT.to_string()));
    }
    Ok(())
}

/// The archive's top entry name: the last segment of the requested path, as Kubo's
/// `gopath.Split(gopath.Clean(name))` gives it (`/ipfs/CID/a/b` → `b`, `CID` → `CID`).
///
/// # Errors
/// [`UnixfsError::UnsafePath`] if nothing usable remains (e.g. `/` or `..`).
pub fn root_name(path: &str) -> Result<String, UnixfsError> {
    let base = path
        .split('/')
        .rfind(|s| !s.is_empty() && *s != ".")
        .unwrap_or_default();
    check_entry_name(base)?;
    Ok(base.to_string())
}

/// A tar header for `path`, with a GNU long-name entry before it when needed.
fn header(
    path: &str,
    kind: ::tar::EntryType,
    size: u64,
    mode: u32,
    mtime: u64,
    link: Option<&str>,
) -> Result<Vec<u8>, UnixfsError> {
    let mut h = ::tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(mtime);
    h.set_uid(0);
    h.set_gid(0);
    let mut builder = ::tar::Builder::new(Vec::new());
    if let Some(target) = link {
        // `append_link` handles a long target with a GNU long-link entry; symlink size is 0.
        builder
            .append_link(&mut h, path, target)
            .map_err(|e| UnixfsError::UnsafePath(format!("tar header for {path:?}: {e}")))?;
    } else {
        // The data is written by the caller: `append_data` with no data writes just the
        // header(s) and no padding, leaving `size` as set.
        builder
            .append_data(&mut h, path, std::io::empty())
            .map_err(|e| UnixfsError::UnsafePath(format!("tar header for {path:?}: {e}")))?;
    }
    // Not `into_inner`: that would also write the archive's end-of-archive blocks.
    Ok(std::mem::take(builder.get_mut()))
}

type ByteStream<'a> = Pin<Box<dyn Stream<Item = Result<Bytes, UnixfsError>> + Send + 'a>>;
type EntryStream<'a> = Pin<Box<dyn Stream<Item = Result<DirEntry, UnixfsError>> + Send + 'a>>;

/// A file being written: its chunks, how many bytes are promised in its header and how many
/// were written.
struct OpenFile<'a> {
    chunks: ByteStream<'a>,
    size: u64,
    written: u64,
}

struct TarState<'a, S: ?Sized> {
    src: &'a S,
    mtime: u64,
    /// The root, until its header is written.
    root: Option<(Cid, String)>,
    dirs: Vec<(String, EntryStream<'a>)>,
    file: Option<OpenFile<'a>>,
    finished: bool,
}

impl<'a, S: BlockSource + ?Sized> TarState<'a, S> {
    /// Writes the header of one node and opens it (a directory's listing, a file's chunks).
    async fn open(&mut self, cid: Cid, path: String) -> Result<Bytes, UnixfsError> {
        let block = load(self.src, &cid).await?;
        match node_kind(&cid, &block) {
            NodeKind::Directory | NodeKind::HamtShard => {
                if self.dirs.len() >= MAX_DEPTH {
                    return Err(UnixfsError::TooLarge(format!(
                        "directory nesting is deeper than {MAX_DEPTH}"
                    )));
                }
                let h = header(
                    &path,
                    ::tar::EntryType::Directory,
                    0,
                    0o777,
                    self.mtime,
                    None,
                )?;
                let entries = ls(self.src, &cid, false).await?.boxed();
                self.dirs.push((path, entries));
                Ok(Bytes::from(h))
            }
            NodeKind::File { size } => {
                let h = header(
                    &path,
                    ::tar::EntryType::Regular,
                    size,
                    0o644,
                    self.mtime,
                    None,
                )?;
                let (_, chunks) = cat(self.src, &cid, 0, None).await?;
                self.file = Some(OpenFile {
                    chunks: chunks.boxed(),
                    size,
                    written: 0,
                });
                Ok(Bytes::from(h))
            }
            NodeKind::Symlink { target } => Ok(Bytes::from(header(
                &path,
                ::tar::EntryType::Symlink,
                0,
                0o777,
                self.mtime,
                Some(&target),
            )?)),
            _ => Err(UnixfsError::NotAFile(format!(
                "unrecognized node type in {cid}: only UnixFS files, directories and symlinks can be archived"
            ))),
        }
    }

    /// The next piece of the (uncompressed) tar stream.
    async fn next(&mut self) -> Result<Option<Bytes>, UnixfsError> {
        loop {
            if let Some((cid, name)) = self.root.take() {
                return self.open(cid, name).await.map(Some);
            }
            if let Some(file) = self.file.as_mut() {
                match file.chunks.next().await {
                    Some(chunk) => {
                        let chunk = chunk?;
                        file.written += chunk.len() as u64;
                        if file.written > file.size {
                            return Err(UnixfsError::InvalidArgument(
                                "file data is longer than its UnixFS size".into(),
                            ));
                        }
                        return Ok(Some(chunk));
                    }
                    None => {
                        let (size, written) = (file.size, file.written);
                        self.file = None;
                        if written != size {
                            return Err(UnixfsError::InvalidArgument(format!(
                                "file data ({written} bytes) is shorter than its UnixFS size ({size})"
                            )));
                        }
                        let pad = (BLOCK - (size % BLOCK as u64) as usize) % BLOCK;
                        if pad > 0 {
                            return Ok(Some(Bytes::from(vec![0u8; pad])));
                        }
                        continue;
                    }
                }
            }
            let Some((dir, entries)) = self.dirs.last_mut() else {
                if self.finished {
                    return Ok(None);
                }
                self.finished = true;
                return Ok(Some(Bytes::from(vec![0u8; 2 * BLOCK])));
            };
            match entries.next().await {
                None => {
                    self.dirs.pop();
                }
                Some(entry) => {
                    let entry = entry?;
                    check_entry_name(&entry.name)?;
                    let path = format!("{dir}/{}", entry.name);
                    return self.open(entry.cid, path).await.map(Some);
                }
            }
        }
    }
}

/// Gzips a byte stream, yielding compressed output as it is produced.
fn gzip<'a>(input: ByteStream<'a>, level: u32) -> ByteStream<'a> {
    let encoder = GzEncoder::new(Vec::new(), Compression::new(level.min(9)));
    stream::unfold(Some((input, encoder)), |state| async move {
        let (mut input, mut encoder) = state?;
        loop {
            match input.next().await {
                Some(Ok(chunk)) => {
                    if let Err(e) = encoder.write_all(&chunk) {
                        return Some((Err(e.into()), None));
                    }
                    let out = std::mem::take(encoder.get_mut());
                    if !out.is_empty() {
                        return Some((Ok(Bytes::from(out)), Some((input, encoder))));
                    }
                }
                Some(Err(e)) => return Some((Err(e), None)),
                None => {
                    return match encoder.finish() {
                        Ok(out) => Some((Ok(Bytes::from(out)), None)),
                        Err(e) => Some((Err(e.into()), None)),
                    };
                }
            }
        }
    })
    .boxed()
}

/// Kubo's `get PATH`: the bytes to send, given the CID `PATH` resolved to.
///
/// - `archive` or no compression: a tar stream of the node, named [`root_name`]`(path)`;
/// - `compression` without `archive`: the file's bytes gzipped (a directory is refused with
///   Kubo's `file is not regular`);
/// - `archive` and `compression`: the tar stream gzipped.
///
/// # Errors
/// Before streaming: an unsafe root name, a missing root, a directory for a plain compressed
/// file. In the stream: unsafe entry names ([`UnixfsError::UnsafePath`]), missing blocks, nodes
/// that are not UnixFS.
pub async fn get<'a, S: BlockSource + ?Sized>(
    src: &'a S,
    root: Cid,
    path: &str,
    opts: GetOptions,
) -> Result<impl Stream<Item = Result<Bytes, UnixfsError>> + Send + 'a, UnixfsError> {
    if !opts.archive
        && let Some(level) = opts.compression
    {
        let block = load(src, &root).await?;
        if !matches!(node_kind(&root, &block), NodeKind::File { .. }) {
            return Err(UnixfsError::NotAFile("file is not regular".into()));
        }
        let (_, chunks) = cat(src, &root, 0, None).await?;
        return Ok(gzip(chunks.boxed(), level));
    }
    let name = root_name(path)?;
    // Read the root now so that a missing root is an error status, not a broken stream.
    load(src, &root).await?;
    let state = TarState {
        src,
        mtime: opts.mtime,
        root: Some((root, name)),
        dirs: Vec::new(),
        file: None,
        finished: false,
    };
    let tar: ByteStream<'a> = stream::unfold(Some(state), |state| async move {
        let mut state = state?;
        match state.next().await {
            Ok(Some(b)) => Some((Ok(b), Some(state))),
            Ok(None) => None,
            Err(e) => Some((Err(e), None)),
        }
    })
    .boxed();
    Ok(match opts.compression {
        Some(level) => gzip(tar, level),
        None => tar,
    })
}

//! [`DirectoryBuilder`]: entries by relative path to UnixFS directories, plain or HAMT-sharded,
//! as Kubo's `add` builds them (boxo `ipld/unixfs/io/directory.go` through MFS).
//!
//! A plain directory is a dag-pb node with `Data` = UnixFS `Directory` (plus mode/mtime) and one
//! link per entry, sorted by name bytewise (what go-merkledag's encoder does). When its estimated
//! size — the sum over links of name length plus CID byte length, Kubo's default `links`
//! estimation — exceeds the threshold (256 KiB), it becomes a HAMT (see `hamt.rs`).
//!
//! Memory: the whole tree of names and CIDs is kept until [`DirectoryBuilder::finish`], as Kubo's
//! MFS root keeps it (about 100 bytes plus the name per entry); file contents are not.

use std::collections::BTreeMap;

use cid::Cid;

use crate::importer::file::FileResult;
use crate::importer::hamt;
use crate::importer::options::{DAG_PB, HamtSizeEstimation, ImportOptions, ResolvedOptions};
use crate::importer::pb::{DataType, Mtime, PbLink, UnixfsData, encode_node};
use crate::{Block, UnixfsError};

/// One directory of a finished [`DirectoryBuilder`]: what Kubo's `add` prints for it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DirResult {
    /// Path relative to the builder's root, `/`-separated; `""` for the root itself.
    pub path: String,
    /// The directory's CID (of its root shard when sharded).
    pub cid: Cid,
    /// Cumulative DAG size in bytes (Kubo's `Size`).
    pub size: u64,
}

#[derive(Debug, Default)]
struct DirNode {
    entries: BTreeMap<String, Entry>,
    mode: Option<u32>,
    mtime: Option<Mtime>,
}

#[derive(Debug)]
enum Entry {
    /// A finished file or symlink.
    Leaf {
        cid: Cid,
        tsize: u64,
    },
    Dir(DirNode),
}

/// Builds one directory tree from entries given by relative path, then encodes it.
///
/// Paths are `/`-separated, relative to the builder's root, without empty, `.` or `..`
/// segments; missing parent directories are created (without metadata). Each path may be given
/// once, except that [`DirectoryBuilder::add_directory`] on an existing directory only sets its
/// metadata.
///
/// ```
/// use cairn_unixfs::importer::{DirectoryBuilder, FileImporter, ImportOptions};
/// let opts = ImportOptions::default();
/// let mut dir = DirectoryBuilder::new(&opts)?;
/// let f = FileImporter::new(&opts)?;
/// let (file, _blocks) = f.finish()?;
/// dir.add_file("empty.txt", &file)?;
/// let (dirs, _blocks) = dir.finish()?;
/// assert_eq!(dirs.last().unwrap().path, "");
/// # Ok::<(), cairn_unixfs::UnixfsError>(())
/// ```
#[derive(Debug)]
pub struct DirectoryBuilder {
    options: ResolvedOptions,
    root: DirNode,
}

fn invalid(path: &str, reason: &str) -> UnixfsError {
    UnixfsError::InvalidPath {
        path: path.to_owned(),
        reason: reason.to_owned(),
    }
}

/// The segments of a relative path, checked.
fn segments(path: &str) -> Result<Vec<&str>, UnixfsError> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let segs: Vec<&str> = path.split('/').collect();
    for s in &segs {
        if s.is_empty() || *s == "." || *s == ".." {
            return Err(invalid(path, "empty, `.` or `..` path segment"));
        }
    }
    Ok(segs)
}

impl DirectoryBuilder {
    /// A builder for `options` (checked as [`ImportOptions::resolve`] does). The root directory
    /// gets no metadata unless [`DirectoryBuilder::add_directory`] is called with path `""`.
    pub fn new(options: &ImportOptions) -> Result<Self, UnixfsError> {
        Ok(Self::with_resolved(&options.resolve()?))
    }

    /// A builder for already-resolved options.
    pub fn with_resolved(options: &ResolvedOptions) -> Self {
        DirectoryBuilder {
            options: *options,
            root: DirNode::default(),
        }
    }

    /// The directory at `segs`, created with its parents when missing.
    fn dir_mut(&mut self, path: &str, segs: &[&str]) -> Result<&mut DirNode, UnixfsError> {
        let mut node = &mut self.root;
        for s in segs {
            let entry = node
                .entries
                .entry((*s).to_owned())
                .or_insert_with(|| Entry::Dir(DirNode::default()));
            node = match entry {
                Entry::Dir(d) => d,
                Entry::Leaf { .. } => return Err(invalid(path, "a parent is a file")),
            };
        }
        Ok(node)
    }

    fn add_leaf(&mut self, path: &str, cid: Cid, tsize: u64) -> Result<(), UnixfsError> {
        let segs = segments(path)?;
        let Some((name, parents)) = segs.split_last() else {
            return Err(invalid(path, "a file needs a name"));
        };
        let dir = self.dir_mut(path, parents)?;
        if dir.entries.contains_key(*name) {
            return Err(invalid(path, "already added"));
        }
        dir.entries
            .insert((*name).to_owned(), Entry::Leaf { cid, tsize });
        Ok(())
    }

    /// Adds a finished file (from [`crate::FileImporter::finish`]) at `path`.
    pub fn add_file(&mut self, path: &str, file: &FileResult) -> Result<(), UnixfsError> {
        self.add_leaf(path, file.cid, file.size)
    }

    /// Adds an existing DAG (any CID with its cumulative size) at `path`, as MFS `cp` would.
    pub fn add_link(&mut self, path: &str, cid: Cid, size: u64) -> Result<(), UnixfsError> {
        self.add_leaf(path, cid, size)
    }

    /// Creates the directory at `path` (empty unless entries are added under it; `""` is the
    /// root) and sets its UnixFS 1.5 metadata: `mode` (low 12 bits; 0 stores nothing) and
    /// `mtime`. On an existing directory only the metadata is set.
    pub fn add_directory(
        &mut self,
        path: &str,
        mode: Option<u32>,
        mtime: Option<Mtime>,
    ) -> Result<(), UnixfsError> {
        let segs = segments(path)?;
        let dir = self.dir_mut(path, &segs)?;
        dir.mode = mode.map(|m| m & 0o7777).filter(|&m| m != 0);
        dir.mtime = mtime;
        Ok(())
    }

    /// Adds a symlink to `target` at `path`: a UnixFS `Symlink` node (with `mtime` if given;
    /// Kubo stores no mode on symlinks). Returns its result (what `add` prints) and its block.
    pub fn add_symlink(
        &mut self,
        path: &str,
        target: &str,
        mtime: Option<Mtime>,
    ) -> Result<(FileResult, Block), UnixfsError> {
        let (result, block) = symlink_block(&self.options, target, mtime)?;
        self.add_leaf(path, result.cid, result.size)?;
        Ok((result, block))
    }

    /// Encodes every directory. Returns one result per directory in the order Kubo's `add`
    /// prints them (children before their parent, siblings by name, the root last) and the
    /// blocks, children before parents.
    pub fn finish(self) -> Result<(Vec<DirResult>, Vec<Block>), UnixfsError> {
        let mut results = Vec::new();
        let mut blocks = Vec::new();
        build_dir(
            &self.options,
            self.root,
            String::new(),
            &mut results,
            &mut blocks,
        )?;
        Ok((results, blocks))
    }
}

/// The block of a symlink to `target` (boxo `unixfs.SymlinkData`, through the add's CID builder).
pub(crate) fn symlink_block(
    options: &ResolvedOptions,
    target: &str,
    mtime: Option<Mtime>,
) -> Result<(FileResult, Block), UnixfsError> {
    let mut d = UnixfsData::new(DataType::Symlink);
    d.data = Some(target.as_bytes());
    d.mtime = mtime;
    let block = options.cids.block(DAG_PB, encode_node(&[], &d.encode()))?;
    let result = FileResult {
        cid: *block.cid(),
        size: block.len() as u64,
        file_size: 0,
    };
    Ok((result, block))
}

fn build_dir(
    options: &ResolvedOptions,
    node: DirNode,
    path: String,
    results: &mut Vec<DirResult>,
    blocks: &mut Vec<Block>,
) -> Result<(Cid, u64), UnixfsError> {
    let mut links = Vec::with_capacity(node.entries.len());
    for (name, entry) in node.entries {
        let (cid, tsize) = match entry {
            Entry::Leaf { cid, tsize } => (cid, tsize),
            Entry::Dir(d) => {
                let child_path = if path.is_empty() {
                    name.clone()
                } else {
                    format!("{path}/{name}")
                };
                build_dir(options, d, child_path, results, blocks)?
            }
        };
        links.push(PbLink { cid, name, tsize });
    }
    let (cid, size) = if needs_hamt(options, &links, node.mode, node.mtime) {
        hamt::build(options, links, node.mode, node.mtime, blocks)?
    } else {
        let mut d = UnixfsData::new(DataType::Directory);
        d.mode = node.mode;
        d.mtime = node.mtime;
        let block = options
            .cids
            .block(DAG_PB, encode_node(&links, &d.encode()))?;
        let size = block.len() as u64 + links.iter().map(|l| l.tsize).sum::<u64>();
        let cid = *block.cid();
        blocks.push(block);
        (cid, size)
    };
    results.push(DirResult { path, cid, size });
    Ok((cid, size))
}

/// Whether a directory with these entries is sharded, as boxo's `needsToSwitchToHAMTDir` decides
/// it when entries are added one by one (adds only grow the estimate, so the final size decides).
fn needs_hamt(
    options: &ResolvedOptions,
    links: &[PbLink],
    mode: Option<u32>,
    mtime: Option<Mtime>,
) -> bool {
    if options.max_directory_links > 0 && links.len() > options.max_directory_links {
        return true;
    }
    if options.hamt_threshold == 0 {
        return false;
    }
    let estimate = match options.hamt_size_estimation {
        // Kubo's default: name bytes plus CID bytes per link, nothing else.
        HamtSizeEstimation::Links => links
            .iter()
            .map(|l| l.name.len() + l.cid.encoded_len())
            .sum(),
        // The plain block's exact size, which boxo computes arithmetically.
        HamtSizeEstimation::Block => {
            let mut d = UnixfsData::new(DataType::Directory);
            d.mode = mode;
            d.mtime = mtime;
            encode_node(links, &d.encode()).len()
        }
        HamtSizeEstimation::Disabled => return false,
    };
    estimate > options.hamt_threshold
}

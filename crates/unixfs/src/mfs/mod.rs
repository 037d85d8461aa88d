//! MFS, Kubo's mutable file system (`ipfs files ...`), as a copy-on-write value over
//! [`BlockSource`] + [`BlockSink`].
//!
//! An [`Mfs`] holds the CID of its root directory and nothing else. Every operation reads the
//! blocks it needs, makes the new ones (a changed file, then each directory up to the root),
//! stores them with one [`BlockSink::put_many`] and only then replaces the root CID; nothing is
//! changed in place. A failed operation stores nothing and leaves the root as it was, and a
//! caller that persists [`Mfs::root`] after the call returns never points at missing blocks.
//!
//! The CIDs are Kubo 0.22's (boxo 0.11 `mfs`): directories are boxo's basic directories
//! (dag-pb, links sorted by name, each link's `Tsize` the child's cumulative size); a file
//! created by `write` is Kubo's empty file node (`QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH`
//! under CIDv0) written through boxo's `DagModifier`, so its DAG depends on its write history
//! as Kubo's does (see [`dagmod`](self::dagmod) for the details and quirks kept). Errors carry
//! Kubo's messages.
//!
//! Not done: HAMT-sharded directories (Kubo shards a directory past 256 KiB of estimated
//! links; cairn's MFS refuses to enter a sharded directory and never shards one), `--flush=false`
//! (every operation here is flushed), identity-hash prefixes. [`Mfs::stat`] reports mode and
//! mtime as Kubo 0.30+ does ([`Stat::mode`], [`Stat::mtime`]); `ls` does not (Kubo's neither).
//! A later `write` keeps the file root's mode and mtime (its UnixFS data is re-encoded field by
//! field), but no CID of a write after `chmod`/`touch` has been compared with Kubo's.
//!
//! [`Mfs::chmod`] and [`Mfs::touch`] are Kubo 0.30's `files chmod`/`files touch` (boxo `mfs.Chmod`
//! and `mfs.Touch`): they set the UnixFS 1.5 `mode`/`mtime` fields of one node.

mod dagmod;
mod error;
mod node;
mod path;

use bytes::Bytes;
use cid::Cid;
use futures::TryStreamExt;

pub use dagmod::{
    LEAF_SIZE, MAX_SPARSE_GROWTH, SPARSE_LEAF_SIZE, WRITE_BUFFER_SIZE, WRITE_CALL_SIZE,
};
pub use error::MfsError;
pub use path::{MAX_PATH_COMPONENTS, MAX_PATH_LEN, MfsPath, parse_path, parse_path_bytes};

use dagmod::{WriteSpec, file_size, node_size, write_file};
use node::{
    Built, FsData, Link, PbNode, Prefix, T_DIRECTORY, T_FILE, T_HAMT, T_METADATA, T_RAW, T_SYMLINK,
    Tx, empty_dir_data,
};

use crate::exporter::{DAG_PB, RAW};
use crate::importer::Mtime;
use crate::{BlockSink, BlockSource};

/// The empty directory, the root of a new MFS (`QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn`).
pub const EMPTY_DIR_CID: &str = "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn";

/// Kubo's empty file node, what `files write --create` starts from under CIDv0.
pub const EMPTY_FILE_CID: &str = "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH";

/// Options of [`Mfs::mkdir`] (Kubo's `files mkdir`).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct MkdirOptions {
    /// `-p`/`--parents`: make missing parents, and no error if the directory exists (then
    /// `cid_version`/`hash`, if given, change the existing directory's CID prefix, as Kubo does).
    pub parents: bool,
    /// `--cid-version` for the new directories (default: the parent's).
    pub cid_version: Option<u8>,
    /// `--hash` for the new directories (a Kubo hash name; implies CIDv1 without a version).
    pub hash: Option<String>,
}

/// Options of [`Mfs::write`] (Kubo's `files write`).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct WriteOptions {
    /// `-o`/`--offset`: byte offset to write at; past the end the gap is filled with zeros.
    pub offset: u64,
    /// `-e`/`--create`: create the file if it does not exist.
    pub create: bool,
    /// `-t`/`--truncate`: truncate the file to 0 bytes before writing.
    pub truncate: bool,
    /// `-p`/`--parents`: make the parent directories as needed.
    pub parents: bool,
    /// `-n`/`--count`: write at most this many bytes of the data.
    pub count: Option<u64>,
    /// `--raw-leaves`: leaves as raw blocks (default: raw iff the file's CID is not v0).
    pub raw_leaves: Option<bool>,
    /// `--cid-version` of a created file and parents (default: the parent directory's).
    pub cid_version: Option<u8>,
    /// `--hash` of a created file and parents.
    pub hash: Option<String>,
}

/// What an entry is, as Kubo's `files ls -l` numbers it (boxo `mfs.NodeType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryType {
    /// A file (0).
    File = 0,
    /// A directory (1).
    Directory = 1,
}

/// One entry of [`Mfs::ls`] (Kubo's `NodeListing`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LsEntry {
    /// The entry's name.
    pub name: String,
    /// Its type; [`EntryType::File`] (0) when not listed long, as Kubo leaves it 0.
    pub kind: EntryType,
    /// File size in bytes for files in a long listing, else 0.
    pub size: u64,
    /// The entry's CID in a long listing (Kubo prints `""` otherwise).
    pub hash: Option<Cid>,
}

/// [`Mfs::stat`]'s answer (Kubo's `files stat` output).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    /// The node's CID.
    pub hash: Cid,
    /// File size in bytes (UnixFS `filesize`; 0 for directories).
    pub size: u64,
    /// The node's cumulative DAG size in bytes (its block plus its links' `Tsize`s).
    pub cumulative_size: u64,
    /// Number of links of the node.
    pub blocks: u64,
    /// `"file"` or `"directory"`.
    pub kind: &'static str,
    /// Kubo's `Mode`: the node's UnixFS 1.5 permissions as Go `os.FileMode` bits (boxo's
    /// `FSNode.Mode`: `0o777` bits, setuid/setgid/sticky moved to Go's bits, and the directory
    /// or symlink type bit); a symlink without a mode is `ModeSymlink | 0o777`; 0 when unset.
    pub mode: u32,
    /// The node's UnixFS 1.5 mtime, when set (boxo's `FSNode.ModTime`: nanoseconds outside
    /// `1..=999_999_999` are no mtime).
    pub mtime: Option<Mtime>,
}

/// Go's `os.ModeDir`.
pub const GO_MODE_DIR: u32 = 1 << 31;
/// Go's `os.ModeSymlink`.
pub const GO_MODE_SYMLINK: u32 = 1 << 27;

/// boxo's `files.UnixPermsToModePerms`: UnixFS permission bits (`0o7777`) as Go
/// `os.FileMode` bits (setuid, setgid and sticky move to Go's positions).
fn go_file_mode(unix: u32) -> u32 {
    (unix & 0o777) | ((unix & 0o6000) << 12) | ((unix & 0o1000) << 11)
}

/// A node's mode as Kubo's `files stat` reports it (see [`Stat::mode`]).
fn stat_mode(fs: &FsData) -> u32 {
    let perms = fs.mode.unwrap_or(0) & 0xFFF;
    if perms == 0 {
        return if fs.kind == T_SYMLINK {
            GO_MODE_SYMLINK | 0o777
        } else {
            0
        };
    }
    go_file_mode(perms)
        | match fs.kind {
            T_DIRECTORY | T_HAMT => GO_MODE_DIR,
            T_SYMLINK => GO_MODE_SYMLINK,
            _ => 0,
        }
}

/// A directory being edited.
#[derive(Debug, Clone)]
struct Dir {
    node: PbNode,
    prefix: Prefix,
}

impl Dir {
    /// A new empty directory (boxo `EmptyDirNode` with `prefix`).
    fn empty(prefix: Prefix) -> Dir {
        Dir {
            node: PbNode {
                links: Vec::new(),
                data: empty_dir_data(),
            },
            prefix,
        }
    }

    fn child(&self, name: &str) -> Option<&Link> {
        self.node.links.iter().find(|l| l.name == name)
    }

    /// boxo's `BasicDirectory.AddChild`: replaces any entry of that name.
    fn set_child(&mut self, name: &str, cid: Cid, size: u64) {
        self.node.links.retain(|l| l.name != name);
        self.node.links.push(Link {
            cid,
            name: name.to_string(),
            tsize: size,
        });
    }

    /// `RemoveChild`: whether the name was there.
    fn remove_child(&mut self, name: &str) -> bool {
        let before = self.node.links.len();
        self.node.links.retain(|l| l.name != name);
        self.node.links.len() != before
    }

    fn build(&self) -> Result<Built, MfsError> {
        self.node.build(&self.prefix)
    }
}

/// What a node is to MFS (boxo's `cacheNode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
}

fn kind_of(cid: &Cid, block: &[u8]) -> Result<Kind, MfsError> {
    match cid.codec() {
        RAW => Ok(Kind::File),
        DAG_PB => {
            let fs = FsData::decode(&PbNode::decode(cid, block)?.data)?;
            match fs.kind {
                T_DIRECTORY | T_HAMT => Ok(Kind::Dir),
                T_FILE | T_RAW | T_SYMLINK => Ok(Kind::File),
                T_METADATA => Err(MfsError::Unsupported("not yet implemented".into())),
                _ => Err(MfsError::Invalid("invalid child node".into())),
            }
        }
        _ => Err(MfsError::Invalid(
            "unrecognized node type in cache node".into(),
        )),
    }
}

async fn load_dir<S>(tx: &Tx<'_, S>, cid: &Cid) -> Result<Dir, MfsError>
where
    S: BlockSource + BlockSink + ?Sized,
{
    let block = tx.get(cid).await?;
    if cid.codec() != DAG_PB {
        return Err(MfsError::NotADirectory(format!("{cid} is not a directory")));
    }
    let node = PbNode::decode(cid, &block)?;
    match FsData::decode(&node.data)?.kind {
        T_DIRECTORY => Ok(Dir {
            node,
            prefix: Prefix::of(cid),
        }),
        T_HAMT => Err(MfsError::Unsupported(
            "HAMT-sharded directories are not supported by cairn's MFS".into(),
        )),
        _ => Err(MfsError::NotADirectory(format!("{cid} is not a directory"))),
    }
}

/// Go's `path.Split` of a cleaned path string: the directory part keeps its trailing slash.
fn split(p: &str) -> (&str, &str) {
    match p.rfind('/') {
        Some(i) => (&p[..=i], &p[i + 1..]),
        None => ("", p),
    }
}

/// The MFS root and the operations of `ipfs files`.
///
/// Every method takes the block store; see the module docs for the copy-on-write contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mfs {
    root: Cid,
}

impl Mfs {
    /// A new MFS whose root is the empty directory, stored in `store` (Kubo's first start).
    ///
    /// # Errors
    /// [`MfsError::Unixfs`] when the store fails.
    pub async fn init<S>(store: &S) -> Result<Mfs, MfsError>
    where
        S: BlockSource + BlockSink + ?Sized,
    {
        let mut tx = Tx::new(store);
        let built = Dir::empty(Prefix::V0).build()?;
        let root = tx.keep(built);
        tx.commit().await?;
        Ok(Mfs { root })
    }

    /// An MFS over an existing root directory (what a node loads from `/local/filesroot`).
    /// Nothing is checked until an operation reads it.
    pub fn with_root(root: Cid) -> Mfs {
        Mfs { root }
    }

    /// The root directory's CID (Kubo's `files stat --hash /`).
    pub fn root(&self) -> Cid {
        self.root
    }

    /// Looks `comps` up from `root`: the node's CID and kind (boxo `DirLookup`).
    async fn lookup<S>(
        tx: &Tx<'_, S>,
        root: &Cid,
        comps: &[String],
    ) -> Result<(Cid, Kind), MfsError>
    where
        S: BlockSource + BlockSink + ?Sized,
    {
        let mut cur = *root;
        let mut kind = Kind::Dir;
        for (i, name) in comps.iter().enumerate() {
            if kind != Kind::Dir {
                return Err(MfsError::NotADirectory(format!(
                    "cannot access {}: Not a directory",
                    comps[..=i].join("/")
                )));
            }
            let dir = load_dir(tx, &cur).await?;
            let link = dir.child(name).ok_or(MfsError::NotExist)?;
            cur = link.cid;
            kind = kind_of(&cur, &tx.get(&cur).await?)?;
        }
        Ok((cur, kind))
    }

    /// The directories from the root along `comps` (boxo `lookupDir`; `shown` is the path as
    /// Kubo names it in `... is not a directory`).
    async fn dir_chain<S>(
        tx: &Tx<'_, S>,
        root: &Cid,
        comps: &[String],
        shown: &str,
    ) -> Result<Vec<Dir>, MfsError>
    where
        S: BlockSource + BlockSink + ?Sized,
    {
        let (cid, kind) = Self::lookup(tx, root, comps).await?;
        if kind != Kind::Dir {
            return Err(MfsError::NotADirectory(format!(
                "{shown} is not a directory"
            )));
        }
        let mut chain = Vec::with_capacity(comps.len() + 1);
        let mut cur = *root;
        chain.push(load_dir(tx, &cur).await?);
        for name in comps {
            cur = chain
                .last()
                .and_then(|d| d.child(name))
                .map(|l| l.cid)
                .ok_or(MfsError::NotExist)?;
            chain.push(load_dir(tx, &cur).await?);
        }
        debug_assert_eq!(cur, cid);
        Ok(chain)
    }

    /// Re-encodes a directory chain bottom-up (`chain[i + 1]` is `chain[i]`'s entry
    /// `comps[i]`); the new root's CID.
    fn rebuild<S>(
        tx: &mut Tx<'_, S>,
        mut chain: Vec<Dir>,
        comps: &[String],
    ) -> Result<Cid, MfsError>
    where
        S: BlockSource + BlockSink + ?Sized,
    {
        let mut built = chain
            .pop()
            .ok_or_else(|| MfsError::Invalid("empty directory chain".into()))?
            .build()?;
        while let Some(mut parent) = chain.pop() {
            let name = &comps[chain.len()];
            parent.set_child(name, built.cid(), built.size);
            tx.put(built.block);
            built = parent.build()?;
        }
        let root = tx.keep(built);
        Ok(root)
    }

    /// Stores the transaction's blocks, then takes `root`.
    async fn commit<S>(&mut self, tx: Tx<'_, S>, root: Cid) -> Result<(), MfsError>
    where
        S: BlockSource + BlockSink + ?Sized,
    {
        tx.commit().await?;
        self.root = root;
        Ok(())
    }

    /// boxo's `mfs.Mkdir` inside a transaction: the new root.
    async fn mkdir_in<S>(
        tx: &mut Tx<'_, S>,
        root: Cid,
        comps: &[String],
        parents: bool,
        builder: Option<Prefix>,
    ) -> Result<Cid, MfsError>
    where
        S: BlockSource + BlockSink + ?Sized,
    {
        let Some((last, inner)) = comps.split_last() else {
            return if parents {
                Ok(root)
            } else {
                Err(MfsError::RootExists)
            };
        };
        let mut chain = vec![load_dir(tx, &root).await?];
        for (i, name) in inner.iter().enumerate() {
            let cur = chain
                .last()
                .map(|d| (d.prefix, d.child(name).map(|l| l.cid)));
            let Some((prefix, child)) = cur else { break };
            match child {
                Some(cid) => {
                    if kind_of(&cid, &tx.get(&cid).await?)? != Kind::Dir {
                        return Err(MfsError::NotADirectory(format!(
                            "{} was not a directory",
                            comps[..i].join("/")
                        )));
                    }
                    chain.push(load_dir(tx, &cid).await?);
                }
                None if parents => chain.push(Dir::empty(builder.unwrap_or(prefix))),
                None => return Err(MfsError::NotExist),
            }
        }
        let (prefix, existing) = match chain.last() {
            Some(d) => (d.prefix, d.child(last).map(|l| l.cid)),
            None => return Err(MfsError::Invalid("empty directory chain".into())),
        };
        match existing {
            Some(cid) => {
                let kind = kind_of(&cid, &tx.get(&cid).await?)?;
                if !parents || kind != Kind::Dir {
                    return Err(MfsError::Exists);
                }
                let Some(b) = builder else {
                    return Ok(root);
                };
                let mut dir = load_dir(tx, &cid).await?;
                dir.prefix = b;
                chain.push(dir);
            }
            None => chain.push(Dir::empty(builder.unwrap_or(prefix))),
        }
        Self::rebuild(tx, chain, comps)
    }

    /// `ipfs files mkdir [-p] [--cid-version N] [--hash H] <path>`.
    ///
    /// New directories get the parent's CID prefix unless `cid_version`/`hash` say otherwise.
    ///
    /// # Errors
    /// Kubo's: `file already exists` (without `parents`, or where a file is),
    /// `cannot create directory '/': Already exists`, `file does not exist` (a missing parent
    /// without `parents`), `<a/b> was not a directory`, `unrecognized hash function: <h>`; path
    /// errors; store errors.
    pub async fn mkdir<S>(
        &mut self,
        store: &S,
        path: &str,
        opts: &MkdirOptions,
    ) -> Result<(), MfsError>
    where
        S: BlockSource + BlockSink + ?Sized,
    {
        let p = parse_path(path)?;
        let builder = Prefix::from_options(opts.cid_version, opts.hash.as_deref())?;
        let mut tx = Tx::new(store);
        let root =
            Self::mkdir_in(&mut tx, self.root, p.components(), opts.parents, builder).await?;
        self.commit(tx, root).await
    }

    /// `ipfs files write`: writes `data` (at most `count` bytes of it) into the file at `path`
    /// at `offset`, as Kubo's `DagModifier` does (see the module docs).
    ///
    /// # Errors
    /// Kubo's: `file does not exist` (no file and no `create`), `<path> was not a file`,
    /// `<dir> is not a directory`, `expected protobuf dag node` (growing a file whose root is
    /// a raw block); `cannot create file with empty name` for a created path ending in `/`;
    /// [`MAX_SPARSE_GROWTH`]; path and store errors.
    pub async fn write<S>(
        &mut self,
        store: &S,
        path: &str,
        data: &[u8],
        opts: &WriteOptions,
    ) -> Result<(), MfsError>
    where
        S: BlockSource + BlockSink + ?Sized,
    {
        let p = parse_path(path)?;
        let shown = p.to_string();
        let builder = Prefix::from_options(opts.cid_version, opts.hash.as_deref())?;
        let mut tx = Tx::new(store);
        let mut root = self.root;
        let comps = p.components();
        if opts.parents {
            // Kubo's ensureContainingDirectoryExists: `path.Dir` of the cleaned path.
            let dir = if p.has_trailing_slash() {
                comps
            } else {
                p.parent_components()
            };
            if !dir.is_empty() {
                root = Self::mkdir_in(&mut tx, root, dir, true, builder).await?;
            }
        }
        let file = match Self::lookup(&tx, &root, comps).await {
            Ok((cid, Kind::File)) => cid,
            Ok((_, Kind::Dir)) => {
                return Err(MfsError::NotAFile(format!("{shown} was not a file")));
            }
            Err(MfsError::NotExist) if opts.create => {
                let (dirname, fname) = split(&shown);
                if fname.is_empty() {
                    return Err(MfsError::InvalidArgument(
                        "cannot create file with empty name".into(),
                    ));
                }
                let chain = Self::dir_chain(&tx, &root, p.parent_components(), dirname).await?;
                let prefix =
                    builder.unwrap_or_else(|| chain.last().map_or(Prefix::V0, |d| d.prefix));
                let mut fs = FsData::new(T_FILE);
                fs.data = None;
                let built = PbNode {
                    links: Vec::new(),
                    data: fs.encode()?,
                }
                .build(&prefix)?;
                tx.keep(built)
            }
            Err(e) => return Err(e),
        };
        let n = opts.count.map_or(data.len(), |c| {
            usize::try_from(c).unwrap_or(usize::MAX).min(data.len())
        });
        let spec = WriteSpec {
            offset: opts.offset,
            truncate: opts.truncate,
            raw_leaves: opts.raw_leaves,
        };
        let (new, size) = write_file(&mut tx, file, &data[..n], spec).await?;
        let (dirname, _) = split(&shown);
        let mut chain = Self::dir_chain(&tx, &root, p.parent_components(), dirname).await?;
        let name = p.name().unwrap_or_default().to_string();
        if let Some(d) = chain.last_mut() {
            d.set_child(&name, new, size);
        }
        let root = Self::rebuild(&mut tx, chain, p.parent_components())?;
        self.commit(tx, root).await
    }

    /// `ipfs files read [-o offset] [-n count] <path>`: the bytes, read into memory.
    ///
    /// # Errors
    /// Kubo's: `<path> was not a file`, `offset was past end of file (<o> > <size>)`,
    /// `file does not exist`; path and store errors.
    pub async fn read<S>(
        &self,
        store: &S,
        path: &str,
        offset: u64,
        count: Option<u64>,
    ) -> Result<Vec<u8>, MfsError>
    where
        S: BlockSource + BlockSink + ?Sized,
    {
        let p = parse_path(path)?;
        let tx = Tx::new(store);
        let (cid, kind) = Self::lookup(&tx, &self.root, p.components()).await?;
        if kind != Kind::File {
            return Err(MfsError::NotAFile(format!("{p} was not a file")));
        }
        let size = file_size(&cid, &tx.get(&cid).await?)?;
        if offset > size {
            return Err(MfsError::InvalidArgument(format!(
                "offset was past end of file ({offset} > {size})"
            )));
        }
        let (_, stream) = crate::exporter::cat(store, &cid, offset, count).await?;
        let chunks: Vec<Bytes> = stream.try_collect().await?;
        Ok(chunks.concat())
    }

    /// `ipfs files ls [-l] [path]`: a directory's entries in link (name) order, or the one
    /// entry of a file. `long` fills type, size and hash (Kubo's `-l`).
    ///
    /// # Errors
    /// `file does not exist`, `cannot access <p>: Not a directory`; path and store errors.
    pub async fn ls<S>(&self, store: &S, path: &str, long: bool) -> Result<Vec<LsEntry>, MfsError>
    where
        S: BlockSource + BlockSink + ?Sized,
    {
        let p = parse_path(path)?;
        let tx = Tx::new(store);
        let (cid, kind) = Self::lookup(&tx, &self.root, p.components()).await?;
        let entry = |name: &str| LsEntry {
            name: name.to_string(),
            kind: EntryType::File,
            size: 0,
            hash: None,
        };
        if kind == Kind::File {
            let mut e = entry(p.name().unwrap_or_default());
            if long {
                e.size = file_size(&cid, &tx.get(&cid).await?)?;
                e.hash = Some(cid);
            }
            return Ok(vec![e]);
        }
        let dir = load_dir(&tx, &cid).await?;
        let mut out = Vec::with_capacity(dir.node.links.len());
        for link in &dir.node.links {
            let mut e = entry(&link.name);
            if long {
                let block = tx.get(&link.cid).await?;
                match kind_of(&link.cid, &block)? {
                    Kind::Dir => e.kind = EntryType::Directory,
                    Kind::File => e.size = file_size(&link.cid, &block)?,
                }
                e.hash = Some(link.cid);
            }
            out.push(e);
        }
        Ok(out)
    }

    /// `ipfs files stat <path>`: an MFS path, or an `/ipfs/<cid>/...` path (as Kubo's).
    ///
    /// # Errors
    /// `file does not exist`, `unrecognized node type: Symlink` (as Kubo's `statNode`); path
    /// and store errors.
    pub async fn stat<S>(&self, store: &S, path: &str) -> Result<Stat, MfsError>
    where
        S: BlockSource + BlockSink + ?Sized,
    {
        let p = parse_path(path)?;
        let tx = Tx::new(store);
        let cid = if p.components().first().map(String::as_str) == Some("ipfs") {
            resolve_ipfs(store, &p.to_string()).await?
        } else {
            Self::lookup(&tx, &self.root, p.components()).await?.0
        };
        stat_node(&cid, &tx.get(&cid).await?)
    }

    /// `ipfs files cp [-p] <src> <dst>`: `src` is an MFS path or an `/ipfs/<cid>/...` path;
    /// a `dst` ending in `/` gets `src`'s last name.
    ///
    /// # Errors
    /// Kubo's texts: `cp: cannot get node from path <src>: <why>`,
    /// `cp: cannot put node in path <dst>: <why>` (`directory already has entry by that name`,
    /// `<dir> is not a directory`...); path and store errors.
    pub async fn cp<S>(
        &mut self,
        store: &S,
        src: &str,
        dst: &str,
        parents: bool,
    ) -> Result<(), MfsError>
    where
        S: BlockSource + BlockSink + ?Sized,
    {
        let sp = parse_path(src)?;
        let src_s = sp.to_string().trim_end_matches('/').to_string();
        let src_s = if src_s.is_empty() {
            "/".to_string()
        } else {
            src_s
        };
        let dp = parse_path(dst)?;
        let dst_p = if dp.has_trailing_slash() {
            match sp.name() {
                Some(n) => dp.join(n),
                None => dp.clone(),
            }
        } else {
            dp.clone()
        };
        let dst_s = if dp.has_trailing_slash() && sp.name().is_none() {
            dp.to_string()
        } else {
            dst_p.to_string()
        };
        let mut tx = Tx::new(store);
        let node = if sp.components().first().map(String::as_str) == Some("ipfs") {
            resolve_ipfs(store, &src_s).await.map_err(|e| {
                MfsError::InvalidArgument(format!("cp: cannot get node from path {src_s}: {e}"))
            })?
        } else {
            Self::lookup(&tx, &self.root, sp.components())
                .await
                .map_err(|e| {
                    MfsError::InvalidArgument(format!("cp: cannot get node from path {src_s}: {e}"))
                })?
                .0
        };
        let mut root = self.root;
        if parents && dst_p.components().len() > 1 {
            root = Self::mkdir_in(&mut tx, root, dst_p.parent_components(), true, None).await?;
        }
        let put_err = |e: MfsError| {
            MfsError::InvalidArgument(format!("cp: cannot put node in path {dst_s}: {e}"))
        };
        let (dirname, fname) = split(&dst_s);
        if fname.is_empty() {
            return Err(put_err(MfsError::InvalidArgument(
                "cannot create file with empty name".into(),
            )));
        }
        let mut chain = Self::dir_chain(&tx, &root, dst_p.parent_components(), dirname)
            .await
            .map_err(put_err)?;
        let size = node_size(&node, &tx.get(&node).await.map_err(put_err)?).map_err(put_err)?;
        if let Some(d) = chain.last_mut() {
            if d.child(fname).is_some() {
                return Err(put_err(MfsError::EntryExists));
            }
            d.set_child(fname, node, size);
        }
        let root = Self::rebuild(&mut tx, chain, dst_p.parent_components())?;
        self.commit(tx, root).await
    }

    /// `ipfs files mv <src> <dst>`, as boxo's `mfs.Mv`: onto a file it replaces it, onto a
    /// directory (or a path ending in `/`) it moves into it.
    ///
    /// Kept from boxo 0.11: the source is not removed when the source and destination
    /// directories have the same *name* and the entry keeps its name (boxo compares directory
    /// names, not paths), so `mv /x/f /y/x/` copies.
    ///
    /// # Errors
    /// `file does not exist`, `<dir> is not a directory`, `directory already has entry by that
    /// name`; path and store errors.
    pub async fn mv<S>(&mut self, store: &S, src: &str, dst: &str) -> Result<(), MfsError>
    where
        S: BlockSource + BlockSink + ?Sized,
    {
        let sp = parse_path(src)?;
        let dp = parse_path(dst)?;
        let src_s = sp.to_string();
        let dst_s = dp.to_string();
        let (src_dir_name, src_fname) = split(&src_s);
        let src_dir_comps: Vec<String> = if sp.has_trailing_slash() {
            sp.components().to_vec()
        } else {
            sp.parent_components().to_vec()
        };
        let (dst_dir_name, mut dst_fname, mut dst_dir_comps): (&str, String, Vec<String>) =
            if dp.has_trailing_slash() || dp.is_root() {
                (&dst_s, src_fname.to_string(), dp.components().to_vec())
            } else {
                let (d, f) = split(&dst_s);
                (d, f.to_string(), dp.parent_components().to_vec())
            };
        let mut tx = Tx::new(store);
        let mut root = self.root;
        let dst_chain = Self::dir_chain(&tx, &root, &dst_dir_comps, dst_dir_name).await?;
        let src_chain = Self::dir_chain(&tx, &root, &src_dir_comps, src_dir_name).await?;
        let node = src_chain
            .last()
            .and_then(|d| d.child(src_fname))
            .map(|l| l.cid)
            .ok_or(MfsError::NotExist)?;
        let existing = dst_chain
            .last()
            .and_then(|d| d.child(&dst_fname))
            .map(|l| l.cid);
        if let Some(cid) = existing {
            match kind_of(&cid, &tx.get(&cid).await?)? {
                Kind::File => {
                    let mut chain = dst_chain;
                    if let Some(d) = chain.last_mut() {
                        d.remove_child(&dst_fname);
                    }
                    root = Self::rebuild(&mut tx, chain, &dst_dir_comps)?;
                }
                Kind::Dir => {
                    dst_dir_comps.push(dst_fname.clone());
                    dst_fname = src_fname.to_string();
                }
            }
        }
        // AddChild on the destination directory.
        let mut chain = Self::dir_chain(&tx, &root, &dst_dir_comps, dst_dir_name).await?;
        let size = node_size(&node, &tx.get(&node).await?)?;
        match chain.last_mut() {
            Some(d) if d.child(&dst_fname).is_some() => return Err(MfsError::EntryExists),
            Some(d) => d.set_child(&dst_fname, node, size),
            None => {}
        }
        root = Self::rebuild(&mut tx, chain, &dst_dir_comps)?;
        let src_dir_base = src_dir_comps.last().map(String::as_str).unwrap_or("");
        let dst_dir_base = dst_dir_comps.last().map(String::as_str).unwrap_or("");
        if !(src_dir_base == dst_dir_base && src_fname == dst_fname) {
            let mut chain = Self::dir_chain(&tx, &root, &src_dir_comps, src_dir_name).await?;
            if let Some(d) = chain.last_mut()
                && !d.remove_child(src_fname)
            {
                return Err(MfsError::NotExist);
            }
            root = Self::rebuild(&mut tx, chain, &src_dir_comps)?;
        }
        self.commit(tx, root).await
    }

    /// `ipfs files rm [-r] [--force] <path>` for one path.
    ///
    /// # Errors
    /// Kubo's: `cannot delete root`, `path is a directory, use -r to remove directories`,
    /// `file does not exist` (never with `force`); path and store errors.
    pub async fn rm<S>(
        &mut self,
        store: &S,
        path: &str,
        recursive: bool,
        force: bool,
    ) -> Result<(), MfsError>
    where
        S: BlockSource + BlockSink + ?Sized,
    {
        let p = parse_path(path)?;
        if p.is_root() {
            return Err(MfsError::CannotDeleteRoot);
        }
        let mut tx = Tx::new(store);
        let parent = p.parent_components();
        let name = p.name().unwrap_or_default();
        // Kubo's getParentDir: a lookup, then "is it a directory".
        match Self::lookup(&tx, &self.root, parent).await {
            Ok((_, Kind::Dir)) => {}
            Ok((_, Kind::File)) => {
                return Err(MfsError::NotADirectory(
                    "expected *mfs.Directory, didn't get it. This is likely a race condition"
                        .into(),
                ));
            }
            Err(MfsError::NotExist) if force => return Ok(()),
            Err(e) => return Err(e),
        }
        let chain = Self::dir_chain(&tx, &self.root, parent, "").await?;
        let mut chain = chain;
        let Some(dir) = chain.last_mut() else {
            return Err(MfsError::Invalid("empty directory chain".into()));
        };
        let Some(child) = dir.child(name).map(|l| l.cid) else {
            return if force {
                Ok(())
            } else {
                Err(MfsError::NotExist)
            };
        };
        if !force && !recursive && kind_of(&child, &tx.get(&child).await?)? == Kind::Dir {
            return Err(MfsError::IsDirectory);
        }
        dir.remove_child(name);
        let root = Self::rebuild(&mut tx, chain, parent)?;
        self.commit(tx, root).await
    }

    /// `ipfs files flush [path]`: the CID at `path` (every operation here is already flushed).
    ///
    /// # Errors
    /// `file does not exist`; path and store errors.
    pub async fn flush<S>(&self, store: &S, path: &str) -> Result<Cid, MfsError>
    where
        S: BlockSource + BlockSink + ?Sized,
    {
        let p = parse_path(path)?;
        let tx = Tx::new(store);
        Ok(Self::lookup(&tx, &self.root, p.components()).await?.0)
    }

    /// `ipfs files chcid [--cid-version N] [--hash H] [path]`: re-encodes the directory at
    /// `path` with a new CID prefix (its children keep theirs; new children inherit it). With
    /// neither option nothing changes, as in Kubo.
    ///
    /// # Errors
    /// `can only update directories`, `file does not exist`, `unrecognized hash function: <h>`;
    /// path and store errors.
    pub async fn chcid<S>(
        &mut self,
        store: &S,
        path: &str,
        cid_version: Option<u8>,
        hash: Option<&str>,
    ) -> Result<(), MfsError>
    where
        S: BlockSource + BlockSink + ?Sized,
    {
        let p = parse_path(path)?;
        let Some(prefix) = Prefix::from_options(cid_version, hash)? else {
            return Ok(());
        };
        let mut tx = Tx::new(store);
        let (_, kind) = Self::lookup(&tx, &self.root, p.components()).await?;
        if kind != Kind::Dir {
            return Err(MfsError::InvalidArgument(
                "can only update directories".into(),
            ));
        }
        let mut chain = Self::dir_chain(&tx, &self.root, p.components(), "").await?;
        if let Some(d) = chain.last_mut() {
            d.prefix = prefix;
        }
        let root = Self::rebuild(&mut tx, chain, p.components())?;
        self.commit(tx, root).await
    }
}

/// The Unix seconds of Go's zero `time.Time` (0001-01-01T00:00:00Z): `IsZero`, which boxo
/// takes as "no mtime".
const GO_ZERO_TIME_SECS: i64 = -62_135_596_800;

/// What [`Mfs::set_meta`] changes.
#[derive(Debug, Clone, Copy)]
enum Meta {
    /// `chmod`: boxo's `FSNode.SetMode` of `os.FileMode(mode)`.
    Mode(u32),
    /// `touch`: boxo's `FSNode.SetModTime` (already normalized; `None` is Go's zero time).
    Mtime(Option<Mtime>),
}

/// boxo's `files.ModePermsToUnixPerms(os.FileMode(mode))`: Go's `ModeSetuid`/`ModeSetgid`
/// (bits 23, 22) become 0o4000/0o2000, `ModeSticky` (bit 20) 0o1000, and the permission bits
/// 0o777 are kept; every other bit is dropped, so a Unix `4755` is stored as `0755`.
pub fn unix_perms(mode: u32) -> u32 {
    ((mode & 0xC0_0000) >> 12) | ((mode & (1 << 20)) >> 11) | (mode & 0x1FF)
}

/// Go's `time.Unix(secs, nanos)` then boxo's zero check: nanoseconds past a second are carried
/// into the seconds, and Go's zero time (0001-01-01T00:00:00Z) is `None` (no mtime).
pub fn normalize_mtime(secs: i64, nanos: u32) -> Option<(i64, u32)> {
    let secs = secs.wrapping_add(i64::from(nanos / 1_000_000_000));
    let nanos = nanos % 1_000_000_000;
    if secs == GO_ZERO_TIME_SECS && nanos == 0 {
        None
    } else {
        Some((secs, nanos))
    }
}

impl Meta {
    /// Applies the change to a decoded UnixFS `Data` (boxo's `SetModeFromUnixPermissions` /
    /// `SetModTime`).
    fn apply(self, fs: &mut FsData) {
        match self {
            Meta::Mode(mode) => {
                let perms = unix_perms(mode);
                let high = fs.mode.unwrap_or(0) & 0xFFFF_F000;
                fs.mode = if perms == 0 && high == 0 {
                    None
                } else {
                    Some(high | (perms & 0xFFF))
                };
            }
            Meta::Mtime(t) => {
                fs.mtime = t;
            }
        }
    }

    /// boxo's `FilePBDataWithStat` for a raw block wrapped into a file node: a mode of 0 and
    /// the zero time are left out.
    fn wrap_raw(self, data: &[u8]) -> FsData {
        let mut fs = FsData::new(T_FILE);
        fs.data = Some(data.to_vec());
        fs.filesize = Some(data.len() as u64);
        match self {
            Meta::Mode(mode) => fs.mode = Some(unix_perms(mode)).filter(|&m| m != 0),
            Meta::Mtime(t) => fs.mtime = t,
        }
        fs
    }
}

impl Mfs {
    /// `ipfs files chmod <mode> <path>` (Kubo 0.30+, boxo `mfs.Chmod`): sets the UnixFS 1.5
    /// `mode` (field 7) of the file or directory at `path`, the root `/` included, keeping
    /// every other field, the links and the CID prefix; the parents up to the root are
    /// re-encoded.
    ///
    /// `mode` is Go's `os.FileMode` as Kubo builds it from the octal argument (a Unix mode
    /// like `0o755`); only what boxo keeps is stored (see [`unix_perms`]): the bits `0o777`
    /// (and Go's setuid/setgid/sticky bits, which are not Unix's `0o7000`). The stored mode's
    /// bits above `0o7777` are kept; a mode of 0 removes the field when none are set.
    ///
    /// A file whose root is a raw block has no UnixFS data to hold a mode: as boxo does, it
    /// becomes a dag-pb `File` node holding the block's bytes (`Data`, `filesize`) and the mode,
    /// named with boxo's default prefix (CIDv0, sha2-256) whatever the raw block's CID was.
    ///
    /// # Errors
    /// Kubo's: `paths must start with a leading slash`, `file does not exist`,
    /// `cannot access <p>: Not a directory`; [`MfsError::Unsupported`] for a HAMT-sharded
    /// directory (cairn's MFS never edits one); store errors.
    pub async fn chmod<S>(&mut self, store: &S, path: &str, mode: u32) -> Result<(), MfsError>
    where
        S: BlockSource + BlockSink + ?Sized,
    {
        self.set_meta(store, path, Meta::Mode(mode)).await
    }

    /// `ipfs files touch [--mtime S] [--mtime-nsecs N] <path>` (Kubo 0.30+, boxo `mfs.Touch`):
    /// sets the UnixFS 1.5 `mtime` (field 8: `seconds`, and `nanos` as a `fixed32` only when
    /// not 0) of the file or directory at `path`, the root `/` included, keeping every other
    /// field, the links and the CID prefix; the parents up to the root are re-encoded.
    ///
    /// `mtime` is (seconds since the Unix epoch, may be negative; nanoseconds). Nanoseconds of
    /// a second or more are carried into the seconds as Go's `time.Unix` does, and Go's zero
    /// time (`-62135596800`, 0) removes the field (see [`normalize_mtime`]). Choosing "now"
    /// when Kubo's `--mtime` is absent or 0 is the caller's part.
    ///
    /// A raw-block file becomes a dag-pb `File` node as in [`Mfs::chmod`] (with the mtime and
    /// no mode).
    ///
    /// # Errors
    /// As [`Mfs::chmod`].
    pub async fn touch<S>(
        &mut self,
        store: &S,
        path: &str,
        mtime: (i64, u32),
    ) -> Result<(), MfsError>
    where
        S: BlockSource + BlockSink + ?Sized,
    {
        let t = normalize_mtime(mtime.0, mtime.1).map(|(seconds, nanos)| Mtime { seconds, nanos });
        self.set_meta(store, path, Meta::Mtime(t)).await
    }

    /// boxo's `File`/`Directory` `SetMode`/`SetModTime` then `updateChildEntry` up to the root.
    async fn set_meta<S>(&mut self, store: &S, path: &str, meta: Meta) -> Result<(), MfsError>
    where
        S: BlockSource + BlockSink + ?Sized,
    {
        let p = parse_path(path)?;
        let mut tx = Tx::new(store);
        let comps = p.components();
        let (cid, _) = Self::lookup(&tx, &self.root, comps).await?;
        let block = tx.get(&cid).await?;
        let built = match cid.codec() {
            RAW => PbNode {
                links: Vec::new(),
                data: meta.wrap_raw(&block).encode()?,
            }
            .build(&Prefix::V0)?,
            DAG_PB => {
                let mut node = PbNode::decode(&cid, &block)?;
                let mut fs = FsData::decode(&node.data)?;
                if fs.kind == T_HAMT {
                    return Err(MfsError::Unsupported(
                        "HAMT-sharded directories are not supported by cairn's MFS".into(),
                    ));
                }
                meta.apply(&mut fs);
                node.data = fs.encode()?;
                node.build(&Prefix::of(&cid))?
            }
            _ => {
                return Err(MfsError::Invalid(
                    "unrecognized node type in cache node".into(),
                ));
            }
        };
        let Some((name, parent)) = comps.split_last() else {
            let root = tx.keep(built);
            return self.commit(tx, root).await;
        };
        let mut chain = Self::dir_chain(&tx, &self.root, parent, "").await?;
        if let Some(d) = chain.last_mut() {
            d.set_child(name, built.cid(), built.size);
        }
        tx.put(built.block);
        let root = Self::rebuild(&mut tx, chain, parent)?;
        self.commit(tx, root).await
    }
}

/// Resolves an `/ipfs/<cid>/...` path through the store (Kubo's `getNodeFromPath`).
async fn resolve_ipfs<S>(store: &S, path: &str) -> Result<Cid, MfsError>
where
    S: BlockSource + ?Sized,
{
    let (cid, segs) = crate::exporter::parse_path(path)?;
    let r = crate::exporter::resolve(store, &cid, &segs).await?;
    if !r.remainder.is_empty() {
        return Err(MfsError::InvalidArgument(format!(
            "path {path} does not end on a node"
        )));
    }
    Ok(r.cid)
}

/// Kubo's `statNode`.
fn stat_node(cid: &Cid, block: &[u8]) -> Result<Stat, MfsError> {
    let cumulative_size = node_size(cid, block)?;
    match cid.codec() {
        DAG_PB => {
            let node = PbNode::decode(cid, block)?;
            let fs = FsData::decode(&node.data)?;
            let (kind, size) = match fs.kind {
                T_DIRECTORY | T_HAMT => ("directory", 0),
                // Kubo 0.30+ reports a symlink as a file (older Kubo refused it).
                T_FILE | T_METADATA | T_RAW | T_SYMLINK => ("file", fs.file_size()),
                other => {
                    return Err(MfsError::Invalid(format!(
                        "unrecognized node type: {other}"
                    )));
                }
            };
            Ok(Stat {
                hash: *cid,
                size,
                cumulative_size,
                blocks: node.links.len() as u64,
                kind,
                mode: stat_mode(&fs),
                mtime: fs.mtime.filter(|t| t.nanos <= 999_999_999),
            })
        }
        RAW => Ok(Stat {
            hash: *cid,
            size: cumulative_size,
            cumulative_size,
            blocks: 0,
            kind: "file",
            mode: 0,
            mtime: None,
        }),
        _ => Err(MfsError::Invalid("not unixfs node (proto or raw)".into())),
    }
}

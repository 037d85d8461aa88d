//! Large block bodies as files, laid out as Kubo's flatfs lays them out: `blocks/SHARDING` holds
//! `/repo/flatfs/shard/v1/next-to-last/2`, and a block lives in
//! `blocks/<XX>/<base32 multihash>.data`, where the name is the unpadded upper-case RFC 4648
//! base32 of the multihash bytes and `XX` its next-to-last two characters (about 1,024 shards).
//!
//! Why files: sled keeps every value in its log and reclaims space only as segments are
//! rewritten, so a store of large blocks took 2.5× the data on disk and kept it after GC (issue
//! 10, and the measurements in BENCHMARKS.md). A file is exactly its bytes (rounded up to the
//! file system's block), and unlinking it gives the space back at once.
//!
//! A write goes to a temporary file in the shard directory, is fsynced (when durable), renamed
//! into place and the directory fsynced, so a crash leaves either no file or the whole file. The
//! caller records the block in sled's index only after that, so the index never names a file that
//! a crash could lose.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

/// Kubo's shard function for `blocks/` (its `SHARDING` file holds this text plus a newline).
const SHARDING: &str = "/repo/flatfs/shard/v1/next-to-last/2";
/// Block files end in this, as Kubo's do.
const EXTENSION: &str = ".data";
/// How many threads fsync a group of files at once.
const SYNC_THREADS: usize = 8;
/// Temporary files start with this; GC removes any left by a crash.
const TEMP_PREFIX: &str = ".temp-";

/// The file store under one directory.
#[derive(Debug)]
pub(crate) struct FlatFs {
    root: PathBuf,
    next_temp: AtomicU64,
}

/// The flatfs name of a multihash key (without the extension).
pub(crate) fn key_name(key: &[u8]) -> String {
    data_encoding::BASE32_NOPAD.encode(key)
}

impl FlatFs {
    /// Opens the store at `root`, creating it (and its `SHARDING` file) if needed. A directory
    /// sharded another way is refused rather than misread.
    pub fn open(root: &Path) -> io::Result<Self> {
        fs::create_dir_all(root)?;
        let sharding = root.join("SHARDING");
        match fs::read_to_string(&sharding) {
            Ok(text) if text.trim() == SHARDING => {}
            Ok(text) => {
                return Err(io::Error::other(format!(
                    "{} says {:?}; cairn only reads {SHARDING:?}",
                    sharding.display(),
                    text.trim()
                )));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::write(&sharding, format!("{SHARDING}\n"))?;
            }
            Err(e) => return Err(e),
        }
        Ok(FlatFs {
            root: root.to_path_buf(),
            next_temp: AtomicU64::new(0),
        })
    }

    /// The store's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn shard_dir(&self, name: &str) -> PathBuf {
        // next-to-last/2: the two characters before the last one (names are always longer).
        let end = name.len() - 1;
        self.root.join(&name[end - 2..end])
    }

    /// Where the block with this multihash key lives.
    pub fn path_of(&self, key: &[u8]) -> PathBuf {
        let name = key_name(key);
        self.shard_dir(&name).join(format!("{name}{EXTENSION}"))
    }

    /// Creates a uniquely named temporary file in shard directory `dir`, creating the directory
    /// when it is missing; the flag says whether it was (its name then needs an fsync of the root
    /// to be durable).
    fn create_temp(&self, dir: &Path) -> io::Result<(PathBuf, File, bool)> {
        let temp = dir.join(format!(
            "{TEMP_PREFIX}{}-{}",
            std::process::id(),
            self.next_temp.fetch_add(1, Ordering::Relaxed)
        ));
        match File::create(&temp) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir_all(dir)?;
                let file = File::create(&temp)?;
                Ok((temp, file, true))
            }
            other => Ok((temp, other?, false)),
        }
    }

    /// Writes a block file: temporary file, (fsync), rename, (fsync of the directory). With
    /// `durable` the file and its name are on disk when this returns.
    pub fn write(&self, key: &[u8], data: &[u8], durable: bool) -> io::Result<()> {
        let name = key_name(key);
        let dir = self.shard_dir(&name);
        let (temp, mut file, new_dir) = self.create_temp(&dir)?;
        if new_dir && durable {
            // The new shard directory's own name must survive too.
            File::open(&self.root)?.sync_all()?;
        }
        let written = file
            .write_all(data)
            .and_then(|()| if durable { file.sync_data() } else { Ok(()) });
        if let Err(e) = written {
            // Do not leave a partial temp file behind (it matters most when the disk is full).
            drop(file);
            let _ = fs::remove_file(&temp);
            return Err(e);
        }
        drop(file);
        fs::rename(&temp, dir.join(format!("{name}{EXTENSION}")))?;
        if durable {
            File::open(&dir)?.sync_all()?;
        }
        Ok(())
    }

    /// Writes several block files: every file written and renamed first, then (when durable)
    /// every file and every directory touched fsynced, in parallel, once. Cheaper than one
    /// [`FlatFs::write`] after another, whose fsyncs each wait a full round trip. A crash
    /// before the fsyncs can leave files with partial bytes, but the caller records them in the
    /// index only after this returns, so such files are orphans (GC removes them), never blocks.
    pub fn write_many<'a>(
        &self,
        items: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
        durable: bool,
    ) -> io::Result<()> {
        let mut files = Vec::new();
        let mut dirs = std::collections::BTreeSet::new();
        for (key, data) in items {
            let name = key_name(key);
            let dir = self.shard_dir(&name);
            let (temp, mut file, new_dir) = self.create_temp(&dir)?;
            if new_dir {
                dirs.insert(self.root.clone());
            }
            if let Err(e) = file.write_all(data) {
                drop(file);
                let _ = fs::remove_file(&temp);
                return Err(e);
            }
            fs::rename(&temp, dir.join(format!("{name}{EXTENSION}")))?;
            files.push(file);
            dirs.insert(dir);
        }
        if durable {
            // Files and directories fsynced in parallel: the disk and the file system's journal
            // merge concurrent flushes; one after another, each waits a full round trip. Their
            // order does not matter: nothing names these files until every sync has returned.
            for dir in dirs {
                files.push(File::open(dir)?);
            }
            let width = files.len().div_ceil(SYNC_THREADS).max(1);
            std::thread::scope(|scope| -> io::Result<()> {
                let workers: Vec<_> = files
                    .chunks(width)
                    .map(|chunk| scope.spawn(move || chunk.iter().try_for_each(File::sync_all)))
                    .collect();
                for w in workers {
                    w.join()
                        .map_err(|_| io::Error::other("fsync thread panicked"))??;
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    /// Reads a block file, or `None` if there is none.
    pub fn read(&self, key: &[u8]) -> io::Result<Option<Bytes>> {
        let mut file = match File::open(self.path_of(key)) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let len = file.metadata()?.len() as usize;
        let mut data = Vec::with_capacity(len);
        file.read_to_end(&mut data)?;
        Ok(Some(Bytes::from(data)))
    }

    /// Removes a block file; whether it was there.
    pub fn remove(&self, key: &[u8]) -> io::Result<bool> {
        match fs::remove_file(self.path_of(key)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Walks every file in the shards, one directory in memory at a time: `f(path, key)` gets the
    /// multihash key of each block file, or `None` for a temporary or foreign file.
    pub fn walk(
        &self,
        mut f: impl FnMut(&Path, Option<Vec<u8>>) -> io::Result<()>,
    ) -> io::Result<()> {
        for shard in fs::read_dir(&self.root)? {
            let shard = shard?;
            if !shard.file_type()?.is_dir() {
                continue;
            }
            for entry in fs::read_dir(shard.path())? {
                let entry = entry?;
                let name = entry.file_name();
                let key = name
                    .to_str()
                    .and_then(|n| n.strip_suffix(EXTENSION))
                    .and_then(|n| data_encoding::BASE32_NOPAD.decode(n.as_bytes()).ok());
                f(&entry.path(), key)?;
            }
        }
        Ok(())
    }

    /// Bytes the files occupy on disk (allocated blocks, as `du` counts them).
    pub fn disk_usage(&self) -> io::Result<u64> {
        let mut total = 0;
        self.walk(|path, _| {
            if let Ok(m) = fs::symlink_metadata(path) {
                total += m.blocks() * 512;
            }
            Ok(())
        })?;
        Ok(total)
    }

    /// Whether a path is a temporary file (left by a write that did not finish).
    pub fn is_temp(path: &Path) -> bool {
        path.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(TEMP_PREFIX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_kubos() {
        let dir = tempfile::tempdir().unwrap();
        let fs_ = FlatFs::open(dir.path()).unwrap();
        // The multihash of the empty raw block, whose flatfs name Kubo users know.
        let key = [
            0x12, 0x20, 0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8,
            0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95,
            0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
        ];
        let p = fs_.path_of(&key);
        assert_eq!(
            p.strip_prefix(dir.path()).unwrap().to_str().unwrap(),
            "QV/CIQOHMGEIKMPYHAUTL57JSEZN64SIJ5OIHSGJG4TJSSJLGI3PBJLQVI.data"
        );
        fs_.write(&key, b"", true).unwrap();
        assert_eq!(fs_.read(&key).unwrap().unwrap(), Bytes::new());
        assert_eq!(
            fs::read_to_string(dir.path().join("SHARDING")).unwrap(),
            "/repo/flatfs/shard/v1/next-to-last/2\n"
        );
        let mut seen = Vec::new();
        fs_.walk(|_, k| {
            seen.push(k);
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, vec![Some(key.to_vec())]);
        assert!(fs_.remove(&key).unwrap());
        assert!(!fs_.remove(&key).unwrap());
        assert_eq!(fs_.read(&key).unwrap(), None);
    }

    #[test]
    fn other_sharding_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("SHARDING"),
            "/repo/flatfs/shard/v1/prefix/2\n",
        )
        .unwrap();
        assert!(FlatFs::open(dir.path()).is_err());
    }
}

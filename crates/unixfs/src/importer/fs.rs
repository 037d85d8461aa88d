//! [`add_path`]: a local file, symlink or directory tree to UnixFS, as `ipfs add -r <path>`
//! reads it (boxo `files.NewSerialFile` + Kubo `core/coreunix/add.go`).
//!
//! Directory entries are visited in byte order of their names (Go's `os.ReadDir`); names
//! starting with `.` are skipped unless `hidden` is set (the given path itself never is);
//! symlinks are stored as symlinks, never followed; empty directories are kept (Kubo's
//! `Import.UnixFSIncludeEmptyDirs` default). `preserve-mode` stores the permission bits of files
//! and directories, `preserve-mtime` the modification time of every entry; `mode`/`mtime`
//! override them for every entry.

use std::fs::{self, Metadata};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::UNIX_EPOCH;

use cid::Cid;

use crate::importer::dir::{DirectoryBuilder, symlink_block};
use crate::importer::file::FileImporter;
use crate::importer::options::{ImportOptions, ResolvedOptions};
use crate::importer::pb::Mtime;
use crate::{Block, UnixfsError};

/// One line of `ipfs add` output.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AddedEntry {
    /// Kubo's `Name`: the path from the added item (`dir/sub/file`), `""` for the wrapping
    /// directory of `wrap-with-directory`.
    pub name: String,
    /// Kubo's `Hash`.
    pub cid: Cid,
    /// Kubo's `Size`: cumulative DAG size in bytes.
    pub size: u64,
}

/// How much of a file is read per [`FileImporter::push`].
const READ_BUF: usize = 1 << 20;

/// The state of one `add_path` walk.
struct Walk<'a> {
    /// The options as given: `hidden`, `preserve-*`, `mode`/`mtime` apply per entry.
    options: &'a ImportOptions,
    /// The options after Kubo's rules, for the file and directory builders.
    resolved: ResolvedOptions,
    /// Where blocks go as soon as they exist, so memory does not grow with the tree's size.
    sink: &'a mut dyn FnMut(Vec<Block>) -> Result<(), UnixfsError>,
    /// `add`'s output lines so far (files and symlinks; directories are added at the end).
    events: Vec<AddedEntry>,
}

/// The last component of `path` as UTF-8 (UnixFS names are strings; a name that is not UTF-8
/// is refused rather than altered, so the DAG never silently renames an entry).
fn utf8_name(path: &Path) -> Result<String, UnixfsError> {
    let name = path.file_name().unwrap_or(path.as_os_str());
    name.to_str()
        .map(str::to_owned)
        .ok_or_else(|| UnixfsError::InvalidPath {
            path: path.display().to_string(),
            reason: "name is not UTF-8".into(),
        })
}

/// Kubo's error for FIFOs, sockets and devices (boxo `files.NewSerialFile`).
fn unsupported(path: &Path) -> UnixfsError {
    UnixfsError::InvalidPath {
        path: path.display().to_string(),
        reason: "unrecognized file type".into(),
    }
}

/// `a/b`, where an empty side adds no separator (the root's relative path is `""`).
fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_owned(),
        (false, true) => a.to_owned(),
        (false, false) => format!("{a}/{b}"),
    }
}

impl Walk<'_> {
    /// The mode to store for an entry: `--mode` if given, else its permission bits (with
    /// setuid/setgid/sticky, as Kubo's `ModePermsToUnixPerms`) under `--preserve-mode`.
    fn mode(&self, meta: &Metadata) -> Option<u32> {
        self.options.mode.or_else(|| {
            self.options
                .preserve_mode
                .then(|| meta.permissions().mode() & 0o7777)
        })
    }

    /// The mtime to store for an entry: `--mtime` if given, else its modification time under
    /// `--preserve-mtime`; seconds are floored as Go's `Time.Unix` does for times before 1970.
    fn mtime(&self, meta: &Metadata) -> Option<Mtime> {
        if self.options.mtime.is_some() {
            return self.options.mtime;
        }
        if !self.options.preserve_mtime {
            return None;
        }
        let t = meta.modified().ok()?;
        Some(match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Mtime {
                seconds: d.as_secs() as i64,
                nanos: d.subsec_nanos(),
            },
            Err(e) => {
                // Before 1970: floor to whole seconds below, nanoseconds above, as Go's Unix().
                let d = e.duration();
                let (s, n) = (d.as_secs() as i64, d.subsec_nanos());
                if n == 0 {
                    Mtime {
                        seconds: -s,
                        nanos: 0,
                    }
                } else {
                    Mtime {
                        seconds: -s - 1,
                        nanos: 1_000_000_000 - n,
                    }
                }
            }
        })
    }

    /// Imports one regular file, streaming it through a [`FileImporter`] and handing blocks to
    /// the sink as they complete; returns its root CID and cumulative size.
    fn file(&mut self, path: &Path, meta: &Metadata) -> Result<(Cid, u64), UnixfsError> {
        let mut importer =
            FileImporter::with_resolved(&self.resolved, self.mode(meta), self.mtime(meta));
        let mut f = fs::File::open(path)?;
        let mut buf = vec![0u8; READ_BUF];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            let blocks = importer.push(&buf[..n])?;
            if !blocks.is_empty() {
                (self.sink)(blocks)?;
            }
        }
        let (result, blocks) = importer.finish()?;
        (self.sink)(blocks)?;
        Ok((result.cid, result.size))
    }

    /// Stores a symlink as a UnixFS `Symlink` node holding its target (never followed, as
    /// `ipfs add` without `--dereference-symlinks`); only mtime applies to it.
    fn symlink(&mut self, path: &Path, meta: &Metadata) -> Result<(Cid, u64), UnixfsError> {
        let target = fs::read_link(path)?;
        let target = target.to_str().ok_or_else(|| UnixfsError::InvalidPath {
            path: path.display().to_string(),
            reason: "symlink target is not UTF-8".into(),
        })?;
        let (result, block) = symlink_block(&self.resolved, target, self.mtime(meta))?;
        (self.sink)(vec![block])?;
        Ok((result.cid, result.size))
    }

    /// Adds the entries of directory `path` under `rel` in `dir`; `shown` is `rel` as `add`
    /// names it.
    fn dir(
        &mut self,
        path: &Path,
        dir: &mut DirectoryBuilder,
        rel: &str,
        shown: &str,
    ) -> Result<(), UnixfsError> {
        let mut names = Vec::new();
        for entry in fs::read_dir(path)? {
            let entry = entry?;
            let name = utf8_name(&entry.path())?;
            if !self.options.hidden && name.starts_with('.') {
                continue;
            }
            names.push(name);
        }
        names.sort_unstable();
        for name in names {
            let child = path.join(&name);
            let (child_rel, child_shown) = (join(rel, &name), join(shown, &name));
            let meta = fs::symlink_metadata(&child)?;
            if meta.file_type().is_symlink() {
                let (cid, size) = self.symlink(&child, &meta)?;
                dir.add_link(&child_rel, cid, size)?;
                self.events.push(AddedEntry {
                    name: child_shown,
                    cid,
                    size,
                });
            } else if meta.is_dir() {
                dir.add_directory(&child_rel, self.mode(&meta), self.mtime(&meta))?;
                self.dir(&child, dir, &child_rel, &child_shown)?;
            } else if meta.is_file() {
                let (cid, size) = self.file(&child, &meta)?;
                dir.add_link(&child_rel, cid, size)?;
                self.events.push(AddedEntry {
                    name: child_shown,
                    cid,
                    size,
                });
            } else {
                return Err(unsupported(&child));
            }
        }
        Ok(())
    }
}

/// Imports the file, symlink or directory tree at `path` as `ipfs add -r [-w] <path>` does,
/// handing blocks to `sink` as they are made (children before parents, the root last) and
/// returning `add`'s output lines in Kubo's order: files and symlinks as they complete, then
/// directories children first, the root (or with `wrap_with_directory`, the wrapper `""`) last.
///
/// Reads files 1 MiB at a time; memory is the importer's bound plus the directory tree's names.
/// Errors: options as [`ImportOptions::resolve`], I/O errors, non-UTF-8 names, and whatever
/// `sink` returns (which stops the import).
pub fn add_path(
    path: &Path,
    options: &ImportOptions,
    sink: &mut dyn FnMut(Vec<Block>) -> Result<(), UnixfsError>,
) -> Result<Vec<AddedEntry>, UnixfsError> {
    let resolved = options.resolve()?;
    let mut walk = Walk {
        options,
        resolved,
        sink,
        events: Vec::new(),
    };
    let name = utf8_name(path)?;
    let meta = fs::symlink_metadata(path)?;
    if meta.is_dir() {
        let mut dir = DirectoryBuilder::with_resolved(&resolved);
        let (rel, shown_prefix) = if options.wrap_with_directory {
            (name.clone(), String::new())
        } else {
            (String::new(), name.clone())
        };
        dir.add_directory(&rel, walk.mode(&meta), walk.mtime(&meta))?;
        walk.dir(path, &mut dir, &rel, &join(&shown_prefix, &rel))?;
        let (dirs, blocks) = dir.finish()?;
        (walk.sink)(blocks)?;
        for d in dirs {
            let shown = if options.wrap_with_directory {
                d.path
            } else {
                join(&name, &d.path)
            };
            walk.events.push(AddedEntry {
                name: shown,
                cid: d.cid,
                size: d.size,
            });
        }
        return Ok(walk.events);
    }
    let (cid, size) = if meta.file_type().is_symlink() {
        walk.symlink(path, &meta)?
    } else if meta.is_file() {
        walk.file(path, &meta)?
    } else {
        return Err(unsupported(path));
    };
    walk.events.push(AddedEntry {
        name: name.clone(),
        cid,
        size,
    });
    if options.wrap_with_directory {
        let mut dir = DirectoryBuilder::with_resolved(&resolved);
        dir.add_link(&name, cid, size)?;
        let (dirs, blocks) = dir.finish()?;
        (walk.sink)(blocks)?;
        for d in dirs {
            walk.events.push(AddedEntry {
                name: d.path,
                cid: d.cid,
                size: d.size,
            });
        }
    }
    Ok(walk.events)
}

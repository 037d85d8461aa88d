//! What the watcher is told: the folder, how long a file must stay unchanged before it counts as
//! complete, how often the folder is rescanned, which names are ignored, what happens on delete,
//! and the add options every import uses.
//!
//! [`WatchConfig`] is a builder with defaults ([`WatchConfig::new`]), and is read from the repo
//! config's `Cairn.Watch` section by [`WatchConfig::from_config`] (cairn-only settings live under
//! `Cairn`; the key names follow Kubo's PascalCase style):
//!
//! ```json
//! "Cairn": {"Watch": {
//!   "Dir": "/srv/drop",           // the folder (absent: no watcher, unless `--watch DIR`)
//!   "SettleInterval": "2s",       // a Go duration: unchanged size+mtime this long = complete
//!   "RescanInterval": "1m",       // a Go duration; "0" turns the periodic rescan off
//!   "Ignore": [".*", "*~", "*.part", "*.tmp", "*.crdownload", "*.swp", "~$*", "#*#"],
//!   "UnpinOnDelete": true,        // false keeps a deleted file's pin
//!   "FollowSymlinks": false,      // false stores symlinks as UnixFS symlinks
//!   "Notify": true,               // false: no change notifications, rescans only
//!   "Concurrency": 4,             // imports at a time
//!   "CidVersion": 0, "RawLeaves": false, "Chunker": "size-262144", "Trickle": false
//! }}
//! ```
//!
//! The add options mean what `cairn add`'s flags of the same names mean (`--cid-version`,
//! `--raw-leaves`, `--chunker`, `--trickle`); left out, they are Kubo's defaults, so a watched
//! file gets the CID `cairn add` gives it.

use std::path::PathBuf;
use std::time::Duration;

use cairn_node_core::AddOptions;
use cairn_node_core::unixfs::chunker::ChunkerSpec;
use cairn_node_core::unixfs::importer::Layout;
use serde::Deserialize;

use crate::error::WatchError;

/// The default [`WatchConfig::settle_interval`]: 2 s.
pub const DEFAULT_SETTLE_INTERVAL: Duration = Duration::from_secs(2);
/// The default [`WatchConfig::rescan_interval`]: 1 min.
pub const DEFAULT_RESCAN_INTERVAL: Duration = Duration::from_secs(60);
/// The default [`WatchConfig::concurrency`]: 4 imports at a time.
pub const DEFAULT_CONCURRENCY: usize = 4;
/// The default ignore list: hidden names (rsync's `.name.XXXXXX` temp files, editors' swap
/// files), backups (`name~`), partial downloads (`*.part`, `*.crdownload`), `*.tmp`, `*.swp`,
/// Office lock files (`~$name`) and Emacs autosaves (`#name#`).
pub const DEFAULT_IGNORE: &[&str] = &[
    ".*",
    "*~",
    "*.part",
    "*.tmp",
    "*.crdownload",
    "*.swp",
    "~$*",
    "#*#",
];

/// The watcher's settings; see the [module docs](self) for the config keys.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WatchConfig {
    /// The watched folder.
    pub dir: PathBuf,
    /// How long an entry's size and mtime must stay unchanged before it is imported (when no
    /// close-after-write event said so first).
    pub settle_interval: Duration,
    /// How often the whole folder is rescanned; `None` only on refresh and at start.
    pub rescan_interval: Option<Duration>,
    /// Name patterns (`*` and `?` wildcards) that are never imported, at any depth.
    pub ignore: IgnoreList,
    /// Unpin a deleted entry's CID (unless another watched entry has the same CID).
    pub unpin_on_delete: bool,
    /// Follow symlinks (else a symlink is imported as a UnixFS symlink).
    pub follow_symlinks: bool,
    /// Listen for change notifications (`notify`); without them only rescans find changes.
    pub notify: bool,
    /// How many imports run at a time.
    pub concurrency: usize,
    /// The add options of every import (pinned, recursively).
    pub add: AddOptions,
}

impl WatchConfig {
    /// The defaults for `dir`: 2 s settle interval, a rescan every minute, [`DEFAULT_IGNORE`],
    /// unpin on delete, symlinks not followed, notifications on, 4 imports at a time, Kubo's
    /// add options.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        WatchConfig {
            dir: dir.into(),
            settle_interval: DEFAULT_SETTLE_INTERVAL,
            rescan_interval: Some(DEFAULT_RESCAN_INTERVAL),
            ignore: IgnoreList::default(),
            unpin_on_delete: true,
            follow_symlinks: false,
            notify: true,
            concurrency: DEFAULT_CONCURRENCY,
            add: AddOptions::new(),
        }
    }

    /// Sets [`WatchConfig::settle_interval`].
    pub fn settle_interval(mut self, d: Duration) -> Self {
        self.settle_interval = d;
        self
    }

    /// Sets [`WatchConfig::rescan_interval`] (`None`: no periodic rescan).
    pub fn rescan_interval(mut self, d: Option<Duration>) -> Self {
        self.rescan_interval = d.filter(|d| !d.is_zero());
        self
    }

    /// Sets [`WatchConfig::ignore`].
    pub fn ignore(mut self, patterns: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.ignore = IgnoreList::new(patterns);
        self
    }

    /// Sets [`WatchConfig::unpin_on_delete`].
    pub fn unpin_on_delete(mut self, on: bool) -> Self {
        self.unpin_on_delete = on;
        self
    }

    /// Sets [`WatchConfig::follow_symlinks`].
    pub fn follow_symlinks(mut self, on: bool) -> Self {
        self.follow_symlinks = on;
        self
    }

    /// Sets [`WatchConfig::notify`].
    pub fn notify(mut self, on: bool) -> Self {
        self.notify = on;
        self
    }

    /// Sets [`WatchConfig::concurrency`] (at least 1).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Sets [`WatchConfig::add`]; the imports are pinned whatever `add.pin` says.
    pub fn add_options(mut self, add: AddOptions) -> Self {
        self.add = add;
        self
    }

    /// Reads `Cairn.Watch` from a repo config. `dir` (from `cairn daemon --watch DIR`) takes
    /// the place of `Dir`. `Ok(None)` when neither names a folder.
    ///
    /// # Errors
    /// [`WatchError::Config`] for a malformed section: an unknown key, a wrong type, a bad
    /// duration or chunker, an add option out of range.
    pub fn from_config(
        config: &cairn_node_core::Config,
        dir: Option<PathBuf>,
    ) -> Result<Option<Self>, WatchError> {
        let section = config
            .extra
            .get("Cairn")
            .and_then(|c| c.get("Watch"))
            .filter(|v| !v.is_null())
            .cloned()
            .unwrap_or_else(|| serde_json::json!({}));
        let raw: RawWatch = serde_json::from_value(section)
            .map_err(|e| WatchError::Config(format!("Cairn.Watch: {e}")))?;
        let Some(dir) = dir.or(raw.dir.map(PathBuf::from)) else {
            return Ok(None);
        };
        let mut c = WatchConfig::new(dir);
        let duration = |key: &str, text: &str| {
            cairn_node_core::config::parse_go_duration(text).ok_or_else(|| {
                WatchError::Config(format!("Cairn.Watch.{key} {text:?} is not a duration"))
            })
        };
        if let Some(t) = &raw.settle_interval {
            c.settle_interval = duration("SettleInterval", t)?;
        }
        if let Some(t) = &raw.rescan_interval {
            c = c.rescan_interval(Some(duration("RescanInterval", t)?));
        }
        if let Some(list) = raw.ignore {
            c.ignore = IgnoreList::new(list);
        }
        c.unpin_on_delete = raw.unpin_on_delete.unwrap_or(true);
        c.follow_symlinks = raw.follow_symlinks.unwrap_or(false);
        c.notify = raw.notify.unwrap_or(true);
        if let Some(n) = raw.concurrency {
            if n == 0 {
                return Err(WatchError::Config(
                    "Cairn.Watch.Concurrency must be at least 1".into(),
                ));
            }
            c.concurrency = n;
        }
        let mut add = AddOptions::new();
        if let Some(v) = raw.cid_version {
            add.import.cid_version = Some(v);
        }
        add.import.raw_leaves = raw.raw_leaves;
        if let Some(text) = &raw.chunker {
            add.import.chunker = text
                .parse::<ChunkerSpec>()
                .map_err(|e| WatchError::Config(format!("Cairn.Watch.Chunker {text:?}: {e}")))?;
        }
        if raw.trickle == Some(true) {
            add.import.layout = Layout::Trickle;
        }
        // Contradictions and ranges are refused now, with Kubo's messages, not at each import.
        add.import
            .resolve()
            .map_err(|e| WatchError::Config(format!("Cairn.Watch: {e}")))?;
        c.add = add;
        Ok(Some(c))
    }
}

/// `Cairn.Watch` as written in the config.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct RawWatch {
    dir: Option<String>,
    settle_interval: Option<String>,
    rescan_interval: Option<String>,
    ignore: Option<Vec<String>>,
    unpin_on_delete: Option<bool>,
    follow_symlinks: Option<bool>,
    notify: Option<bool>,
    concurrency: Option<usize>,
    cid_version: Option<u8>,
    raw_leaves: Option<bool>,
    chunker: Option<String>,
    trickle: Option<bool>,
}

/// Name patterns never imported: `*` matches any run of characters, `?` one character,
/// anything else itself. A pattern matches a whole file name (not a path), at any depth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoreList(Vec<String>);

impl Default for IgnoreList {
    /// [`DEFAULT_IGNORE`].
    fn default() -> Self {
        IgnoreList::new(DEFAULT_IGNORE.iter().copied())
    }
}

impl IgnoreList {
    /// A list of these patterns.
    pub fn new(patterns: impl IntoIterator<Item = impl Into<String>>) -> Self {
        IgnoreList(patterns.into_iter().map(Into::into).collect())
    }

    /// Whether `name` (one path component) matches any pattern.
    pub fn is_ignored(&self, name: &str) -> bool {
        self.0
            .iter()
            .any(|p| wildcard(p.as_bytes(), name.as_bytes()))
    }

    /// The patterns.
    pub fn patterns(&self) -> &[String] {
        &self.0
    }
}

/// `*`/`?` matching, iterative with one backtrack point (linear in practice, never
/// exponential).
fn wildcard(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == name[n]) {
            p += 1;
            n += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, n));
            p += 1;
        } else if let Some((sp, sn)) = star {
            p = sp + 1;
            n = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_ignore_list_catches_temp_names() {
        let list = IgnoreList::default();
        for name in [
            ".movie.mkv.Xa81Bq",
            ".hidden",
            "notes.txt~",
            "big.iso.part",
            "x.tmp",
            "y.crdownload",
            "~$report.docx",
            "#draft#",
        ] {
            assert!(list.is_ignored(name), "{name}");
        }
        for name in ["movie.mkv", "a.partial-name", "report.docx", "x~y"] {
            assert!(!list.is_ignored(name), "{name}");
        }
    }

    #[test]
    fn wildcards() {
        assert!(wildcard(b"a*b*c", b"aXXbYYc"));
        assert!(!wildcard(b"a*b*c", b"aXXbYY"));
        assert!(wildcard(b"?.txt", b"a.txt"));
        assert!(!wildcard(b"?.txt", b"ab.txt"));
        assert!(wildcard(b"*", b""));
        assert!(wildcard(b"**a", b"bba"));
    }

    #[test]
    fn the_section_is_read_and_checked() {
        let mut config = cairn_node_core::Config::default();
        assert!(WatchConfig::from_config(&config, None).unwrap().is_none());
        config.extra.insert(
            "Cairn".into(),
            serde_json::json!({"Watch": {"Dir": "/srv/drop", "SettleInterval": "500ms",
                "RescanInterval": "0", "Ignore": ["*.x"], "UnpinOnDelete": false,
                "CidVersion": 1, "RawLeaves": true, "Chunker": "size-1024"}}),
        );
        let c = WatchConfig::from_config(&config, None).unwrap().unwrap();
        assert_eq!(c.dir, PathBuf::from("/srv/drop"));
        assert_eq!(c.settle_interval, Duration::from_millis(500));
        assert_eq!(c.rescan_interval, None);
        assert!(c.ignore.is_ignored("a.x") && !c.ignore.is_ignored(".a"));
        assert!(!c.unpin_on_delete);
        assert_eq!(c.add.import.cid_version, Some(1));
        let c = WatchConfig::from_config(&config, Some("/other".into()))
            .unwrap()
            .unwrap();
        assert_eq!(c.dir, PathBuf::from("/other"));
        for bad in [
            serde_json::json!({"Watch": {"Dir": "/d", "SettleIntervall": "1s"}}),
            serde_json::json!({"Watch": {"Dir": "/d", "SettleInterval": "soon"}}),
            serde_json::json!({"Watch": {"Dir": "/d", "Chunker": "size-x"}}),
            serde_json::json!({"Watch": {"Dir": "/d", "CidVersion": 7}}),
        ] {
            config.extra.insert("Cairn".into(), bad.clone());
            assert!(
                matches!(
                    WatchConfig::from_config(&config, None),
                    Err(WatchError::Config(_))
                ),
                "{bad}"
            );
        }
    }
}

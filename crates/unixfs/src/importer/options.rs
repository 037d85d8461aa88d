//! [`ImportOptions`]: Kubo's `ipfs add` options that shape the DAG, with Kubo's names, defaults
//! and cross-option rules (`core/coreiface/options/unixfs.go` and `core/commands/add.go`).

use cid::Version;
use multihash_codetable::{Code, MultihashDigest};

use crate::chunker::ChunkerSpec;
use crate::importer::pb::Mtime;
use crate::{Block, UnixfsError};

/// The dag-pb codec.
pub(crate) const DAG_PB: u64 = 0x70;
/// The raw codec.
pub(crate) const RAW: u64 = 0x55;
/// The identity multihash code (inlined blocks).
const IDENTITY: u64 = 0x00;
/// Largest identity digest a cairn [`Cid`] can hold (`cid::Cid` is `CidGeneric<64>`); Kubo
/// allows up to 128 (`verifcid.DefaultMaxIdentityDigestSize`).
pub const MAX_INLINE_LIMIT: usize = 64;
/// Kubo's file-node link limit (`helpers.DefaultLinksPerBlock` = 8192 / 47 = 174).
pub const DEFAULT_MAX_FILE_LINKS: usize = 174;
/// Kubo's `Import.UnixFSHAMTDirectorySizeThreshold`: a directory whose estimated size (sum of
/// link name lengths and CID byte lengths) exceeds this many bytes is sharded.
pub const DEFAULT_HAMT_THRESHOLD: usize = 256 * 1024;
/// Kubo's HAMT fanout (`io.DefaultShardWidth`).
pub const DEFAULT_HAMT_FANOUT: usize = 256;

/// How file chunks are arranged into a tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Layout {
    /// boxo's balanced layout (Kubo's default): full subtrees of `max_file_links` children.
    #[default]
    Balanced,
    /// boxo's trickle layout (`ipfs add --trickle`): a leaf layer, then subtrees of growing depth,
    /// each depth repeated 4 times.
    Trickle,
}

/// How a directory's size is estimated to decide whether it becomes a HAMT
/// (Kubo's `Import.UnixFSHAMTDirectorySizeEstimation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum HamtSizeEstimation {
    /// `links` (Kubo's default): the sum over entries of name bytes plus CID bytes.
    #[default]
    Links,
    /// `block`: the plain directory block's exact encoded size (IPIP-499 `unixfs-v1-2025`).
    Block,
    /// `disabled`: never shard by size; only `max-directory-links` can shard.
    Disabled,
}

/// The options of `ipfs add` that decide the blocks and CIDs of an import.
///
/// Field names follow Kubo's option names; `None` means "not given", so Kubo's rules between
/// options can apply (see [`ImportOptions::resolve`]). [`Default`] is `ipfs add` with no flags:
/// CIDv0, sha2-256, `size-262144`, balanced, dag-pb leaves, no inlining, HAMT above 256 KiB.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImportOptions {
    /// `--chunker` (`size-262144`).
    pub chunker: ChunkerSpec,
    /// `--trickle` selects [`Layout::Trickle`].
    pub layout: Layout,
    /// `--raw-leaves`; when `None`, true exactly when the CID version is 1 (and always false when
    /// mode or mtime is stored, as Kubo does).
    pub raw_leaves: Option<bool>,
    /// `--cid-version` (0 or 1); when `None`, 0 unless `hash` is not sha2-256.
    pub cid_version: Option<u8>,
    /// `--hash`, as a multihash code (sha2-256 = 0x12). Any other hash implies CIDv1.
    pub hash: u64,
    /// `--inline`: blocks of at most `inline_limit` bytes get an identity-multihash CIDv1.
    pub inline: bool,
    /// `--inline-limit` in bytes (32); at most [`MAX_INLINE_LIMIT`].
    pub inline_limit: usize,
    /// `--max-file-links` (174).
    pub max_file_links: usize,
    /// `--max-hamt-fanout`: children per HAMT node, a power of two in 8..=1024 (256).
    pub max_hamt_fanout: usize,
    /// `Import.UnixFSHAMTDirectorySizeThreshold` in bytes (262144); 0 disables sharding.
    pub hamt_threshold: usize,
    /// `Import.UnixFSHAMTDirectorySizeEstimation` ([`HamtSizeEstimation::Links`]).
    pub hamt_size_estimation: HamtSizeEstimation,
    /// `--max-directory-links`: a directory with more entries is sharded (0, the default: no
    /// limit).
    pub max_directory_links: usize,
    /// `--wrap-with-directory`: put the added entries in a new directory and return it too.
    pub wrap_with_directory: bool,
    /// `--hidden`: include entries whose name starts with `.` when walking a local directory.
    pub hidden: bool,
    /// `--preserve-mode`: store each entry's permission bits (UnixFS 1.5 `mode`).
    pub preserve_mode: bool,
    /// `--preserve-mtime`: store each entry's modification time (UnixFS 1.5 `mtime`).
    pub preserve_mtime: bool,
    /// `--mode`: store these permission bits on every entry (overrides `preserve_mode`).
    pub mode: Option<u32>,
    /// `--mtime`/`--mtime-nsecs`: store this time on every entry (overrides `preserve_mtime`).
    pub mtime: Option<Mtime>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            chunker: ChunkerSpec::default(),
            layout: Layout::Balanced,
            raw_leaves: None,
            cid_version: None,
            hash: u64::from(Code::Sha2_256),
            inline: false,
            inline_limit: 32,
            max_file_links: DEFAULT_MAX_FILE_LINKS,
            max_hamt_fanout: DEFAULT_HAMT_FANOUT,
            hamt_threshold: DEFAULT_HAMT_THRESHOLD,
            hamt_size_estimation: HamtSizeEstimation::Links,
            max_directory_links: 0,
            wrap_with_directory: false,
            hidden: false,
            preserve_mode: false,
            preserve_mtime: false,
            mode: None,
            mtime: None,
        }
    }
}

/// Kubo's `--hash` names this build can compute, with their multihash codes.
const HASHES: &[(&str, u64)] = &[
    ("sha2-256", 0x12),
    ("sha2-512", 0x13),
    ("sha3-224", 0x17),
    ("sha3-256", 0x16),
    ("sha3-384", 0x15),
    ("sha3-512", 0x14),
    ("keccak-224", 0x1a),
    ("keccak-256", 0x1b),
    ("keccak-384", 0x1c),
    ("keccak-512", 0x1d),
    ("blake2b-256", 0xb220),
    ("blake2b-512", 0xb240),
    ("blake3", 0x1e),
];

/// The multihash code for a Kubo `--hash` name (case-insensitive, as Kubo lowercases it).
///
/// Errors with Kubo's message `unrecognized hash function: "<name>"` for names it does not know
/// or this build cannot compute.
pub fn hash_code_from_name(name: &str) -> Result<u64, UnixfsError> {
    let lower = name.to_ascii_lowercase();
    HASHES
        .iter()
        .find(|(n, _)| *n == lower)
        .map(|&(_, c)| c)
        .ok_or_else(|| {
            UnixfsError::InvalidArgument(format!("unrecognized hash function: {lower:?}"))
        })
}

impl ImportOptions {
    /// Sets one option from its Kubo name and string value, as they arrive in an RPC query
    /// (`chunker`, `trickle`, `raw-leaves`, `cid-version`, `hash`, `inline`, `inline-limit`,
    /// `max-file-links`, `max-directory-links`, `max-hamt-fanout`, `wrap-with-directory`/`w`, `hidden`/`H`,
    /// `preserve-mode`, `preserve-mtime`, `mode` (octal), `mtime`, `mtime-nsecs`).
    ///
    /// Returns `Ok(false)` for a name that does not shape the DAG (`pin`, `quiet`...), so the
    /// caller can handle it; errors on a value that does not parse.
    pub fn set(&mut self, name: &str, value: &str) -> Result<bool, UnixfsError> {
        let bad =
            |what: &str| UnixfsError::InvalidArgument(format!("invalid {what} value: {value:?}"));
        let boolean = |v: &str| match v {
            "" | "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err(bad(name)),
        };
        let int = |v: &str| v.parse::<u64>().map_err(|_| bad(name));
        match name {
            "chunker" | "s" => self.chunker = value.parse()?,
            "trickle" | "t" => {
                self.layout = if boolean(value)? {
                    Layout::Trickle
                } else {
                    Layout::Balanced
                }
            }
            "raw-leaves" => self.raw_leaves = Some(boolean(value)?),
            "cid-version" => {
                self.cid_version = Some(u8::try_from(int(value)?).map_err(|_| bad(name))?)
            }
            "hash" => self.hash = hash_code_from_name(value)?,
            "inline" => self.inline = boolean(value)?,
            "inline-limit" => {
                self.inline_limit = usize::try_from(int(value)?).map_err(|_| bad(name))?
            }
            "max-file-links" => {
                self.max_file_links = usize::try_from(int(value)?).map_err(|_| bad(name))?
            }
            "max-directory-links" => {
                self.max_directory_links = usize::try_from(int(value)?).map_err(|_| bad(name))?
            }
            "max-hamt-fanout" => {
                self.max_hamt_fanout = usize::try_from(int(value)?).map_err(|_| bad(name))?
            }
            "wrap-with-directory" | "w" => self.wrap_with_directory = boolean(value)?,
            "hidden" | "H" => self.hidden = boolean(value)?,
            "preserve-mode" => self.preserve_mode = boolean(value)?,
            "preserve-mtime" => self.preserve_mtime = boolean(value)?,
            "mode" => {
                let m = u32::from_str_radix(value, 8).map_err(|_| bad(name))?;
                self.mode = Some(m);
            }
            "mtime" => {
                let s = value.parse::<i64>().map_err(|_| bad(name))?;
                let nanos = self.mtime.map_or(0, |t| t.nanos);
                self.mtime = Some(Mtime { seconds: s, nanos });
            }
            "mtime-nsecs" => {
                let n = u32::try_from(int(value)?).map_err(|_| bad(name))?;
                let seconds = self.mtime.map_or(0, |t| t.seconds);
                self.mtime = Some(Mtime { seconds, nanos: n });
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Applies Kubo's rules between options and checks every value, giving what the importer
    /// uses. The rules, in Kubo's order:
    /// - a hash other than sha2-256 implies CIDv1; an explicit CIDv0 with it is an error
    ///   (`CIDv0 only supports sha2-256`);
    /// - storing mode or mtime turns raw leaves off (an explicit `raw-leaves=true` is an error:
    ///   `raw-leaves can't be used with UnixFS metadata like mode or modification time`);
    /// - CIDv1 turns raw leaves on unless `raw-leaves` was given.
    ///
    /// Other errors: a chunker outside [`ChunkerSpec::validate`]'s limits, CID version not 0/1, `inline-limit` above [`MAX_INLINE_LIMIT`],
    /// `max-file-links` below 2, a fanout that is not a power of two in 8..=1024, `mtime-nsecs`
    /// of a second or more.
    pub fn resolve(&self) -> Result<ResolvedOptions, UnixfsError> {
        let invalid = |m: String| Err(UnixfsError::InvalidArgument(m));
        self.chunker.validate()?;
        let code = Code::try_from(self.hash).map_err(|_| {
            UnixfsError::InvalidArgument(format!("unsupported hash function 0x{:x}", self.hash))
        })?;
        let version = match (self.hash == 0x12, self.cid_version) {
            (_, Some(v)) if v > 1 => return invalid(format!("unknown CID version: {v}")),
            (false, Some(0)) => return invalid("CIDv0 only supports sha2-256".into()),
            (false, _) => Version::V1,
            (true, Some(1)) => Version::V1,
            (true, _) => Version::V0,
        };
        let metadata = self.preserve_mode
            || self.preserve_mtime
            || self.mode.is_some()
            || self.mtime.is_some();
        let raw_leaves = if metadata {
            if self.raw_leaves == Some(true) {
                return invalid(
                    "raw-leaves can't be used with UnixFS metadata like mode or modification time"
                        .into(),
                );
            }
            false
        } else {
            self.raw_leaves.unwrap_or(version == Version::V1)
        };
        if self.inline && self.inline_limit > MAX_INLINE_LIMIT {
            return invalid(format!(
                "inline-limit {} exceeds maximum allowed size of {MAX_INLINE_LIMIT} bytes",
                self.inline_limit
            ));
        }
        if self.max_file_links < 2 {
            return invalid(format!(
                "max-file-links must be at least 2, got {}",
                self.max_file_links
            ));
        }
        let fanout = self.max_hamt_fanout;
        if !fanout.is_power_of_two() || !(8..=1024).contains(&fanout) {
            return invalid(format!(
                "max-hamt-fanout must be a power of 2 between 8 and 1024, got {fanout}"
            ));
        }
        if self.mtime.is_some_and(|t| t.nanos >= 1_000_000_000) {
            return invalid("mtime-nsecs must be below 1000000000".into());
        }
        Ok(ResolvedOptions {
            cids: CidBuilder::new(version, code, self.inline.then_some(self.inline_limit)),
            raw_leaves,
            layout: self.layout,
            chunker: self.chunker,
            max_file_links: self.max_file_links,
            hamt_fanout: fanout,
            hamt_threshold: self.hamt_threshold,
            hamt_size_estimation: self.hamt_size_estimation,
            max_directory_links: self.max_directory_links,
        })
    }
}

/// [`ImportOptions`] after Kubo's rules: what the file and directory builders use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResolvedOptions {
    /// How blocks get their CIDs.
    pub cids: CidBuilder,
    /// Whether file leaves are raw blocks.
    pub raw_leaves: bool,
    /// The file layout.
    pub layout: Layout,
    /// The chunker.
    pub chunker: ChunkerSpec,
    /// Links per file node.
    pub max_file_links: usize,
    /// Children per HAMT node.
    pub hamt_fanout: usize,
    /// Estimated directory size above which a directory is sharded (0: never).
    pub hamt_threshold: usize,
    /// How that size is estimated.
    pub hamt_size_estimation: HamtSizeEstimation,
    /// Entry count above which a directory is sharded (0: no limit).
    pub max_directory_links: usize,
}

/// Makes blocks and their CIDs as Kubo's `cid.Prefix` wrapped in `cidutil.InlineBuilder` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CidBuilder {
    /// CID version for dag-pb blocks (raw blocks are always CIDv1, as in Kubo).
    pub version: Version,
    /// The hash function.
    pub code: Code,
    /// The hash function's digest length in bytes.
    digest_len: u8,
    /// With `--inline`: blocks of at most this many bytes get an identity CIDv1.
    pub inline_limit: Option<usize>,
}

impl CidBuilder {
    /// A builder for CIDs of `version` hashed with `code`, inlining blocks of at most
    /// `inline_limit` bytes when it is `Some`.
    pub fn new(version: Version, code: Code, inline_limit: Option<usize>) -> Self {
        let digest_len = code.digest(&[]).size();
        CidBuilder {
            version,
            code,
            digest_len,
            inline_limit,
        }
    }

    /// The block for `data` under `codec` (dag-pb or raw), hashed once.
    ///
    /// Raw blocks and inlined blocks are CIDv1 whatever `version` is, as Kubo's
    /// `Prefix.WithCodec` and `InlineBuilder` make them.
    pub(crate) fn block(&self, codec: u64, data: Vec<u8>) -> Result<Block, UnixfsError> {
        let (version, code, len) = if self.inline_limit.is_some_and(|l| data.len() <= l) {
            (Version::V1, IDENTITY, data.len())
        } else if self.version == Version::V0 && codec == DAG_PB {
            (
                Version::V0,
                u64::from(self.code),
                usize::from(self.digest_len),
            )
        } else {
            (
                Version::V1,
                u64::from(self.code),
                usize::from(self.digest_len),
            )
        };
        Block::from_prefix(version, codec, code, len, data).map_err(UnixfsError::Block)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(kv: &[(&str, &str)]) -> Result<ResolvedOptions, UnixfsError> {
        let mut o = ImportOptions::default();
        for (k, v) in kv {
            assert!(o.set(k, v)?, "{k}");
        }
        o.resolve()
    }

    #[test]
    fn kubo_defaults_and_rules() {
        let r = resolve(&[]).unwrap();
        assert_eq!(
            (r.cids.version, r.raw_leaves, r.layout),
            (Version::V0, false, Layout::Balanced)
        );
        assert_eq!(
            (r.max_file_links, r.hamt_fanout, r.hamt_threshold),
            (174, 256, 262144)
        );
        // CIDv1 turns raw leaves on unless given.
        assert!(resolve(&[("cid-version", "1")]).unwrap().raw_leaves);
        assert!(
            !resolve(&[("cid-version", "1"), ("raw-leaves", "false")])
                .unwrap()
                .raw_leaves
        );
        // Another hash implies CIDv1 (and so raw leaves); explicit CIDv0 with it is Kubo's error.
        let r = resolve(&[("hash", "blake2b-256")]).unwrap();
        assert_eq!((r.cids.version, r.raw_leaves), (Version::V1, true));
        let e = resolve(&[("hash", "sha2-512"), ("cid-version", "0")]).unwrap_err();
        assert_eq!(e.to_string(), "CIDv0 only supports sha2-256");
        assert_eq!(
            resolve(&[("hash", "md5")]).unwrap_err().to_string(),
            "unrecognized hash function: \"md5\""
        );
        assert!(resolve(&[("cid-version", "2")]).is_err());
        // Metadata turns raw leaves off, and refuses an explicit raw-leaves=true.
        assert!(
            !resolve(&[("cid-version", "1"), ("preserve-mtime", "true")])
                .unwrap()
                .raw_leaves
        );
        let e = resolve(&[("raw-leaves", "true"), ("mode", "644")]).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("raw-leaves can't be used with UnixFS metadata"),
            "{e}"
        );
        // Limits.
        assert!(resolve(&[("inline", "true"), ("inline-limit", "65")]).is_err());
        assert!(resolve(&[("inline", "true"), ("inline-limit", "64")]).is_ok());
        assert!(resolve(&[("max-hamt-fanout", "100")]).is_err());
        assert!(resolve(&[("mtime-nsecs", "1000000000")]).is_err());
        let o = ImportOptions {
            chunker: ChunkerSpec::Size(0),
            ..Default::default()
        };
        assert!(o.resolve().is_err());
    }

    #[test]
    fn option_strings() {
        let mut o = ImportOptions::default();
        assert!(o.set("trickle", "true").unwrap());
        assert!(o.set("mode", "0755").unwrap());
        assert!(o.set("mtime", "-5").unwrap());
        assert!(o.set("mtime-nsecs", "7").unwrap());
        assert!(!o.set("pin", "true").unwrap(), "not an importer option");
        assert_eq!(o.layout, Layout::Trickle);
        assert_eq!(o.mode, Some(0o755));
        assert_eq!(
            o.mtime,
            Some(Mtime {
                seconds: -5,
                nanos: 7
            })
        );
        assert!(o.set("raw-leaves", "maybe").is_err());
        assert!(o.set("mode", "9").is_err());
        assert_eq!(hash_code_from_name("SHA2-256").unwrap(), 0x12);
    }
}

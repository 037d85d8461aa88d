//! CARs of part of a DAG, as the trustless gateway serves them
//! (<https://specs.ipfs.tech/http-gateways/trustless-gateway/>): the blocks needed to walk a
//! path, then the blocks of its terminal element chosen by a [`DagScope`] and, for files, an
//! [`EntityBytes`] range.
//!
//! Every block comes from running the walk that needs it (path resolution, a file read, a
//! directory listing, a whole-DAG walk) over a [`BlockSource`] that also writes each block it
//! hands out, once, as a CAR section. So the CAR holds exactly the blocks a client needs to
//! verify the same walk, in the order the walk met them (depth first), and never a block the
//! walk skipped (a file's subtrees outside the range are not fetched, let alone sent).
//!
//! # Memory bound
//! One block in flight plus the set of CIDs written (about 100 bytes each: 40 MB for the
//! 400,000 blocks of a 100 GB file), and what the output channel buffers.

use std::collections::HashSet;

use bytes::Bytes;
use futures::StreamExt;
use std::sync::Mutex;
use tokio::sync::mpsc;

use crate::car::{header_bytes, section};
use crate::exporter::{self, NodeKind, load, node_kind};
use crate::{BlockSource, BoxError, BoxFuture, Cid, UnixfsError};

/// Which blocks of the path's terminal element a CAR carries (the spec's `dag-scope`), after the
/// blocks needed to walk the path to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum DagScope {
    /// Only the terminal block.
    Block,
    /// What is needed to read the terminal element: every block of a UnixFS file (or of the
    /// [`EntityBytes`] range), the shard nodes of a directory (not its entries), the one block
    /// of anything else.
    Entity,
    /// The whole DAG under the terminal block (the default).
    #[default]
    All,
}

impl DagScope {
    /// The spec's name (`block`, `entity`, `all`).
    pub fn as_str(self) -> &'static str {
        match self {
            DagScope::Block => "block",
            DagScope::Entity => "entity",
            DagScope::All => "all",
        }
    }
}

impl std::str::FromStr for DagScope {
    type Err = UnixfsError;

    /// Parses `block`, `entity` or `all`.
    ///
    /// # Errors
    /// [`UnixfsError::InvalidArgument`] for any other text.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "block" => Ok(DagScope::Block),
            "entity" => Ok(DagScope::Entity),
            "all" => Ok(DagScope::All),
            other => Err(UnixfsError::InvalidArgument(format!(
                "invalid dag-scope {other:?}: expected block, entity or all"
            ))),
        }
    }
}

/// The spec's `entity-bytes=from:to`: an inclusive byte range of a file, where a negative
/// number counts from the end and `to` may be `*` (the end). It implies [`DagScope::Entity`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntityBytes {
    /// The first byte; negative counts back from the end (`-1024` is the last 1 KiB).
    pub from: i64,
    /// The last byte, inclusive; `None` for `*` (the end); negative counts back from the end.
    pub to: Option<i64>,
}

impl EntityBytes {
    /// The byte range `[start, end)` these bounds select in a file of `size` bytes; empty when
    /// they select nothing (then the CAR is as for [`DagScope::Block`], as the spec says).
    pub fn resolve(&self, size: u64) -> std::ops::Range<u64> {
        let at = |n: i64| -> u64 {
            if n < 0 {
                size.saturating_sub(n.unsigned_abs())
            } else {
                (n as u64).min(size)
            }
        };
        let start = at(self.from);
        let end = match self.to {
            None => size,
            Some(to) if to < 0 => size.saturating_sub(to.unsigned_abs()).saturating_add(1),
            Some(to) => (to as u64).saturating_add(1),
        }
        .min(size);
        start..end.max(start)
    }
}

impl std::str::FromStr for EntityBytes {
    type Err = UnixfsError;

    /// Parses `from:to` (`0:*`, `-1024:*`, `499:-1000`, `0:1023`).
    ///
    /// # Errors
    /// [`UnixfsError::InvalidArgument`] when it is not two integers (or `*` for `to`) around a
    /// colon, or when both are non-negative with `to < from`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            UnixfsError::InvalidArgument(format!(
                "invalid entity-bytes {s:?}: expected from:to with integers (to may be *)"
            ))
        };
        let (from, to) = s.split_once(':').ok_or_else(bad)?;
        let from: i64 = from.parse().map_err(|_| bad())?;
        let to = match to {
            "*" => None,
            n => Some(n.parse::<i64>().map_err(|_| bad())?),
        };
        if let Some(to) = to
            && from >= 0
            && to >= 0
            && to < from
        {
            return Err(bad());
        }
        Ok(EntityBytes { from, to })
    }
}

/// A [`BlockSource`] that writes every block it hands out (once) as a CAR section, the CAR
/// header going out with the first.
struct Tee<'a, S: ?Sized, E> {
    src: &'a S,
    out: &'a mpsc::Sender<Result<Bytes, E>>,
    header: Mutex<Option<Bytes>>,
    written: Mutex<HashSet<Cid>>,
}

/// The consumer of the CAR went away: the walk stops.
#[derive(Debug, thiserror::Error)]
#[error("the CAR's reader is gone")]
struct ReaderGone;

impl<S: BlockSource + ?Sized, E: Send + 'static> BlockSource for Tee<'_, S, E> {
    fn get<'b>(&'b self, cid: &'b Cid) -> BoxFuture<'b, Result<Option<Bytes>, BoxError>> {
        Box::pin(async move {
            let Some(data) = self.src.get(cid).await? else {
                return Ok(None);
            };
            if self.written.lock().is_ok_and(|mut w| w.insert(*cid)) {
                let header = self.header.lock().ok().and_then(|mut h| h.take());
                for part in header.into_iter().chain([section(cid, &data)]) {
                    self.out
                        .send(Ok(part))
                        .await
                        .map_err(|_| Box::new(ReaderGone) as BoxError)?;
                }
            }
            Ok(Some(data))
        })
    }
}

/// Writes a CARv1 of `root/segments` to `out`: header (with `root` as its one root), the blocks
/// that resolve the path, then the terminal element's blocks chosen by `scope` and, for a file,
/// `bytes` (which implies [`DagScope::Entity`]). Blocks go out depth first, each once. Nothing
/// is sent until the first block was read, so a missing root is an error before any byte (a
/// gateway can still answer 404 or 504); after that an error truncates the CAR, as the spec
/// allows.
///
/// # Errors
/// As [`exporter::resolve`] and the walks of the scope: missing or invalid blocks, a path that
/// does not exist. When `out` is closed the walk stops and this returns `Ok`.
pub async fn write_car<S: BlockSource + ?Sized, E: Send + 'static>(
    src: &S,
    root: Cid,
    segments: &[String],
    scope: DagScope,
    bytes: Option<EntityBytes>,
    out: &mpsc::Sender<Result<Bytes, E>>,
) -> Result<(), UnixfsError> {
    let tee = Tee {
        src,
        out,
        header: Mutex::new(Some(Bytes::from(header_bytes(&[root])?))),
        written: Mutex::new(HashSet::new()),
    };
    match walk(&tee, root, segments, scope, bytes).await {
        Err(UnixfsError::Store(e)) if e.is::<ReaderGone>() => Ok(()),
        other => other,
    }
}

async fn walk<S: BlockSource + ?Sized>(
    tee: &S,
    root: Cid,
    segments: &[String],
    scope: DagScope,
    bytes: Option<EntityBytes>,
) -> Result<(), UnixfsError> {
    // The path's blocks (HAMT shards on the way included) are read by resolving it.
    let end = exporter::resolve(tee, &root, segments).await?.cid;
    let block = load(tee, &end).await?;
    let scope = if bytes.is_some() {
        DagScope::Entity
    } else {
        scope
    };
    match scope {
        DagScope::Block => Ok(()),
        DagScope::All => drain(crate::car::export(tee, vec![end])).await,
        DagScope::Entity => match node_kind(&end, &block) {
            NodeKind::File { size } => {
                let range = bytes.map_or(0..size, |b| b.resolve(size));
                if range.is_empty() && size > 0 {
                    // Nothing of the file is wanted: the root block alone lets the client see
                    // the file's size (the spec's fallback to `block`).
                    return Ok(());
                }
                let (_, stream) =
                    exporter::cat(tee, &end, range.start, Some(range.end - range.start)).await?;
                drain(stream).await
            }
            NodeKind::HamtShard => drain(exporter::ls(tee, &end, false).await?).await,
            _ => Ok(()),
        },
    }
}

/// Runs a walk to its end for the blocks it reads, dropping what it yields.
async fn drain<T>(
    stream: impl futures::Stream<Item = Result<T, UnixfsError>>,
) -> Result<(), UnixfsError> {
    let mut stream = std::pin::pin!(stream);
    while let Some(item) = stream.next().await {
        item?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_bytes_parse_and_resolve() {
        let r = |s: &str, size| s.parse::<EntityBytes>().unwrap().resolve(size);
        assert_eq!(r("0:*", 100), 0..100);
        assert_eq!(r("0:9", 100), 0..10);
        assert_eq!(r("-10:*", 100), 90..100);
        assert_eq!(r("10:-10", 100), 10..91);
        assert_eq!(r("-1000:*", 100), 0..100);
        assert_eq!(r("200:300", 100), 100..100);
        assert_eq!(r("50:1000", 100), 50..100);
        for bad in ["", "1", "a:b", "5:2", "1:2:3", ":*", "1.5:*"] {
            assert!(bad.parse::<EntityBytes>().is_err(), "{bad}");
        }
        assert!("bogus".parse::<DagScope>().is_err());
        assert_eq!("entity".parse::<DagScope>().unwrap(), DagScope::Entity);
    }
}

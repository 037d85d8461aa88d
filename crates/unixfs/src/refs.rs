//! Kubo's `refs`: the links of one or more roots, or (`recursive`) of their whole DAGs, depth
//! first in link order, each printed through a `format` template.
//!
//! This follows Kubo's `RefWriter` (`core/commands/refs.go`): the root's children are at depth
//! 1; `max-depth` stops the descent (and `recursive: false` means `max-depth` 1); with `unique`
//! a CID is printed once, and is explored again only when met higher up than before under a
//! depth limit (so a depth-limited unique walk still reaches everything within the limit).
//! Every printed block is read first, as Kubo does, so a printed ref is retrievable.
//!
//! Memory: the path of frames from the root to the current block, each with that block's link
//! list; plus, with `unique`, the set of CIDs seen (one entry per distinct block).

use std::collections::HashMap;

use futures::Stream;
use futures::stream;

use crate::exporter::{DAG_PB, load};
use crate::{BlockSource, Cid, UnixfsError};

/// The options of Kubo's `refs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefsOptions {
    /// The line template: `<src>`, `<dst>` and `<linkname>` are replaced (Kubo's `--format`,
    /// default `<dst>`; `--edges` makes it `<src> -> <dst>`).
    pub format: String,
    /// Print each CID once (`--unique`).
    pub unique: bool,
    /// Stop descending below this depth; negative means no limit (`--max-depth`, default -1).
    pub max_depth: i64,
}

impl RefsOptions {
    /// Builds the options from Kubo's flags, with its checks and defaults.
    ///
    /// # Errors
    /// [`UnixfsError::InvalidArgument`] with Kubo's text `using format argument with edges is
    /// not allowed` when both `format` and `edges` are given.
    pub fn from_flags(
        format: Option<&str>,
        edges: bool,
        unique: bool,
        recursive: bool,
        max_depth: Option<i64>,
    ) -> Result<Self, UnixfsError> {
        let mut format = format.unwrap_or("<dst>").to_string();
        if edges {
            if format != "<dst>" {
                return Err(UnixfsError::InvalidArgument(
                    "using format argument with edges is not allowed".into(),
                ));
            }
            format = "<src> -> <dst>".into();
        }
        let max_depth = if recursive {
            max_depth.unwrap_or(-1)
        } else {
            1
        };
        Ok(RefsOptions {
            format,
            unique,
            max_depth,
        })
    }
}

/// A block's links with their names: dag-pb link names; other codecs' links have none
/// (dag-cbor links in encoding order); `raw` has no links.
///
/// # Errors
/// [`UnixfsError::InvalidBlock`] if the block does not decode, or its codec is one a DAG walk
/// cannot read.
pub fn named_links(cid: &Cid, data: &[u8]) -> Result<Vec<(Cid, String)>, UnixfsError> {
    let invalid = |reason: String| UnixfsError::InvalidBlock { cid: *cid, reason };
    if cid.codec() == DAG_PB {
        let node = ipld_dagpb::PbNode::from_bytes(bytes::Bytes::copy_from_slice(data))
            .map_err(|e| invalid(e.to_string()))?;
        return Ok(node
            .links
            .into_iter()
            .map(|l| (l.cid, l.name.unwrap_or_default()))
            .collect());
    }
    Ok(cairn_blockstore::codec::links(cid, data)
        .map_err(|e| invalid(e.to_string()))?
        .into_iter()
        .map(|c| (c, String::new()))
        .collect())
}

/// Which links to print and which to descend into.
struct RefWalk {
    opts: RefsOptions,
    seen: HashMap<Cid, i64>,
}

impl RefWalk {
    /// (go deeper, print) for a link at `depth`.
    fn visit(&mut self, cid: Cid, depth: i64) -> (bool, bool) {
        let max = self.opts.max_depth;
        let at_max = max >= 0 && depth == max;
        if max >= 0 && depth > max {
            return (false, false);
        }
        if !self.opts.unique {
            return (!at_max, true);
        }
        let old = self.seen.get(&cid).copied();
        if let Some(old) = old
            && (max < 0 || old <= depth)
        {
            return (false, false);
        }
        self.seen.insert(cid, depth);
        (!at_max, old.is_none())
    }

    fn line(&self, src: &Cid, dst: &Cid, name: &str) -> String {
        self.opts
            .format
            .replace("<src>", &src.to_string())
            .replace("<dst>", &dst.to_string())
            .replace("<linkname>", name)
    }
}

/// One level of the walk.
struct Frame {
    cid: Cid,
    links: std::vec::IntoIter<(Cid, String)>,
    depth: i64,
}

struct RefsState<'a, S: ?Sized> {
    src: &'a S,
    roots: std::vec::IntoIter<Cid>,
    walk: RefWalk,
    stack: Vec<Frame>,
}

impl<S: BlockSource + ?Sized> RefsState<'_, S> {
    async fn next(&mut self) -> Result<Option<String>, UnixfsError> {
        loop {
            let Some(frame) = self.stack.last_mut() else {
                let Some(root) = self.roots.next() else {
                    return Ok(None);
                };
                let block = load(self.src, &root).await?;
                self.stack.push(Frame {
                    cid: root,
                    links: named_links(&root, &block)?.into_iter(),
                    depth: 0,
                });
                continue;
            };
            let Some((link, name)) = frame.links.next() else {
                self.stack.pop();
                continue;
            };
            let (src, depth) = (frame.cid, frame.depth + 1);
            let (deeper, print) = self.walk.visit(link, depth);
            if !deeper && !print {
                continue;
            }
            let block = load(self.src, &link).await?;
            if deeper {
                self.stack.push(Frame {
                    cid: link,
                    links: named_links(&link, &block)?.into_iter(),
                    depth,
                });
            }
            if print {
                return Ok(Some(self.walk.line(&src, &link, &name)));
            }
        }
    }
}

/// `refs ROOT…`: a stream of formatted lines (without newline), root after root. Stops at the
/// first error, which is the stream's last item (Kubo ends the response with it).
pub fn refs<'a, S: BlockSource + ?Sized>(
    src: &'a S,
    roots: Vec<Cid>,
    opts: RefsOptions,
) -> impl Stream<Item = Result<String, UnixfsError>> + Send + 'a {
    let state = RefsState {
        src,
        roots: roots.into_iter(),
        walk: RefWalk {
            opts,
            seen: HashMap::new(),
        },
        stack: Vec::new(),
    };
    stream::unfold(Some(state), |state| async move {
        let mut state = state?;
        match state.next().await {
            Ok(Some(line)) => Some((Ok(line), Some(state))),
            Ok(None) => None,
            Err(e) => Some((Err(e), None)),
        }
    })
}

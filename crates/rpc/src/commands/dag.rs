//! Walking DAGs for commands that read them (`cat`, `refs`, `dag/export`): [`DagReader`] reads
//! blocks from the store and, unless the request is `offline`, from the network; `refs` and
//! `dag/export` themselves. Everything streams: a walk holds the current path of blocks and the
//! set of CIDs seen, never the data already sent.

use std::collections::HashSet;

use bytes::Bytes;
use cairn_blockstore::codec::DAG_PB;
use cairn_blockstore::{Block, Cid};
use cairn_node_core::{FetchOptions, Node, NodeError};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::{DEADLINE_EXCEEDED, parse_cid_arg};
use crate::error::ApiError;
use crate::request::{CommandRequest, fetch_options_for};
use crate::response::Output;
use crate::server::ApiState;

/// A node error met while reading blocks, in Kubo's words: the offline miss keeps the node's
/// text (Kubo's), a timeout is Go's `context deadline exceeded`.
pub(crate) fn fetch_error(e: NodeError) -> ApiError {
    match e {
        NodeError::Timeout(_) => ApiError::command(DEADLINE_EXCEEDED),
        other => other.into(),
    }
}

/// Aborts a background task when dropped, so a prefetch ends with the walk that started it.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Reads the blocks of one request's DAG walks, honouring its `offline` and `timeout` options.
///
/// A walk asks for one block at a time; over the network that would cost a round trip per block,
/// so the first block missing from the store starts [`Node::fetch_dag`] of the walk's root in the
/// background: its Bitswap session keeps a window of wants outstanding and stores what arrives,
/// and the walk finds the blocks there (or waits for them). Memory stays bounded: fetched blocks go
/// to the store, not to this reader. The prefetch stops when the reader is dropped.
pub(crate) struct DagReader {
    node: Node,
    offline: bool,
    deadline: Option<tokio::time::Instant>,
    root: Option<Cid>,
    /// Whether a miss starts a prefetch of the whole DAG (not for a walk that reads a part).
    whole: bool,
    prefetch: Option<AbortOnDrop>,
}

impl DagReader {
    /// A reader with the request's options.
    pub(crate) fn new(state: &ApiState, req: &CommandRequest) -> Self {
        DagReader {
            node: state.inner.node.clone(),
            offline: req.offline(),
            deadline: req.deadline(),
            root: None,
            whole: true,
            prefetch: None,
        }
    }

    /// Whether the walks read whole DAGs; a reader for a part (`cat` with a range) fetches only
    /// the blocks the walk reaches, one at a time, rather than prefetching everything.
    pub(crate) fn whole_dags(mut self, whole: bool) -> Self {
        self.whole = whole;
        self
    }

    /// Reads only the local store from now on (`dag/export`'s `local-only`).
    pub(crate) fn offline(mut self, offline: bool) -> Self {
        self.offline |= offline;
        self
    }

    /// Names the root of the DAG being walked, which a prefetch fetches.
    pub(crate) fn walking(&mut self, root: Cid) {
        if self.root != Some(root) {
            self.root = Some(root);
            self.prefetch = None;
        }
    }

    fn options(&self) -> FetchOptions {
        fetch_options_for(self.offline, self.deadline)
    }

    /// One block: from the store, else (online) from the network.
    pub(crate) async fn get(&mut self, cid: &Cid) -> Result<Block, ApiError> {
        if let Some(block) = self.node.local_block(cid).await? {
            return Ok(block);
        }
        if !self.offline
            && self.whole
            && self.prefetch.is_none()
            && let Some(root) = self.root
        {
            let mut fetch = self.node.fetch_dag(root, self.options());
            // The prefetch's own errors do not matter: the walk's fetch reports what it meets.
            self.prefetch = Some(AbortOnDrop(tokio::spawn(async move {
                while let Some(Ok(_)) = fetch.next().await {}
            })));
        }
        self.node
            .get_block_with(cid, self.options())
            .await
            .map_err(fetch_error)
    }
}

/// A block's links with their names (dag-pb link names; other codecs' links have none).
pub(crate) fn named_links(block: &Block) -> Result<Vec<(Cid, String)>, ApiError> {
    if block.cid().codec() == DAG_PB {
        let node = ipld_dagpb::PbNode::from_bytes(Bytes::copy_from_slice(block.data()))
            .map_err(|e| ApiError::command(format!("decoding {}: {e}", block.cid())))?;
        return Ok(node
            .links
            .into_iter()
            .map(|l| (l.cid, l.name.unwrap_or_default()))
            .collect());
    }
    Ok(cairn_blockstore::codec::links(block.cid(), block.data())?
        .into_iter()
        .map(|c| (c, String::new()))
        .collect())
}

/// The options of `refs`.
struct RefsOptions {
    format: String,
    unique: bool,
    max_depth: i64,
}

/// Kubo's `RefWriter`: which links to print and which to descend into. With `unique`, a CID is
/// printed once and explored again only when met higher up than before (under a depth limit).
struct RefWalk {
    opts: RefsOptions,
    seen: std::collections::HashMap<Cid, i64>,
}

impl RefWalk {
    /// (go deeper, print) for a link at `depth` (the root's children are at depth 1).
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

    fn line(&self, src: &Cid, dst: &Cid, name: &str) -> Value {
        let text = self
            .opts
            .format
            .replace("<src>", &src.to_string())
            .replace("<dst>", &dst.to_string())
            .replace("<linkname>", name);
        json!({"Ref": text, "Err": ""})
    }
}

/// One level of a depth-first walk: a block's links and the next one to visit.
struct Frame {
    cid: Cid,
    links: Vec<(Cid, String)>,
    next: usize,
    depth: i64,
}

/// `refs`: the links of each root (`recursive`: of the whole DAG, depth first, as Kubo orders
/// them), one `{"Ref","Err"}` line each, fetching blocks as the walk needs them.
pub(crate) async fn refs(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let roots = req
        .args_required("ipfs-path")?
        .iter()
        .map(|a| parse_cid_arg(a))
        .collect::<Result<Vec<_>, _>>()?;
    let edges = req.flag(&["edges", "e"], false)?;
    let mut format = req.opt(&["format"])?.unwrap_or("<dst>").to_string();
    if edges {
        if format != "<dst>" {
            return Err(ApiError::client(
                "using format argument with edges is not allowed",
            ));
        }
        format = "<src> -> <dst>".into();
    }
    let unique = req.flag(&["unique", "u"], false)?;
    let recursive = req.flag(&["recursive", "r"], false)?;
    let mut max_depth = req.int(&["max-depth"], -1)?;
    if !recursive {
        max_depth = 1;
    }
    // Only an unbounded walk reads the whole DAG; a depth-limited one (plain `refs`) would
    // fetch far more than it prints if it prefetched.
    let mut reader = DagReader::new(state, req).whole_dags(max_depth < 0);
    // The first root is read now, so a missing root is an error status, not a trailer.
    reader.walking(roots[0]);
    let first = reader.get(&roots[0]).await?;
    let mut walk = RefWalk {
        opts: RefsOptions {
            format,
            unique,
            max_depth,
        },
        seen: Default::default(),
    };
    let (tx, rx) = mpsc::channel::<Result<Value, ApiError>>(64);
    tokio::spawn(async move {
        let mut first = Some(first);
        for root in roots {
            reader.walking(root);
            let block = match first.take() {
                Some(b) => Ok(b),
                None => reader.get(&root).await,
            };
            let result = match block {
                Ok(b) => refs_of(&mut reader, &mut walk, b, &tx).await,
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                let _ = tx.send(Err(e)).await;
                return;
            }
        }
    });
    Ok(Output::Stream(receiver_stream(rx)))
}

/// Walks one root for `refs`; stops quietly when the client has gone.
async fn refs_of(
    reader: &mut DagReader,
    walk: &mut RefWalk,
    root: Block,
    tx: &mpsc::Sender<Result<Value, ApiError>>,
) -> Result<(), ApiError> {
    let mut stack = vec![Frame {
        cid: *root.cid(),
        links: named_links(&root)?,
        next: 0,
        depth: 0,
    }];
    while let Some(frame) = stack.last_mut() {
        let Some((link, name)) = frame.links.get(frame.next).cloned() else {
            stack.pop();
            continue;
        };
        frame.next += 1;
        let (src, depth) = (frame.cid, frame.depth + 1);
        let (deeper, print) = walk.visit(link, depth);
        if !deeper && !print {
            continue;
        }
        // Kubo reads every block it prints, so a printed ref is always retrievable.
        let block = reader.get(&link).await?;
        if print && tx.send(Ok(walk.line(&src, &link, &name))).await.is_err() {
            return Ok(());
        }
        if deeper {
            stack.push(Frame {
                cid: link,
                links: named_links(&block)?,
                next: 0,
                depth,
            });
        }
    }
    Ok(())
}

/// A channel's receiving end as a boxed stream.
pub(crate) fn receiver_stream<T: Send + 'static>(
    rx: mpsc::Receiver<T>,
) -> futures::stream::BoxStream<'static, T> {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|v| (v, rx)) }).boxed()
}

/// The CARv1 header: dag-cbor `{roots, version}` (fields in dag-cbor's canonical key order).
#[derive(serde::Serialize)]
struct CarHeader {
    roots: Vec<Cid>,
    version: u64,
}

/// An unsigned LEB128 varint, as CAR frames its header and sections.
fn varint(mut n: u64, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// A CAR section: varint(length of CID + data), the CID's bytes, the data.
fn car_section(block: &Block) -> Bytes {
    let cid = block.cid().to_bytes();
    let mut out = Vec::with_capacity(cid.len() + block.len() + 10);
    varint((cid.len() + block.len()) as u64, &mut out);
    out.extend_from_slice(&cid);
    out.extend_from_slice(block.data());
    Bytes::from(out)
}

/// `dag/export`: a CARv1 of the DAG under one root, blocks in depth-first first-seen order, as
/// Kubo writes it; streamed, each block read (or fetched) as the walk reaches it.
pub(crate) async fn export(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let root = parse_cid_arg(req.arg(0, "root")?)?;
    let _progress = req.flag(&["progress", "p"], false)?;
    let local_only = req.flag(&["local-only"], false)?;
    let mut reader = DagReader::new(state, req).offline(local_only);
    reader.walking(root);
    let first = reader.get(&root).await?;
    let header = serde_ipld_dagcbor::to_vec(&CarHeader {
        roots: vec![root],
        version: 1,
    })
    .map_err(ApiError::command)?;
    let mut head = Vec::with_capacity(header.len() + 2);
    varint(header.len() as u64, &mut head);
    head.extend_from_slice(&header);
    let (tx, rx) = mpsc::channel::<Result<Bytes, ApiError>>(8);
    tokio::spawn(async move {
        if tx.send(Ok(Bytes::from(head))).await.is_err() {
            return;
        }
        if let Err(e) = export_walk(&mut reader, first, &tx).await {
            let _ = tx.send(Err(e)).await;
        }
    });
    Ok(Output::Raw {
        content_type: "application/vnd.ipld.car",
        length: None,
        body: receiver_stream(rx),
    })
}

/// Sends the sections of a DAG depth first, each block once, at its first sighting. The stack
/// holds CIDs, not blocks: a block is read only when it is written, so memory is one block plus
/// the CIDs of the pending siblings along the current path.
async fn export_walk(
    reader: &mut DagReader,
    root: Block,
    tx: &mpsc::Sender<Result<Bytes, ApiError>>,
) -> Result<(), ApiError> {
    let mut seen = HashSet::new();
    let mut stack = vec![*root.cid()];
    let mut first = Some(root);
    while let Some(cid) = stack.pop() {
        // Checked when popped, not when pushed: a CID met again deeper in an earlier sibling's
        // subtree is written there, in true depth-first order.
        if !seen.insert(cid) {
            continue;
        }
        let block = match first.take() {
            Some(b) => b,
            None => reader.get(&cid).await?,
        };
        if tx.send(Ok(car_section(&block))).await.is_err() {
            return Ok(()); // the client went away
        }
        let links = cairn_blockstore::codec::links(block.cid(), block.data())?;
        stack.extend(links.into_iter().rev().filter(|l| !seen.contains(l)));
    }
    Ok(())
}

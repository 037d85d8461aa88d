//! `add` (files) and `cat`, on rust-unixfs, whose CIDs match Kubo's importer for the same options
//! (CIDv0, 256 KiB chunks, balanced DAGs of 174 links by default; CIDv1 with raw leaves).
//! Directories, trickle layouts, rabin/buzhash chunkers and inlining are not supported yet and are
//! refused with a clear error rather than producing CIDs Kubo would not.

use bytes::Bytes;
use cairn_blockstore::codec::{DAG_PB, RAW};
use cairn_blockstore::{Block, BlockstoreError, Cid, Code, PinMode};
use rust_unixfs::file::FileReadFailed;
use rust_unixfs::file::adder::{BalancedCollector, Chunker, FileAdder};
use rust_unixfs::file::visit::IdleFileVisit;
use serde_json::json;

use super::dag::{DagReader, receiver_stream};
use crate::error::ApiError;
use crate::request::{CommandRequest, multipart_error, parse_bool};
use crate::response::Output;
use crate::server::ApiState;

/// The most one `add` request may carry (Kubo sets no limit; this bounds a runaway upload).
const MAX_ADD: u64 = 16 << 30;

/// Verifies and writes a batch of imported blocks; returns their total size and notes the last
/// CID (the root, once the import has finished).
///
/// The node is told about each written block ([`cairn_node_core::Node::added`]: Bitswap serves
/// peers waiting for it, the provider queues it), except the batch's last block, which is held
/// in `held` until the next batch shows it was not the root: the root is told about with
/// `roots = true` by [`finish_added`], so the provider announces it first.
async fn store_blocks(
    state: &ApiState,
    store: &cairn_blockstore::Blockstore,
    pending: &mut Vec<(Cid, Vec<u8>)>,
    root: &mut Option<Cid>,
    held: &mut Option<Block>,
    only_hash: bool,
) -> Result<u64, ApiError> {
    let batch = std::mem::take(pending);
    let Some((last, _)) = batch.last() else {
        return Ok(0);
    };
    *root = Some(*last);
    let size = batch.iter().map(|(_, b)| b.len() as u64).sum();
    if !only_hash {
        let store = store.clone();
        let mut blocks = tokio::task::spawn_blocking(move || -> Result<_, BlockstoreError> {
            let blocks = batch
                .into_iter()
                .map(|(c, d)| Block::new(c, d))
                .collect::<Result<Vec<_>, _>>()?;
            // put_many takes the blocks; clones share their bytes.
            store.put_many(blocks.clone())?;
            Ok(blocks)
        })
        .await
        .map_err(ApiError::command)??;
        let last = blocks.pop();
        blocks.extend(held.take());
        *held = last;
        state
            .inner
            .node
            .added(&blocks.iter().collect::<Vec<_>>(), false);
    }
    Ok(size)
}

/// Tells the node about an import's root (see [`store_blocks`]).
fn finish_added(state: &ApiState, held: &mut Option<Block>) {
    if let Some(root) = held.take() {
        state.inner.node.added(&[&root], true);
    }
}

/// Kubo's largest chunk (`size-2096896`... its limit is 1 MiB + 1 KiB for the block to fit 2 MiB).
const MAX_CHUNK: usize = 1024 * 1024 + 1024;

fn unsupported(option: &str) -> ApiError {
    ApiError::client(format!(
        "option {option:?} is not supported by cairn's add yet"
    ))
}

pub(crate) async fn add(state: &ApiState, req: &mut CommandRequest) -> Result<Output, ApiError> {
    for option in [
        "wrap-with-directory",
        "w",
        "trickle",
        "t",
        "nocopy",
        "inline",
        "preserve-mode",
        "preserve-mtime",
    ] {
        if req.flag(&[option], false)? {
            return Err(unsupported(option));
        }
    }
    let hash = match req.opt(&["hash"])?.unwrap_or("sha2-256") {
        "sha2-256" => Code::Sha2_256,
        "sha2-512" => Code::Sha2_512,
        "sha3-256" => Code::Sha3_256,
        "sha3-512" => Code::Sha3_512,
        "blake2b-256" => Code::Blake2b256,
        "blake3" => Code::Blake3_256,
        other => {
            return Err(ApiError::client(format!(
                "unrecognized hash function: {other:?}"
            )));
        }
    };
    // A hash other than sha2-256 forces CIDv1, as in Kubo.
    let mut version = req.int(&["cid-version"], 0)?;
    if hash != Code::Sha2_256 {
        version = 1;
    }
    let version = match version {
        0 => cid::Version::V0,
        1 => cid::Version::V1,
        v => return Err(ApiError::client(format!("unknown CID version: {v}"))),
    };
    let raw_leaves = match req.opt(&["raw-leaves"])? {
        Some(v) => parse_bool(v).ok_or_else(|| {
            ApiError::bad_request(format!("could not convert value {v:?} to type bool"))
        })?,
        None => version == cid::Version::V1,
    };
    let chunk = match req.opt(&["chunker", "s"])?.unwrap_or("size-262144") {
        c if c.starts_with("size-") => c[5..]
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0 && *n <= MAX_CHUNK)
            .ok_or_else(|| {
                ApiError::client(format!(
                    "chunker {c:?}: the size must be between 1 and {MAX_CHUNK}"
                ))
            })?,
        other => {
            return Err(ApiError::client(format!(
                "chunker {other:?} is not supported by cairn yet (use size-N)"
            )));
        }
    };
    let max_links = req.int(&["max-file-links"], 174)?;
    if !(2..=8192).contains(&max_links) {
        return Err(ApiError::client(
            "max-file-links must be between 2 and 8192",
        ));
    }
    let pin = req.flag(&["pin"], true)?;
    let only_hash = req.flag(&["only-hash", "n"], false)?;
    let silent = req.flag(&["silent"], false)?;
    let progress = req.flag(&["progress", "p"], false)?;
    let _quiet = (
        req.flag(&["quiet", "q"], false)?,
        req.flag(&["quieter", "Q"], false)?,
    );
    let _pin_name = req.opt(&["pin-name"])?;
    let Some(mut multipart) = req.multipart(MAX_ADD, MAX_ADD) else {
        return Err(ApiError::bad_request("file argument 'path' is required"));
    };
    let store = state.inner.node.blockstore()?;
    // One guard for the whole import: GC cannot sweep blocks written before their root is pinned.
    let _guard = store.gc_guard();
    let mut lines = Vec::new();
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        if field.content_type().is_some_and(|t| {
            t.essence_str() == "application/x-directory" || t.type_() == "multipart"
        }) {
            return Err(ApiError::client(
                "adding directories is not supported by cairn yet",
            ));
        }
        let filename = field.file_name().map(String::from);
        let mut adder = FileAdder::builder()
            .with_cid_version(version)
            .with_raw_leaves(raw_leaves)
            .with_chunker(Chunker::Size(chunk))
            .with_collector(BalancedCollector::with_branching_factor(max_links as usize))
            .with_hasher(hash)
            .build();
        let mut pending: Vec<(Cid, Vec<u8>)> = Vec::new();
        let mut size = 0u64;
        let mut root = None;
        let mut held = None;
        while let Some(data) = field.chunk().await.map_err(multipart_error)? {
            let mut rest = &data[..];
            while !rest.is_empty() {
                let (emitted, consumed) = adder.push(rest);
                pending.extend(emitted);
                rest = &rest[consumed..];
            }
            if pending.len() >= 64 {
                size += store_blocks(state, &store, &mut pending, &mut root, &mut held, only_hash)
                    .await?;
            }
        }
        pending.extend(adder.finish());
        size += store_blocks(state, &store, &mut pending, &mut root, &mut held, only_hash).await?;
        finish_added(state, &mut held);
        // The root is the last block emitted overall (finish() may emit nothing).
        let root = root.ok_or_else(|| ApiError::command("the importer produced no blocks"))?;
        if pin && !only_hash {
            let s = store.clone();
            tokio::task::spawn_blocking(move || s.pin(&root, PinMode::Recursive))
                .await
                .map_err(ApiError::command)??;
        }
        let name = filename
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| root.to_string());
        if progress {
            lines.push(json!({"Name": name, "Bytes": size}));
        }
        if !silent {
            lines.push(json!({"Name": name, "Hash": root.to_string(), "Size": size.to_string()}));
        }
    }
    if lines.is_empty() && !silent {
        return Err(ApiError::bad_request("file argument 'path' is required"));
    }
    Ok(Output::stream_of(lines))
}

/// The size of the UnixFS file (or raw block) `root`, for `cat`'s range over several files.
/// A directory is Kubo's `this dag node is a directory`.
fn file_size(root: &Block) -> Result<u64, ApiError> {
    let cid = root.cid();
    if cid.codec() == RAW {
        return Ok(root.len() as u64);
    }
    if cid.codec() != DAG_PB {
        return Err(ApiError::command(format!("{cid} is not a UnixFS file")));
    }
    match IdleFileVisit::default().start(root.data()) {
        Ok((_, size, _, _)) => Ok(size),
        Err(FileReadFailed::UnexpectedType(t)) if t.is_directory() => {
            Err(ApiError::command("this dag node is a directory"))
        }
        Err(e) => Err(ApiError::command(format!(
            "{cid} is not a UnixFS file: {e}"
        ))),
    }
}

/// Which bytes of each file `cat` sends, as Kubo's `cat` computes them: `offset` and `length`
/// apply to the files joined end to end. Returns (file index, byte range in that file) for each
/// file that contributes, and the total length (Kubo's `X-Content-Length`). `length` < 0: no
/// limit.
fn cat_plan(sizes: &[u64], offset: u64, length: i64) -> (Vec<(usize, std::ops::Range<u64>)>, u64) {
    let mut plan = Vec::new();
    let mut total = 0u64;
    if length == 0 {
        return (plan, 0);
    }
    let mut offset = offset;
    for (i, &size) in sizes.iter().enumerate() {
        // Kubo's `offset > fsize`: a file the offset passes whole is skipped.
        if offset > size {
            offset -= size;
            continue;
        }
        let start = offset;
        offset = 0;
        let mut take = size - start;
        total += take;
        if length > 0 && total >= length as u64 {
            take -= total - length as u64;
            total = length as u64;
            plan.push((i, start..start + take));
            break;
        }
        plan.push((i, start..start + take));
    }
    (plan, total)
}

/// `cat`: the files at the given paths (`/ipfs/<cid>[/a/b]` or a CID), joined, with Kubo's
/// `offset` and `length` applied to the joined bytes. Every root is read (or fetched) before the
/// answer starts, so a missing root or a directory is an error status; a block missing later
/// ends the stream with an error (see [`crate::response`]).
pub(crate) async fn cat(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let args = req.args_required("ipfs-path")?;
    let offset = req.int(&["offset", "o"], 0)?;
    let length = req.int(&["length", "l"], -1)?;
    let _progress = req.flag(&["progress", "p"], false)?;
    if offset < 0 {
        return Err(ApiError::command("cannot specify negative offset"));
    }
    // Kubo refuses a negative length only when it is given: absent is "no limit".
    if req.opt(&["length", "l"])?.is_some() && length < 0 {
        return Err(ApiError::command("cannot specify negative length"));
    }
    let whole = offset == 0 && length < 0;
    let mut roots = Vec::with_capacity(args.len());
    if length != 0 {
        // Kubo reads nothing at all for `length=0`.
        let mut resolver = DagReader::new(state, req).whole_dags(false);
        for arg in args {
            let resolved = super::resolve::resolve_path(&mut resolver, arg).await?;
            if !resolved.remainder.is_empty() {
                return Err(ApiError::command(format!(
                    "{arg} does not resolve to a UnixFS file"
                )));
            }
            resolver.walking(resolved.cid);
            let root = resolver.get(&resolved.cid).await?;
            roots.push(root);
        }
    }
    let sizes = roots.iter().map(file_size).collect::<Result<Vec<_>, _>>()?;
    let (plan, total) = cat_plan(&sizes, offset as u64, length);
    // A range reads part of the files: no prefetch of the rest.
    let mut reader = DagReader::new(state, req).whole_dags(whole);
    let mut roots: Vec<Option<Block>> = roots.into_iter().map(Some).collect();
    // A small channel: the walk reads (or fetches) a block only when the client has taken the
    // bytes before it, so memory stays a few blocks whatever the file's size.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, ApiError>>(8);
    tokio::spawn(async move {
        for (i, range) in plan {
            let Some(root) = roots.get_mut(i).and_then(Option::take) else {
                continue;
            };
            if range.is_empty() {
                continue;
            }
            reader.walking(*root.cid());
            if let Err(e) = walk_file(&mut reader, root, range, &tx).await {
                let _ = tx.send(Err(e)).await;
                return;
            }
        }
    });
    Ok(Output::Raw {
        content_type: "text/plain",
        length: Some(total),
        body: receiver_stream(rx),
    })
}

/// Sends a file's bytes in order, reading (or fetching) each block as the walk reaches it.
/// Returns early, without error, when the client has gone.
async fn walk_file(
    reader: &mut DagReader,
    root: Block,
    range: std::ops::Range<u64>,
    tx: &tokio::sync::mpsc::Sender<Result<Bytes, ApiError>>,
) -> Result<(), ApiError> {
    let cid = *root.cid();
    let visit = IdleFileVisit::default().with_target_range(range);
    let (content, mut next) = if cid.codec() == RAW {
        let (content, _size, _meta, next) = visit.start_from_raw(root.data());
        (Bytes::copy_from_slice(content), next)
    } else {
        let (content, _size, _meta, next) = visit
            .start(root.data())
            .map_err(|e| ApiError::command(format!("{cid} is not a UnixFS file: {e}")))?;
        (Bytes::copy_from_slice(content), next)
    };
    if !content.is_empty() && tx.send(Ok(content)).await.is_err() {
        return Ok(());
    }
    let mut cache = None;
    while let Some(walk) = next {
        let link = *walk.pending_links().0;
        let block = reader.get(&link).await?;
        let (content, rest) = walk
            .continue_walk(block.data(), &mut cache)
            .map_err(|e| ApiError::command(format!("reading {cid}: {e}")))?;
        let content = Bytes::copy_from_slice(content);
        next = rest;
        if !content.is_empty() && tx.send(Ok(content)).await.is_err() {
            return Ok(()); // the client went away
        }
    }
    Ok(())
}

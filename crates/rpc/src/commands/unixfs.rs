//! `add` (files) and `cat`, on rust-unixfs, whose CIDs match Kubo's importer for the same options
//! (CIDv0, 256 KiB chunks, balanced DAGs of 174 links by default; CIDv1 with raw leaves).
//! Directories, trickle layouts, rabin/buzhash chunkers and inlining are not supported yet and are
//! refused with a clear error rather than producing CIDs Kubo would not.

use bytes::Bytes;
use cairn_blockstore::codec::{DAG_PB, RAW};
use cairn_blockstore::{Block, BlockstoreError, Cid, Code, PinMode};
use futures::StreamExt;
use rust_unixfs::file::adder::{BalancedCollector, Chunker, FileAdder};
use rust_unixfs::file::visit::IdleFileVisit;
use serde_json::json;

use super::parse_cid_arg;
use crate::error::ApiError;
use crate::request::{CommandRequest, multipart_error, parse_bool};
use crate::response::Output;
use crate::server::ApiState;

/// The most one `add` request may carry (Kubo sets no limit; this bounds a runaway upload).
const MAX_ADD: u64 = 16 << 30;

/// Verifies and writes a batch of imported blocks; returns their total size and notes the last
/// CID (the root, once the import has finished).
async fn store_blocks(
    store: &cairn_blockstore::Blockstore,
    pending: &mut Vec<(Cid, Vec<u8>)>,
    root: &mut Option<Cid>,
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
        tokio::task::spawn_blocking(move || -> Result<(), BlockstoreError> {
            let blocks = batch
                .into_iter()
                .map(|(c, d)| Block::new(c, d))
                .collect::<Result<Vec<_>, _>>()?;
            store.put_many(blocks).map(|_| ())
        })
        .await
        .map_err(ApiError::command)??;
    }
    Ok(size)
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
        while let Some(data) = field.chunk().await.map_err(multipart_error)? {
            let mut rest = &data[..];
            while !rest.is_empty() {
                let (emitted, consumed) = adder.push(rest);
                pending.extend(emitted);
                rest = &rest[consumed..];
            }
            if pending.len() >= 64 {
                size += store_blocks(&store, &mut pending, &mut root, only_hash).await?;
            }
        }
        pending.extend(adder.finish());
        size += store_blocks(&store, &mut pending, &mut root, only_hash).await?;
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

pub(crate) async fn cat(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let cids = req
        .args_required("ipfs-path")?
        .iter()
        .map(|a| parse_cid_arg(a))
        .collect::<Result<Vec<_>, _>>()?;
    let offset = req.int(&["offset", "o"], 0)?;
    let length = req.int(&["length", "l"], -1)?;
    if offset < 0 {
        return Err(ApiError::client("cannot specify negative offset"));
    }
    let store = state.inner.node.blockstore()?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, ApiError>>(8);
    // Check the first root now, so a missing or non-file root is an error, not an empty stream.
    for cid in &cids {
        let s = store.clone();
        let c = *cid;
        let root = tokio::task::spawn_blocking(move || s.get(&c))
            .await
            .map_err(ApiError::command)??;
        let Some(root) = root else {
            return Err(ApiError::command(format!(
                "block was not found locally (offline): ipld: could not find {cid}"
            )));
        };
        if root.cid().codec() != RAW && root.cid().codec() != DAG_PB {
            return Err(ApiError::command(format!("{cid} is not a UnixFS file")));
        }
    }
    let range = offset as u64..if length < 0 {
        u64::MAX
    } else {
        offset as u64 + length as u64
    };
    tokio::task::spawn_blocking(move || {
        for cid in cids {
            if let Err(e) = walk_file(&store, &cid, range.clone(), &tx) {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        }
    });
    let body =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|v| (v, rx)) });
    Ok(Output::Raw {
        content_type: "text/plain",
        body: body.boxed(),
    })
}

/// Sends a file's bytes in order, fetching each block from the store as the walk needs it.
fn walk_file(
    store: &cairn_blockstore::Blockstore,
    cid: &Cid,
    range: std::ops::Range<u64>,
    tx: &tokio::sync::mpsc::Sender<Result<Bytes, ApiError>>,
) -> Result<(), ApiError> {
    let missing = |c: &Cid| {
        ApiError::command(format!(
            "block was not found locally (offline): ipld: could not find {c}"
        ))
    };
    let root = store.get(cid)?.ok_or_else(|| missing(cid))?;
    let visit = IdleFileVisit::default().with_target_range(range);
    let (content, _size, _meta, mut next) = if cid.codec() == RAW {
        visit.start_from_raw(root.data())
    } else {
        visit
            .start(root.data())
            .map_err(|e| ApiError::command(format!("{cid} is not a UnixFS file: {e}")))?
    };
    if !content.is_empty()
        && tx
            .blocking_send(Ok(Bytes::copy_from_slice(content)))
            .is_err()
    {
        return Ok(());
    }
    let mut cache = None;
    while let Some(walk) = next {
        let (link, _) = walk.pending_links();
        let link = *link;
        let block = store.get(&link)?.ok_or_else(|| missing(&link))?;
        let (content, rest) = walk
            .continue_walk(block.data(), &mut cache)
            .map_err(|e| ApiError::command(format!("reading {cid}: {e}")))?;
        if !content.is_empty()
            && tx
                .blocking_send(Ok(Bytes::copy_from_slice(content)))
                .is_err()
        {
            return Ok(()); // the client went away
        }
        next = rest;
    }
    Ok(())
}

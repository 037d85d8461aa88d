//! `cat`: the bytes of UnixFS files, streamed as the DAG walk reaches them.

use bytes::Bytes;
use cairn_blockstore::Block;
use cairn_blockstore::codec::{DAG_PB, RAW};
use rust_unixfs::file::visit::IdleFileVisit;

use super::dag::{DagReader, receiver_stream};
use super::parse_cid_arg;
use crate::error::ApiError;
use crate::request::CommandRequest;
use crate::response::Output;
use crate::server::ApiState;

pub(crate) async fn cat(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let cids = req
        .args_required("ipfs-path")?
        .iter()
        .map(|a| parse_cid_arg(a))
        .collect::<Result<Vec<_>, _>>()?;
    let offset = req.int(&["offset", "o"], 0)?;
    let length = req.int(&["length", "l"], -1)?;
    let _progress = req.flag(&["progress", "p"], false)?;
    if offset < 0 {
        return Err(ApiError::client("cannot specify negative offset"));
    }
    // A range reads part of the file: no prefetch of the rest.
    let mut reader = DagReader::new(state, req).whole_dags(offset == 0 && length < 0);
    // Read the first root now, so a missing (offline) or non-file root is an error status, not
    // an empty stream with a trailer.
    reader.walking(cids[0]);
    let first = reader.get(&cids[0]).await?;
    if first.cid().codec() != RAW && first.cid().codec() != DAG_PB {
        return Err(ApiError::command(format!(
            "{} is not a UnixFS file",
            first.cid()
        )));
    }
    let range = offset as u64..if length < 0 {
        u64::MAX
    } else {
        offset as u64 + length as u64
    };
    // A small channel: the walk reads (or fetches) a block only when the client has taken the
    // bytes before it, so memory stays a few blocks whatever the file's size.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, ApiError>>(8);
    tokio::spawn(async move {
        let mut first = Some(first);
        for cid in cids {
            reader.walking(cid);
            let root = match first.take() {
                Some(b) => Ok(b),
                None => reader.get(&cid).await,
            };
            let sent = match root {
                Ok(root) => walk_file(&mut reader, root, range.clone(), &tx).await,
                Err(e) => Err(e),
            };
            if let Err(e) = sent {
                let _ = tx.send(Err(e)).await;
                return;
            }
        }
    });
    Ok(Output::Raw {
        content_type: "text/plain",
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

//! `cat`: the bytes of UnixFS files through [`cairn_node_core::Node::cat`], joined, with Kubo's
//! `offset` and `length` applied to the joined bytes.

use futures::{StreamExt, TryStreamExt};

use super::files::node_error;
use crate::error::ApiError;
use crate::request::CommandRequest;
use crate::response::Output;
use crate::server::ApiState;

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
    let args = req.args_required("ipfs-path")?.to_vec();
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
    let node = state.inner.node.clone();
    let opts = req.fetch_options();
    let mut sizes = Vec::with_capacity(args.len());
    if length != 0 {
        // Kubo reads nothing at all for `length=0`. Each root is read here (its size, and an
        // error status for a missing root or a directory); the bytes are read when streamed.
        for arg in &args {
            let (size, _) = node.cat(arg, 0, Some(0), opts).await.map_err(node_error)?;
            sizes.push(size);
        }
    }
    let (plan, total) = cat_plan(&sizes, offset as u64, length);
    let body = futures::stream::iter(plan)
        .filter(|(_, range)| std::future::ready(!range.is_empty()))
        .then(move |(i, range)| {
            let (node, path, size) = (node.clone(), args[i].clone(), sizes[i]);
            async move {
                // The whole file reads with a prefetch of its DAG; a part reads only its blocks.
                let length = (range != (0..size)).then(|| range.end - range.start);
                let (_, stream) = node
                    .cat(&path, range.start, length, opts)
                    .await
                    .map_err(node_error)?;
                Ok::<_, ApiError>(stream.map_err(node_error))
            }
        })
        .try_flatten()
        .boxed();
    Ok(Output::Raw {
        content_type: "text/plain",
        length: Some(total),
        body,
    })
}

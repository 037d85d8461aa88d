//! `block/put`, `block/get`, `block/stat`, `block/rm`.

use bytes::Bytes;
use cairn_blockstore::codec::{DAG_CBOR, DAG_PB, RAW, codec_from_name};
use cairn_blockstore::{Block, BlockstoreError, Cid, Code};
use cairn_node_core::Node;
use multihash::Multihash;
use multihash_codetable::MultihashDigest;
use serde_json::{Value, json};

use tokio::sync::mpsc;

use super::dag::fetch_error;
use super::parse_cid_arg;
use crate::error::ApiError;
use crate::request::{CommandRequest, MAX_PART, multipart_error};
use crate::response::Output;
use crate::server::ApiState;

/// Blocks over this size are refused unless `allow-big-block`: Kubo's `SoftBlockLimit`, 2 MiB,
/// the largest block the Bitswap spec makes peers accept.
pub const BIG_BLOCK: usize = 2 * 1024 * 1024;

/// The most one `block/put` request may carry in all (its parts are handled one at a time, so
/// memory is bounded by [`MAX_PART`], not by this).
const MAX_PUT_BODY: u64 = 16 << 30;

enum Hash {
    Identity,
    Code(Code),
}

fn hash_by_name(name: &str) -> Result<Hash, ApiError> {
    Ok(Hash::Code(match name {
        "identity" => return Ok(Hash::Identity),
        "sha2-256" => Code::Sha2_256,
        "sha2-512" => Code::Sha2_512,
        "sha3-224" => Code::Sha3_224,
        "sha3-256" => Code::Sha3_256,
        "sha3-384" => Code::Sha3_384,
        "sha3-512" => Code::Sha3_512,
        "keccak-224" => Code::Keccak224,
        "keccak-256" => Code::Keccak256,
        "keccak-384" => Code::Keccak384,
        "keccak-512" => Code::Keccak512,
        "blake2b-256" => Code::Blake2b256,
        "blake2b-512" => Code::Blake2b512,
        "blake3" => Code::Blake3_256,
        other => {
            // Kubo's words (`block put`), with its error code (a run error: 500).
            return Err(ApiError::command(format!(
                "unrecognized multihash function: {other}"
            )));
        }
    }))
}

pub(crate) async fn put(state: &ApiState, req: &mut CommandRequest) -> Result<Output, ApiError> {
    let cid_codec = req.opt(&["cid-codec"])?.map(String::from);
    let format = req.opt(&["format", "f"])?.map(String::from);
    let hash = hash_by_name(req.opt(&["mhtype"])?.unwrap_or("sha2-256"))?;
    let mhlen = req.int(&["mhlen"], -1)?;
    let pin = req.flag(&["pin"], false)?;
    let allow_big = req.flag(&["allow-big-block"], false)?;
    let (codec, v0) = match (cid_codec.as_deref(), format.as_deref()) {
        (Some(c), Some(_)) if c != "raw" => {
            return Err(ApiError::client(
                "unable to use \"format\" (deprecated) and a custom \"cid-codec\" at the same time",
            ));
        }
        (_, Some("v0")) | (_, Some("protobuf")) => (DAG_PB, true),
        (_, Some("cbor")) => (DAG_CBOR, false),
        (_, Some(f)) => (codec_from_name(f)?, false),
        (Some(c), None) => (codec_from_name(c)?, false),
        (None, None) => (RAW, false),
    };
    let Some(mut multipart) = req.multipart(MAX_PUT_BODY, MAX_PART) else {
        return Err(ApiError::bad_request("file argument 'data' is required"));
    };
    let node = state.inner.node.clone();
    // Each part is read, stored and answered before the next is read: one request may carry a
    // whole DAG (IPFS Cluster's `BlockStream` sends every block of an import in one body) in the
    // memory of one part.
    let (tx, rx) = mpsc::channel::<Result<Value, ApiError>>(16);
    super::spawn_producer(tx, |tx| async move {
        let mut any = false;
        loop {
            let field = match multipart.next_field().await {
                Ok(Some(field)) => field,
                Ok(None) => break,
                Err(e) => {
                    let _ = tx.send(Err(multipart_error(e))).await;
                    return;
                }
            };
            any = true;
            // Kubo's `files.FileFromEntry` is nil for a directory part.
            if field.content_type().is_some_and(|t| {
                t.essence_str() == "application/x-directory" || t.type_() == "multipart"
            }) {
                let _ = tx.send(Err(ApiError::command("expected a file"))).await;
                return;
            }
            let outcome = match field.bytes().await {
                Err(e) => Err(multipart_error(e)),
                Ok(data) => match make_block(data, codec, v0, &hash, mhlen, allow_big) {
                    Err(e) => Err(e),
                    Ok(block) => store_block(&node, block, pin).await,
                },
            };
            let failed = outcome.is_err();
            if tx.send(outcome).await.is_err() || failed {
                return;
            }
        }
        if !any {
            let _ = tx
                .send(Err(ApiError::bad_request(
                    "file argument 'data' is required",
                )))
                .await;
        }
    });
    // The first block decides the status, as in Kubo: an error before any output is an error
    // answer; after it, the stream's error (see `crate::response`).
    super::stream_from_first(rx).await
}

/// Stores one `block/put` block through the node (and pins it with `pin`); Kubo's
/// `{"Key","Size"}` line.
async fn store_block(node: &Node, block: Block, pin: bool) -> Result<Value, ApiError> {
    node.put_block_pinned(&block, pin).await?;
    Ok(json!({"Key": block.cid().to_string(), "Size": block.len()}))
}

fn make_block(
    data: Bytes,
    codec: u64,
    v0: bool,
    hash: &Hash,
    mhlen: i64,
    allow_big: bool,
) -> Result<Block, ApiError> {
    if data.len() > BIG_BLOCK && !allow_big {
        // Kubo's `CheckBlockSize` text; a run error (500), as in Kubo.
        return Err(ApiError::command(
            "produced block is over 2MiB: big blocks can't be exchanged with other peers. consider using UnixFS \
             for automatic chunking of bigger files, or pass --allow-big-block to override",
        ));
    }
    let full: Multihash<64> = match hash {
        Hash::Identity => Multihash::wrap(0, &data).map_err(|_| {
            ApiError::client("identity hash of more than 64 bytes is not supported")
        })?,
        Hash::Code(code) => code.digest(&data),
    };
    let mh = match mhlen {
        -1 => full,
        n if n < 0 || n as u8 as i64 != n || n as u8 > full.size() => {
            return Err(ApiError::client(format!(
                "mhlen {n} is out of range for this hash (max {})",
                full.size()
            )));
        }
        n => full.truncate(n as u8),
    };
    let cid = if v0 {
        if mh.code() != 0x12 || mh.size() != 32 {
            return Err(ApiError::client(
                "CIDv0 (format=v0) requires a full sha2-256 hash",
            ));
        }
        Cid::new_v0(mh).map_err(|e| ApiError::client(e.to_string()))?
    } else {
        Cid::new_v1(codec, mh)
    };
    Ok(Block::new(cid, data)?)
}

/// `block/get`: the block from the store, else (unless `offline`) from the network.
pub(crate) async fn get(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let cid = parse_cid_arg(req.arg(0, "cid")?)?;
    // A stored block is a lookup of microseconds: read in place, as before Bitswap; a hop to the
    // blocking pool would cost several context switches per request (measured: it halved
    // block/get throughput). Only a miss goes through the node, which fetches.
    let block = match state.inner.node.blockstore()?.get(&cid)? {
        Some(b) => b,
        None => state
            .inner
            .node
            .get_block_with(&cid, req.fetch_options())
            .await
            .map_err(fetch_error)?,
    };
    state.inner.metrics.block_gets.inc();
    state
        .inner
        .metrics
        .block_get_bytes
        .inc_by(block.len() as u64);
    let (_, data) = block.into_parts();
    // The block is in hand: sent whole, with a length.
    Ok(Output::Bytes {
        content_type: "application/vnd.ipld.raw",
        data,
    })
}

/// `block/stat`: Kubo reads (and so fetches) the block to report its size.
pub(crate) async fn stat(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let cid = parse_cid_arg(req.arg(0, "cid")?)?;
    let block = state
        .inner
        .node
        .get_block_with(&cid, req.fetch_options())
        .await
        .map_err(fetch_error)?;
    Ok(Output::Once(
        json!({"Key": cid.to_string(), "Size": block.len()}),
    ))
}

pub(crate) async fn rm(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let force = req.flag(&["force", "f"], false)?;
    let quiet = req.flag(&["quiet", "q"], false)?;
    let cids = req
        .args_required("cid")?
        .iter()
        .map(|a| parse_cid_arg(a))
        .collect::<Result<Vec<_>, _>>()?;
    let mut lines = Vec::new();
    for cid in cids {
        let line = match state.inner.node.remove_block(&cid).await {
            Ok(true) => (!quiet).then(|| json!({"Hash": cid.to_string()})),
            Ok(false) if force => None,
            Ok(false) => Some(
                json!({"Hash": cid.to_string(), "Error": format!("ipld: could not find {cid}")}),
            ),
            Err(cairn_node_core::NodeError::Blockstore(BlockstoreError::Pinned {
                why, ..
            })) => Some(json!({"Hash": cid.to_string(), "Error": why})),
            Err(e) => Some(json!({"Hash": cid.to_string(), "Error": e.to_string()})),
        };
        lines.extend(line);
    }
    Ok(Output::stream_of(lines))
}

//! Path resolution (`/ipfs/<cid>/a/b`) and the `resolve` command.
//!
//! Kubo resolves a content path segment by segment (boxo's `path/resolver`): through a dag-pb
//! node by link name, through a dag-cbor node by map key or list index, following links from
//! block to block. A path that ends inside a dag-cbor node, on a value that is not a link,
//! resolves to that node's CID plus the remaining segments. HAMT-sharded directories and IPNS
//! names are not supported yet.

use bytes::Bytes;
use cairn_blockstore::Cid;
use cairn_blockstore::codec::{DAG_CBOR, DAG_PB};
use ipld_core::ipld::Ipld;
use serde_json::json;

use super::dag::DagReader;
use crate::error::ApiError;
use crate::request::CommandRequest;
use crate::response::Output;
use crate::server::ApiState;

/// The longest path accepted, in segments: a bound on the work one request can ask for.
const MAX_SEGMENTS: usize = 1024;

/// A resolved path: the CID of the last block reached and the segments left inside it (empty
/// unless the path ends on a non-link value inside a dag-cbor node).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resolved {
    /// The last block reached.
    pub cid: Cid,
    /// Segments that name a value inside that block.
    pub remainder: Vec<String>,
}

/// Splits a path argument into its root CID and segments. Accepts `/ipfs/<cid>/...` and, as
/// Kubo's `PathOrCidPath` does, a bare `<cid>/...`.
fn split_path(arg: &str) -> Result<(Cid, Vec<String>), ApiError> {
    if arg.starts_with("/ipns/") {
        return Err(ApiError::client(format!(
            "cannot resolve {arg:?}: IPNS names are not supported by cairn"
        )));
    }
    let text = arg.strip_prefix("/ipfs/").unwrap_or(arg);
    let mut segments = text.split('/');
    let root = segments.next().unwrap_or_default();
    let cid = cairn_blockstore::parse_cid_str(root).map_err(|e| ApiError::client(e.to_string()))?;
    // Empty segments (`a//b`, a trailing slash) are dropped, as Go's path.Clean drops them.
    let segments: Vec<String> = segments
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    if segments.len() > MAX_SEGMENTS {
        return Err(ApiError::client(format!(
            "path has more than {MAX_SEGMENTS} segments"
        )));
    }
    Ok((cid, segments))
}

/// boxo's `ErrNoLink` text.
fn no_link(name: &str, under: &Cid) -> ApiError {
    ApiError::command(format!("no link named {name:?} under {under}"))
}

/// Resolves a path argument, reading (or, unless `offline`, fetching) each block it crosses.
///
/// Errors: a bad CID or an IPNS path (client errors); a missing link (`no link named "x" under
/// <cid>`, as boxo); a block that cannot be read (the reader's error); a path into a block of
/// another codec (`cannot resolve path segment "x" through a <codec> block`).
pub(crate) async fn resolve_path(reader: &mut DagReader, arg: &str) -> Result<Resolved, ApiError> {
    let (mut cid, segments) = split_path(arg)?;
    let mut rest = segments.as_slice();
    while let Some(first) = rest.first() {
        let block = reader.get(&cid).await?;
        match cid.codec() {
            DAG_PB => {
                let node = ipld_dagpb::PbNode::from_bytes(Bytes::copy_from_slice(block.data()))
                    .map_err(|e| ApiError::command(format!("decoding {cid}: {e}")))?;
                // The first link of that name, as go-merkledag's GetLinkedNode finds it.
                let link = node
                    .links
                    .iter()
                    .find(|l| l.name.as_deref() == Some(first.as_str()))
                    .ok_or_else(|| no_link(first, &cid))?;
                cid = link.cid;
                rest = &rest[1..];
            }
            DAG_CBOR => {
                let mut value: Ipld = serde_ipld_dagcbor::from_slice(block.data())
                    .map_err(|e| ApiError::command(format!("decoding {cid}: {e}")))?;
                let mut used = 0;
                loop {
                    let Some(segment) = rest.get(used) else {
                        // The path ends on a value inside this node.
                        return Ok(Resolved {
                            cid,
                            remainder: rest.to_vec(),
                        });
                    };
                    let next = match value {
                        Ipld::Map(mut map) => map.remove(segment.as_str()),
                        Ipld::List(mut list) => segment
                            .parse::<usize>()
                            .ok()
                            .filter(|i| *i < list.len())
                            .map(|i| list.swap_remove(i)),
                        _ => None,
                    };
                    value = next.ok_or_else(|| no_link(segment, &cid))?;
                    used += 1;
                    if let Ipld::Link(link) = value {
                        cid = link;
                        rest = &rest[used..];
                        break;
                    }
                }
            }
            codec => {
                return Err(ApiError::command(format!(
                    "cannot resolve path segment {first:?} through {cid}: its codec {codec:#x} has no paths"
                )));
            }
        }
    }
    Ok(Resolved {
        cid,
        remainder: Vec::new(),
    })
}

/// `resolve`: Kubo's `{"Path":"/ipfs/<cid>[/remainder]"}` for a content path. The `recursive`
/// and DHT options only concern IPNS, which cairn does not support; they are accepted.
pub(crate) async fn resolve(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let arg = req.arg(0, "name")?;
    let _recursive = req.flag(&["recursive", "r"], true)?;
    let _ = (
        req.opt(&["dht-record-count", "dhtrc"])?,
        req.opt(&["dht-timeout", "dhtt"])?,
    );
    // Only the blocks on the path are read: no prefetch of whole DAGs.
    let mut reader = DagReader::new(state, req).whole_dags(false);
    let resolved = resolve_path(&mut reader, arg).await?;
    let mut path = format!("/ipfs/{}", resolved.cid);
    for segment in &resolved.remainder {
        path.push('/');
        path.push_str(segment);
    }
    Ok(Output::Once(json!({ "Path": path })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_like_kubo() {
        let cid = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy";
        let (c, s) = split_path(&format!("/ipfs/{cid}/a//b/")).unwrap();
        assert_eq!(c.to_string(), cid);
        assert_eq!(s, ["a", "b"]);
        let (_, s) = split_path(&format!("{cid}/x")).unwrap();
        assert_eq!(s, ["x"]);
        assert!(split_path("/ipns/example.com").is_err());
        assert!(split_path("/ipfs/notacid/a").is_err());
        let long = format!("{cid}{}", "/a".repeat(MAX_SEGMENTS + 1));
        assert!(split_path(&long).is_err());
    }
}

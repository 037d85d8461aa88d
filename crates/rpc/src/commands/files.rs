//! Kubo's file and DAG reading commands on [`cairn_node_core::Node`]: `get`, `ls`, `dag/get`,
//! `dag/put`, `dag/stat`, `dag/resolve`, `dag/import` and `refs/local`. Each parses Kubo's
//! options and output shapes and calls the node; none reads the blockstore itself.

use bytes::Bytes;
use cairn_blockstore::PinMode;
use cairn_node_core::NodeError;
use cairn_node_core::unixfs::codec::codec_from_name;
use cairn_node_core::unixfs::tar::GetOptions;
use futures::{StreamExt, TryStreamExt};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::request::{CommandRequest, multipart_error};
use crate::response::Output;
use crate::server::ApiState;

/// The most one `dag/import` request may carry (CARs are streamed into the store, so this only
/// bounds a runaway upload, as `add`'s limit does).
const MAX_IMPORT: u64 = 16 << 30;

pub(crate) use super::dag::fetch_error as node_error;

/// The path argument: `/ipfs/CID/...`, `/ipld/CID/...` or a bare `CID/...`.
fn path_arg<'a>(req: &'a CommandRequest, name: &str) -> Result<&'a str, ApiError> {
    req.arg(0, name)
}

/// `get`: a tar stream (gzip with `compress`) of the file or directory, as Kubo's body is; the
/// CLI unpacks it unless `archive` is set.
pub(crate) async fn get(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let path = path_arg(req, "ipfs-path")?;
    let archive = req.flag(&["archive", "a"], false)?;
    let compress = req.flag(&["compress", "C"], false)?;
    let level = req.opt(&["compression-level", "l"])?;
    // As Kubo's getCompressOptions: a level counts only with `compress`, and must be 1-9 then.
    let compression = match (compress, level) {
        (false, _) => None,
        (true, None) => Some(6),
        (true, Some(l)) => match l.parse::<u32>() {
            Ok(l @ 1..=9) => Some(l),
            _ => {
                return Err(ApiError::client(
                    "compression level must be between 1 and 9",
                ));
            }
        },
    };
    let mtime = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let body = state
        .inner
        .node
        .get(
            path,
            GetOptions {
                archive,
                compression,
                mtime,
            },
            req.fetch_options(),
        )
        .await
        .map_err(node_error)?;
    Ok(Output::Raw {
        content_type: "application/x-tar",
        length: None,
        body: body.map_err(node_error).boxed(),
    })
}

/// One `ls` link object as Kubo prints it.
fn ls_link(entry: &cairn_node_core::unixfs::exporter::DirEntry, sizes: bool) -> Value {
    use cairn_node_core::unixfs::exporter::NodeKind;
    let target = match &entry.kind {
        Some(NodeKind::Symlink { target }) => target.clone(),
        _ => String::new(),
    };
    json!({
        "Name": entry.name,
        "Hash": entry.cid.to_string(),
        "Size": if sizes { entry.size() } else { 0 },
        "Type": entry.kind.as_ref().map(|k| k.kubo_type()).unwrap_or(0),
        "Target": target,
    })
}

/// `ls`: the links of each directory argument, `{"Objects":[{"Hash","Links":[...]}]}`; with
/// `stream`, one object per link as it is read.
pub(crate) async fn ls(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let paths = req.args_required("ipfs-path")?.to_vec();
    let resolve_type = req.flag(&["resolve-type"], true)?;
    let sizes = req.flag(&["size"], true)?;
    let stream = req.flag(&["stream", "s"], false)?;
    let node = state.inner.node.clone();
    let opts = req.fetch_options();
    if stream {
        let out = futures::stream::iter(paths)
            .then(move |path| {
                let node = node.clone();
                async move {
                    let (_, entries) = node
                        .ls(&path, resolve_type || sizes, opts)
                        .await
                        .map_err(node_error)?;
                    Ok::<_, ApiError>(entries.map(move |e| {
                        e.map(
                            |e| json!({"Objects": [{"Hash": path, "Links": [ls_link(&e, sizes)]}]}),
                        )
                        .map_err(node_error)
                    }))
                }
            })
            .try_flatten()
            .boxed();
        return Ok(Output::Stream(out));
    }
    let mut objects = Vec::new();
    for path in paths {
        let (_, entries) = node
            .ls(&path, resolve_type || sizes, opts)
            .await
            .map_err(node_error)?;
        let links: Vec<Value> = entries
            .map(|e| e.map(|e| ls_link(&e, sizes)).map_err(node_error))
            .try_collect()
            .await?;
        objects.push(json!({"Hash": path, "Links": links}));
    }
    Ok(Output::Once(json!({ "Objects": objects })))
}

/// `dag/get`: the value at the path, encoded with `output-codec` (dag-json by default).
pub(crate) async fn dag_get(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let path = path_arg(req, "ref")?;
    let codec = codec_from_name(req.opt(&["output-codec"])?.unwrap_or("dag-json"))
        .map_err(|e| ApiError::client(e.to_string()))?;
    let data = state
        .inner
        .node
        .dag_get(path, codec, req.fetch_options())
        .await
        .map_err(node_error)?;
    Ok(Output::Bytes {
        content_type: "text/plain",
        data: Bytes::from(data),
    })
}

/// `dag/put`: each file part, read as `input-codec` (dag-json), stored as `store-codec`
/// (dag-cbor); `{"Cid":{"/":...}}` per part. `pin` pins each recursively.
pub(crate) async fn dag_put(
    state: &ApiState,
    req: &mut CommandRequest,
) -> Result<Output, ApiError> {
    let input = codec_from_name(req.opt(&["input-codec"])?.unwrap_or("dag-json"))
        .map_err(|e| ApiError::client(e.to_string()))?;
    let store = codec_from_name(req.opt(&["store-codec"])?.unwrap_or("dag-cbor"))
        .map_err(|e| ApiError::client(e.to_string()))?;
    match req.opt(&["hash"])?.unwrap_or("sha2-256") {
        "sha2-256" => {}
        other => {
            return Err(ApiError::client(format!(
                "dag put --hash {other:?} is not supported by cairn (only sha2-256)"
            )));
        }
    }
    let pin = req.flag(&["pin"], false)?;
    let parts = req.files_required("object data").await?;
    let node = &state.inner.node;
    let mut out = Vec::with_capacity(parts.len());
    for part in parts {
        let cid = node
            .dag_put(&part.data, input, store)
            .await
            .map_err(|e| match e {
                NodeError::Unixfs(u) => ApiError::client(u),
                other => node_error(other),
            })?;
        if pin {
            node.pin(&cid, PinMode::Recursive).await?;
        }
        out.push(json!({"Cid": {"/": cid.to_string()}}));
    }
    Ok(Output::stream_of(out))
}

/// `dag/resolve`: `{"Cid":{"/":...},"RemPath":"..."}`.
pub(crate) async fn dag_resolve(
    state: &ApiState,
    req: &CommandRequest,
) -> Result<Output, ApiError> {
    let path = path_arg(req, "ref")?;
    let resolved = state
        .inner
        .node
        .resolve(path, req.fetch_options())
        .await
        .map_err(node_error)?;
    Ok(Output::Once(json!({
        "Cid": {"/": resolved.cid.to_string()},
        "RemPath": resolved.rem_path(),
    })))
}

/// `dag/stat`: the distinct blocks and bytes of each DAG, with Kubo's summary fields.
pub(crate) async fn dag_stat(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let paths = req.args_required("root")?.to_vec();
    let _progress = req.flag(&["progress", "p"], true)?;
    let node = &state.inner.node;
    let opts = req.fetch_options();
    let mut stats = Vec::new();
    let (mut total, mut unique) = (0u64, 0u64);
    for path in paths {
        let root = node.resolve(&path, opts).await.map_err(node_error)?.cid;
        let stat = node.dag_stat(root, opts).await.map_err(node_error)?;
        total += stat.size;
        unique += stat.blocks;
        stats.push(
            json!({"Cid": {"/": root.to_string()}, "Size": stat.size, "NumBlocks": stat.blocks}),
        );
    }
    Ok(Output::Once(json!({
        "UniqueBlocks": unique,
        "TotalSize": total,
        "SharedSize": 0,
        "Ratio": 1.0,
        "DagStats": stats,
    })))
}

/// `dag/import`: every part a CAR (v1 or v2), streamed into the store; one
/// `{"Root":{"Cid":{"/":...},"PinErrorMsg":""}}` per root (pinned unless `pin-roots=false`),
/// then `{"Stats":{"BlockCount","BlockBytesCount"}}` with `stats`.
pub(crate) async fn dag_import(
    state: &ApiState,
    req: &mut CommandRequest,
) -> Result<Output, ApiError> {
    let pin_roots = req.flag(&["pin-roots"], true)?;
    let stats = req.flag(&["stats"], false)?;
    let silent = req.flag(&["silent"], false)?;
    let Some(mut multipart) = req.multipart(MAX_IMPORT, MAX_IMPORT) else {
        return Err(ApiError::bad_request("file argument 'path' is required"));
    };
    let node = &state.inner.node;
    let (mut roots, mut blocks, mut bytes) = (Vec::new(), 0u64, 0u64);
    while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
        let reader = tokio_util::io::StreamReader::new(field.map_err(std::io::Error::other));
        let imported = node.import_car(reader).await.map_err(|e| match e {
            NodeError::Unixfs(u) => ApiError::client(u),
            other => node_error(other),
        })?;
        blocks += imported.blocks;
        bytes += imported.bytes;
        for root in imported.roots {
            if !roots.contains(&root) {
                roots.push(root);
            }
        }
    }
    let mut out = Vec::new();
    for root in roots {
        let message = if pin_roots {
            match node.pin(&root, PinMode::Recursive).await {
                Ok(()) => String::new(),
                Err(e) => e.to_string(),
            }
        } else {
            continue;
        };
        if !silent {
            out.push(json!({"Root": {"Cid": {"/": root.to_string()}, "PinErrorMsg": message}}));
        }
    }
    if stats {
        out.push(json!({"Stats": {"BlockCount": blocks, "BlockBytesCount": bytes}}));
    }
    Ok(Output::stream_of(out))
}

/// `refs/local`: every block in the store, `{"Ref":"<cid>","Err":""}` per line.
pub(crate) fn refs_local(state: &ApiState) -> Result<Output, ApiError> {
    Ok(Output::Stream(
        state
            .inner
            .node
            .local_cids()
            .map_ok(|c| json!({"Ref": c.to_string(), "Err": ""}))
            .map_err(node_error)
            .boxed(),
    ))
}

/// The most one `add` request may carry (Kubo sets no limit; this bounds a runaway upload).
const MAX_ADD: u64 = 16 << 30;

/// Kubo's `add` progress interval (`progressReaderIncrement`): a `{"Name","Bytes"}` line at
/// least every 256 KiB read, and one at the end of each file.
const PROGRESS_STEP: u64 = 256 << 10;

/// Options of `add` that do not shape the DAG and that cairn reads itself (or, for the CLI-only
/// ones, accepts and ignores as Kubo's server does).
const ADD_SELF_OPTIONS: &[&str] = &[
    "pin",
    "pin-name",
    "only-hash",
    "n",
    "silent",
    "progress",
    "p",
    "quiet",
    "q",
    "quieter",
    "Q",
    "recursive",
    "r",
    "empty-dirs",
    "E",
    "dereference-args",
    "dereference-symlinks",
    "stdin-name",
    "cid-base",
    "fast-provide-root",
    "fast-provide-dag",
    "fast-provide-wait",
    "to-files",
];

/// What a multipart part of an `add` body is, from its content type (go-ipfs-files' encoding).
enum AddPart {
    File,
    Directory,
    Symlink,
}

/// `add`: files, directories and symlinks from one multipart body (Kubo's encoding: URL-escaped
/// relative paths in `filename`, `application/x-directory` parts for directories,
/// `application/symlink` parts for symlinks), imported with Kubo's options through
/// [`cairn_node_core::Node::adder`]. Streams one `{"Name","Hash","Size"}` line per file as it
/// completes, then the directories (root last); with `progress`, `{"Name","Bytes"}` lines too.
pub(crate) async fn add(state: &ApiState, req: &mut CommandRequest) -> Result<Output, ApiError> {
    use cairn_node_core::AddOptions;
    let mut opts = AddOptions::new();
    for (name, value) in req.options() {
        if ADD_SELF_OPTIONS.contains(&name.as_str()) {
            continue;
        }
        match name.as_str() {
            "nocopy" | "fscache" => {
                if crate::request::parse_bool(value) != Some(false) {
                    return Err(ApiError::command(
                        "filestore is not enabled, see https://git.io/vNItf",
                    ));
                }
            }
            _ => {
                // Unknown names are ignored, as Kubo's command library does for options a
                // command does not declare; global ones (offline, timeout...) are handled above.
                opts.import
                    .set(name, value)
                    .map_err(|e| ApiError::client(e.to_string()))?;
            }
        }
    }
    opts.pin = req.flag(&["pin"], true)?;
    opts.pin_name = req.opt(&["pin-name"])?.map(String::from);
    opts.only_hash = req.flag(&["only-hash", "n"], false)?;
    let silent = req.flag(&["silent"], false)?;
    let progress = req.flag(&["progress", "p"], false)?;
    let mut adder = state.inner.node.adder(opts).map_err(|e| match e {
        NodeError::Unixfs(u) => ApiError::client(u),
        other => other.into(),
    })?;
    let Some(mut multipart) = req.multipart(MAX_ADD, MAX_ADD) else {
        return Err(ApiError::bad_request("file argument 'path' is required"));
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Value, ApiError>>(64);
    super::spawn_producer(tx, |tx| async move {
        let run = async {
            let mut any = false;
            while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
                any = true;
                let kind = match field.content_type().map(|t| t.essence_str().to_string()) {
                    Some(t) if t == "application/x-directory" => AddPart::Directory,
                    Some(t) if t == "application/symlink" => AddPart::Symlink,
                    Some(t) if t.starts_with("multipart/") => {
                        return Err(ApiError::client(
                            "nested multipart directories are not supported: send one part per \
                             entry with its path in the filename",
                        ));
                    }
                    _ => AddPart::File,
                };
                let path = match field.file_name() {
                    Some(name) => crate::request::url_decode(name)?,
                    None => String::new(),
                };
                let path = path.trim_matches('/').to_string();
                match kind {
                    AddPart::Directory => {
                        adder.add_directory(&path, None, None).map_err(add_error)?
                    }
                    AddPart::Symlink => {
                        let target = field.bytes().await.map_err(multipart_error)?;
                        let target = String::from_utf8(target.to_vec())
                            .map_err(|_| ApiError::client("symlink target is not UTF-8"))?;
                        let event = adder.add_symlink(&path, &target).await.map_err(add_error)?;
                        if !silent {
                            let _ = tx.send(Ok(added_line(&event))).await;
                        }
                    }
                    AddPart::File => {
                        let name = path.clone();
                        let mut next_report = PROGRESS_STEP;
                        let progress_tx = tx.clone();
                        let mut report = move |read: u64| {
                            if progress && read >= next_report {
                                next_report = read + PROGRESS_STEP;
                                // Best effort: a slow client skips progress lines, never data.
                                let _ =
                                    progress_tx.try_send(Ok(json!({"Name": name, "Bytes": read})));
                            }
                        };
                        let data = field.map_err(|e| std::io::Error::other(multipart_error(e)));
                        let event = adder
                            .add_file(&path, data, &mut report)
                            .await
                            .map_err(add_error)?;
                        if progress {
                            let _ = tx
                                .send(Ok(json!({"Name": event.name, "Bytes": event.file_size})))
                                .await;
                        }
                        if !silent {
                            let _ = tx.send(Ok(added_line(&event))).await;
                        }
                    }
                }
            }
            if !any {
                return Err(ApiError::bad_request("file argument 'path' is required"));
            }
            for event in adder.finish().await.map_err(add_error)? {
                if !silent {
                    let _ = tx.send(Ok(added_line(&event))).await;
                }
            }
            Ok::<_, ApiError>(())
        };
        if let Err(e) = run.await {
            let _ = tx.send(Err(e)).await;
        }
    });
    Ok(Output::Stream(
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|v| (v, rx)) })
            .boxed(),
    ))
}

/// One `add` result line, with Kubo's string `Size`.
fn added_line(event: &cairn_node_core::AddEvent) -> Value {
    json!({"Name": event.name, "Hash": event.cid.to_string(), "Size": event.size.to_string()})
}

/// An add failure: bad paths and options are the client's; the rest as the node reports it.
fn add_error(e: NodeError) -> ApiError {
    match e {
        NodeError::Unixfs(cairn_node_core::unixfs::UnixfsError::Io(io)) => {
            ApiError::client(io.to_string())
        }
        NodeError::Unixfs(u) => ApiError::client(u),
        other => node_error(other),
    }
}

//! Kubo's `files/*` commands (MFS): `files/mkdir`, `files/write`, `files/read`, `files/ls`,
//! `files/stat`, `files/cp`, `files/mv`, `files/rm`, `files/flush`, `files/chcid`, and Kubo 0.30's
//! `files/chmod` and `files/touch` (UnixFS 1.5 mode and mtime). Each parses Kubo's options (`core/commands/files.go`: names, aliases, defaults, the checks Kubo makes
//! before running) and output shapes, and calls [`cairn_node_core::Node`]'s `files_*` methods.
//!
//! `flush`/`f` is accepted and ignored: every cairn MFS command is flushed and durable when it
//! answers (Kubo's `--flush=false` only defers work).

use bytes::Bytes;
use cairn_node_core::unixfs::mfs::{EntryType, MkdirOptions, WriteOptions};
use serde_json::{Value, json};

use super::dag::fetch_error as node_error;
use crate::error::ApiError;
use crate::request::{CommandRequest, multipart_error};
use crate::response::Output;
use crate::server::ApiState;

/// The most bytes one `files/write` takes (the data is held in memory while the DAG is
/// modified).
pub const MAX_WRITE: u64 = 1 << 30;

/// Kubo's `errFormat`.
const ERR_FORMAT: &str = "format was set by multiple options. Only one format option is allowed";

/// Kubo's `--cid-version`/`--cid-ver` and `--hash` (`getPrefix`'s inputs).
fn cid_options(req: &CommandRequest) -> Result<(Option<u8>, Option<String>), ApiError> {
    let version = match req.opt(&["cid-version", "cid-ver"])? {
        None => None,
        Some(v) => {
            let n: i64 = v
                .parse()
                .map_err(|_| ApiError::client(format!("invalid cid-version {v:?}")))?;
            match n {
                0 | 1 => Some(n as u8),
                other => return Err(ApiError::command(format!("unknown CID version: {other}"))),
            }
        }
    };
    Ok((version, req.opt(&["hash"])?.map(String::from)))
}

/// An optional int option that must not be negative (`what`: Kubo's message when it is).
fn non_negative(req: &CommandRequest, names: &[&str], what: &str) -> Result<Option<u64>, ApiError> {
    match req.opt(names)? {
        None => Ok(None),
        Some(v) => {
            let n: i64 = v
                .parse()
                .map_err(|_| ApiError::client(format!("invalid value {v:?} for {}", names[0])))?;
            if n < 0 {
                return Err(ApiError::command(what));
            }
            Ok(Some(n as u64))
        }
    }
}

/// `files/mkdir <path>` (`parents`/`p`, `cid-version`, `hash`): no output.
pub(crate) async fn mkdir(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let path = req.arg(0, "path")?;
    let (cid_version, hash) = cid_options(req)?;
    let mut opts = MkdirOptions::default();
    opts.parents = req.flag(&["parents", "p"], false)?;
    opts.cid_version = cid_version;
    opts.hash = hash;
    state
        .inner
        .node
        .files_mkdir(path, &opts, req.fetch_options())
        .await
        .map_err(node_error)?;
    Ok(Output::Empty)
}

/// `files/write <path>` with the data as the first multipart part (`offset`/`o`,
/// `create`/`e`, `parents`/`p`, `truncate`/`t`, `count`/`n`, `raw-leaves`, `cid-version`,
/// `hash`): no output.
pub(crate) async fn write(state: &ApiState, req: &mut CommandRequest) -> Result<Output, ApiError> {
    let path = req.arg(0, "path")?.to_string();
    let (cid_version, hash) = cid_options(req)?;
    let mut opts = WriteOptions::default();
    opts.create = req.flag(&["create", "e"], false)?;
    opts.parents = req.flag(&["parents", "p"], false)?;
    opts.truncate = req.flag(&["truncate", "t"], false)?;
    opts.raw_leaves = match req.opt(&["raw-leaves"])? {
        None => None,
        Some(_) => Some(req.flag(&["raw-leaves"], false)?),
    };
    opts.cid_version = cid_version;
    opts.hash = hash;
    opts.offset =
        non_negative(req, &["offset", "o"], "cannot have negative write offset")?.unwrap_or(0);
    opts.count = non_negative(req, &["count", "n"], "cannot have negative byte count")?;
    let fetch = req.fetch_options();
    let Some(mut multipart) = req.multipart(MAX_WRITE, MAX_WRITE) else {
        return Err(ApiError::bad_request("file argument 'data' is required"));
    };
    let data: Bytes = match multipart.next_field().await {
        Ok(Some(field)) => field.bytes().await.map_err(multipart_error)?,
        Ok(None) => return Err(ApiError::bad_request("file argument 'data' is required")),
        Err(e) => return Err(multipart_error(e)),
    };
    state
        .inner
        .node
        .files_write(&path, &data, &opts, fetch)
        .await
        .map_err(node_error)?;
    Ok(Output::Empty)
}

/// `files/read <path>` (`offset`/`o`, `count`/`n`): the bytes as `text/plain`.
pub(crate) async fn read(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let path = req.arg(0, "path")?;
    let offset =
        non_negative(req, &["offset", "o"], "cannot specify negative offset")?.unwrap_or(0);
    let count = non_negative(req, &["count", "n"], "cannot specify negative 'count'")?;
    let data = state
        .inner
        .node
        .files_read(path, offset, count, req.fetch_options())
        .await
        .map_err(node_error)?;
    Ok(Output::Bytes {
        content_type: "text/plain",
        data: Bytes::from(data),
    })
}

/// `files/ls [path]` (`long`/`l`, `U`): `{"Entries": [{"Name","Type","Size","Hash"}]}`, with
/// `null` for no entries as Go's nil slice is.
pub(crate) async fn ls(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let path = req.args_first().unwrap_or("/");
    let long = req.flag(&["long", "l"], false)?;
    let entries = state
        .inner
        .node
        .files_ls(path, long, req.fetch_options())
        .await
        .map_err(node_error)?;
    let list: Vec<Value> = entries
        .iter()
        .map(|e| {
            json!({
                "Name": e.name,
                "Type": match e.kind { EntryType::File => 0, EntryType::Directory => 1 },
                "Size": e.size,
                "Hash": e.hash.map(|c| c.to_string()).unwrap_or_default(),
            })
        })
        .collect();
    Ok(Output::Once(json!({
        "Entries": if list.is_empty() { Value::Null } else { Value::Array(list) }
    })))
}

/// Kubo's default `files stat --format` (since 0.30).
const DEFAULT_STAT_FORMAT: &str = "<hash>\nSize: <size>\nCumulativeSize: <cumulsize>\nChildBlocks: <childs>\nType: <type>\nMode: <mode> (<mode-octal>)\nMtime: <mtime>";

/// Kubo's default `files stat --format` before 0.30.
const DEFAULT_STAT_FORMAT_BEFORE_0_30: &str =
    "<hash>\nSize: <size>\nCumulativeSize: <cumulsize>\nChildBlocks: <childs>\nType: <type>";

/// `files/stat <path>` (`format`, `hash`, `size`; only one of them; `with-local`): Kubo's
/// `statOutput`. With `with-local` it adds `WithLocality`, `Local` and `SizeLocal` (how many
/// bytes of the DAG, counted as Kubo's tree walk counts them, are stored here; nothing fetched).
pub(crate) async fn stat(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let path = req.arg(0, "path")?;
    let hash = req.flag(&["hash"], false)?;
    let size = req.flag(&["size"], false)?;
    let with_local = req.flag(&["with-local"], false)?;
    // Kubo's default format counts as no format; so does its default before 0.30 (the same
    // first five lines, without Mode and Mtime), which older clients send.
    let format = req
        .opt(&["format"])?
        .is_some_and(|f| f != DEFAULT_STAT_FORMAT && f != DEFAULT_STAT_FORMAT_BEFORE_0_30);
    if [hash, size, format].iter().filter(|b| **b).count() > 1 {
        return Err(ApiError::client(ERR_FORMAT));
    }
    let st = state
        .inner
        .node
        .files_stat(path, req.fetch_options())
        .await
        .map_err(node_error)?;
    let mut out = json!({
        "Hash": st.hash.to_string(),
        "Size": st.size,
        "CumulativeSize": st.cumulative_size,
        "Blocks": st.blocks,
        "Type": st.kind,
    });
    // Kubo's `omitempty` fields: Mode as `%04o` of the Go `os.FileMode` bits.
    if st.mode != 0 {
        out["Mode"] = json!(format!("{:04o}", st.mode));
    }
    if let Some(t) = st.mtime {
        if t.seconds != 0 {
            out["Mtime"] = json!(t.seconds);
        }
        if t.nanos > 0 {
            out["MtimeNsecs"] = json!(t.nanos);
        }
    }
    if with_local {
        let (local, size_local) = state
            .inner
            .node
            .local_size(st.hash)
            .await
            .map_err(node_error)?;
        // Kubo's fields are `omitempty`: false and 0 are left out.
        out["WithLocality"] = json!(true);
        if local {
            out["Local"] = json!(true);
        }
        if size_local > 0 {
            out["SizeLocal"] = json!(size_local);
        }
    }
    Ok(Output::Once(out))
}

/// `files/cp <source> <dest>` (`parents`/`p`): no output.
pub(crate) async fn cp(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let src = req.arg(0, "source")?;
    let dst = req.arg(1, "dest")?;
    let parents = req.flag(&["parents", "p"], false)?;
    state
        .inner
        .node
        .files_cp(src, dst, parents, req.fetch_options())
        .await
        .map_err(node_error)?;
    Ok(Output::Empty)
}

/// `files/mv <source> <dest>`: no output.
pub(crate) async fn mv(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let src = req.arg(0, "source")?;
    let dst = req.arg(1, "dest")?;
    state
        .inner
        .node
        .files_mv(src, dst, req.fetch_options())
        .await
        .map_err(node_error)?;
    Ok(Output::Empty)
}

/// `files/rm <path>...` (`recursive`/`r`, `force`): every path is tried; as Kubo, each failure
/// is emitted as a JSON string (`<path>: <error>`) and the command then fails with `can't
/// remove some files`.
pub(crate) async fn rm(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let paths = req.args_required("path")?.to_vec();
    let recursive = req.flag(&["recursive", "r"], false)?;
    let force = req.flag(&["force"], false)?;
    let node = &state.inner.node;
    let mut errors = Vec::new();
    for p in &paths {
        if let Err(e) = node
            .files_rm(p, recursive, force, req.fetch_options())
            .await
        {
            let shown = cairn_node_core::unixfs::mfs::parse_path(p)
                .map(|c| c.to_string())
                .unwrap_or_else(|_| p.clone());
            errors.push(match cairn_node_core::unixfs::mfs::parse_path(p) {
                Err(pe) => format!("{p} is not a valid path: {pe}"),
                Ok(_) => format!("{shown}: {e}"),
            });
        }
    }
    if errors.is_empty() {
        return Ok(Output::Empty);
    }
    let mut items: Vec<Result<Value, ApiError>> =
        errors.into_iter().map(|e| Ok(Value::String(e))).collect();
    items.push(Err(ApiError::command("can't remove some files")));
    Ok(Output::Stream(Box::pin(futures::stream::iter(items))))
}

/// `files/flush [path]`: `{"Cid": "<cid>"}`.
pub(crate) async fn flush(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let path = req.args_first().unwrap_or("/");
    let cid = state
        .inner
        .node
        .files_flush(path, req.fetch_options())
        .await
        .map_err(node_error)?;
    Ok(Output::Once(json!({ "Cid": cid.to_string() })))
}

/// `files/chcid [path]` (`cid-version`, `hash`): no output.
pub(crate) async fn chcid(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let path = req.args_first().unwrap_or("/");
    let (cid_version, hash) = cid_options(req)?;
    state
        .inner
        .node
        .files_chcid(path, cid_version, hash.as_deref(), req.fetch_options())
        .await
        .map_err(node_error)?;
    Ok(Output::Empty)
}

/// Go's `strconv.ParseInt(s, 8, 32)` as Kubo's `files chmod` calls it: an optional sign, then
/// octal digits only (no `0o` prefix, no `_`); the value must fit an `int32`. The errors are
/// Go's texts (`strconv.ParseInt: parsing "9": invalid syntax`, `... value out of range`).
pub(crate) fn parse_octal_i32(s: &str) -> Result<i64, String> {
    let syntax = || format!("strconv.ParseInt: parsing {s:?}: invalid syntax");
    let range = || format!("strconv.ParseInt: parsing {s:?}: value out of range");
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() {
        return Err(syntax());
    }
    let mut n: u64 = 0;
    for c in digits.bytes() {
        if !(b'0'..=b'7').contains(&c) {
            return Err(syntax());
        }
        n = n * 8 + u64::from(c - b'0');
        if n > u64::from(u32::MAX) {
            return Err(range());
        }
    }
    let cutoff = 1u64 << 31;
    if (!neg && n >= cutoff) || (neg && n > cutoff) {
        return Err(range());
    }
    let v = n as i64;
    Ok(if neg { -v } else { v })
}

/// `files/chmod <mode> <path>` (Kubo 0.30+): `mode` in octal as Go's `strconv.ParseInt(mode,
/// 8, 32)` reads it (`755`, `0644`), applied as `os.FileMode(mode)` (see
/// [`cairn_node_core::unixfs::mfs::Mfs::chmod`] for the bits kept). No output, as Kubo's.
pub(crate) async fn chmod(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let mode = req.arg(0, "mode")?;
    let path = req.arg(1, "path")?;
    // Kubo checks the path first, then parses the mode.
    cairn_node_core::unixfs::mfs::parse_path(path).map_err(ApiError::command)?;
    let mode = parse_octal_i32(mode).map_err(ApiError::command)?;
    state
        .inner
        .node
        .files_chmod(path, mode as u32, req.fetch_options())
        .await
        .map_err(node_error)?;
    Ok(Output::Empty)
}

/// `files/touch <path>` (Kubo 0.30+; `mtime`: Unix seconds, `mtime-nsecs`: nanoseconds): sets
/// the mtime to `time.Unix(mtime, mtime-nsecs)`, or to now when `mtime` is absent or 0 (then
/// `mtime-nsecs` is ignored), as Kubo's `filesTouchCmd`. No output.
pub(crate) async fn touch(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let path = req.arg(0, "path")?;
    let secs: i64 = match req.opt(&["mtime"])? {
        None => 0,
        Some(v) => v
            .parse()
            .map_err(|_| ApiError::client(format!("invalid value {v:?} for mtime")))?,
    };
    let nsecs: u64 = match req.opt(&["mtime-nsecs"])? {
        None => 0,
        Some(v) => v
            .parse()
            .map_err(|_| ApiError::client(format!("invalid value {v:?} for mtime-nsecs")))?,
    };
    let mtime = if secs != 0 {
        // Go's time.Unix carries whole seconds out of the nanoseconds.
        let carry = i64::try_from(nsecs / 1_000_000_000).unwrap_or(i64::MAX);
        (secs.wrapping_add(carry), (nsecs % 1_000_000_000) as u32)
    } else {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        (
            i64::try_from(now.as_secs()).unwrap_or(i64::MAX),
            now.subsec_nanos(),
        )
    };
    state
        .inner
        .node
        .files_touch(path, mtime, req.fetch_options())
        .await
        .map_err(node_error)?;
    Ok(Output::Empty)
}

#[cfg(test)]
mod tests {
    use super::parse_octal_i32;

    #[test]
    fn octal_mode_parsing_is_gos() {
        assert_eq!(parse_octal_i32("755"), Ok(0o755));
        assert_eq!(parse_octal_i32("0644"), Ok(0o644));
        assert_eq!(parse_octal_i32("+7"), Ok(7));
        assert_eq!(parse_octal_i32("-1"), Ok(-1));
        assert_eq!(parse_octal_i32("17777777777"), Ok(i64::from(i32::MAX)));
        assert_eq!(parse_octal_i32("-20000000000"), Ok(i64::from(i32::MIN)));
        assert_eq!(
            parse_octal_i32("20000000000"),
            Err("strconv.ParseInt: parsing \"20000000000\": value out of range".into())
        );
        for bad in ["", "-", "9", "0o755", "7_5", "rwx"] {
            assert_eq!(
                parse_octal_i32(bad),
                Err(format!("strconv.ParseInt: parsing {bad:?}: invalid syntax"))
            );
        }
    }
}

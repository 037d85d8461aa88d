//! `repo/stat` (and `stats/repo`), `repo/gc`, `repo/version`, `stats/bw`.

use std::path::Path;

use futures::StreamExt;
use serde_json::json;

use super::basic::REPO_VERSION;
use crate::error::ApiError;
use crate::request::CommandRequest;
use crate::response::Output;
use crate::server::ApiState;

/// Parses a size the way Kubo's config writes them (`10GB`, `500MiB`, `1024`).
pub(crate) fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let number: f64 = t[..split].parse().ok()?;
    let scale: f64 = match t[split..].trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" | "k" => 1e3,
        "mb" | "m" => 1e6,
        "gb" | "g" => 1e9,
        "tb" | "t" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some((number * scale) as u64)
}

fn dir_size(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

pub(crate) async fn stat(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let size_only = req.flag(&["size-only", "s"], false)?;
    let _human = req.flag(&["human", "H"], false)?;
    let store = state.inner.node.blockstore()?;
    let repo = state.inner.repo_path.clone();
    let storage_max =
        parse_size(&state.inner.config.lock().datastore.storage_max).unwrap_or(10_000_000_000);
    let (stat, disk) = tokio::task::spawn_blocking(move || {
        let stat = store.stat();
        let disk = repo.as_deref().map(dir_size);
        (stat, disk)
    })
    .await
    .map_err(ApiError::command)?;
    let stat = stat?;
    let repo_size = disk.unwrap_or(stat.bytes);
    if size_only {
        return Ok(Output::Once(
            json!({"RepoSize": repo_size, "StorageMax": storage_max}),
        ));
    }
    Ok(Output::Once(json!({
        "RepoSize": repo_size,
        "StorageMax": storage_max,
        "NumObjects": stat.blocks,
        "RepoPath": state.inner.repo_path.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
        "Version": format!("cairn-repo@{REPO_VERSION}"),
    })))
}

pub(crate) async fn gc(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let _quiet = req.flag(&["quiet", "q"], false)?;
    let silent = req.flag(&["silent"], false)?;
    let _stream_errors = req.flag(&["stream-errors"], false)?;
    let report = state.inner.node.gc().await?;
    if silent {
        return Ok(Output::stream_of(Vec::new()));
    }
    let lines = report
        .removed
        .iter()
        .map(|c| json!({"Key": {"/": c.to_string()}}))
        .collect();
    Ok(Output::stream_of(lines))
}

pub(crate) fn version() -> Result<Output, ApiError> {
    Ok(Output::Once(json!({"Version": REPO_VERSION})))
}

pub(crate) async fn bandwidth(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    if req.opt(&["peer", "p"])?.is_some() && req.opt(&["proto", "t"])?.is_some() {
        return Err(ApiError::client("please only specify peer OR protocol"));
    }
    if req.flag(&["poll"], false)? {
        return Err(ApiError::client(
            "polling bandwidth is not supported by cairn",
        ));
    }
    let (total_in, total_out) = state.inner.node.bandwidth();
    let up = state.inner.started.elapsed().as_secs_f64().max(1e-3);
    let line = json!({
        "TotalIn": total_in,
        "TotalOut": total_out,
        "RateIn": total_in as f64 / up,
        "RateOut": total_out as f64 / up,
    });
    Ok(Output::Stream(futures::stream::iter([Ok(line)]).boxed()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10GB"), Some(10_000_000_000));
        assert_eq!(parse_size("1.5 MiB"), Some(1_572_864));
        assert_eq!(parse_size("1024"), Some(1024));
        assert_eq!(parse_size("lots"), None);
    }
}

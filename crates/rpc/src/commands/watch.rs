//! `cairn/watch/ls` and `cairn/watch/refresh`: the watched import folder (see `cairn-watch`),
//! cairn extensions. Without a watched folder both answer the command error [`NOT_WATCHING`]
//! (500, Kubo's error JSON): the commands exist, there is nothing for them to act on.
//!
//! `cairn/watch/ls` answers every entry, by name:
//!
//! ```json
//! {"Dir": "/srv/drop",
//!  "Counts": {"Settling": 0, "Importing": 0, "Imported": 2, "Failed": 1},
//!  "Entries": [{"Path": "a.iso", "Kind": "file", "State": "imported", "Cid": "bafy…",
//!               "Size": 4700000000, "ImportedAt": 1764480000000, "Error": null}, …]}
//! ```
//!
//! `Size` is in bytes (a folder's: the sum of its files), `ImportedAt` in Unix milliseconds,
//! `State` one of `settling`, `importing`, `imported`, `failed` (then `Error` says why).
//!
//! `cairn/watch/refresh` rescans the folder at once (retrying failed entries) and answers what
//! the scan found once it is done: `{"Entries": 3, "Changed": 1, "Present": true}`. The imports
//! it starts finish later; `cairn/watch/ls` shows them.

use serde_json::{Value, json};

use crate::error::ApiError;
use crate::response::Output;
use crate::server::ApiState;

/// What both commands answer when the daemon watches no folder.
pub(crate) const NOT_WATCHING: &str =
    "no folder is watched: start the daemon with --watch DIR or set Cairn.Watch.Dir";

/// The watcher, or the [`NOT_WATCHING`] error.
fn handle(state: &ApiState) -> Result<&cairn_watch::WatchHandle, ApiError> {
    state
        .inner
        .watch
        .as_ref()
        .ok_or_else(|| ApiError::command(NOT_WATCHING))
}

/// Counts by state, as `cairn/watch/ls` and `cairn/status` show them.
pub(crate) fn counts(watch: &cairn_watch::WatchHandle) -> Value {
    let [settling, importing, imported, failed] = watch.counts();
    json!({"Settling": settling, "Importing": importing, "Imported": imported, "Failed": failed})
}

/// `cairn/watch/ls`.
pub(crate) fn ls(state: &ApiState) -> Result<Output, ApiError> {
    let watch = handle(state)?;
    Ok(Output::Once(json!({
        "Dir": watch.dir(),
        "Counts": counts(watch),
        "Entries": watch.entries(),
    })))
}

/// `cairn/watch/refresh`.
pub(crate) async fn refresh(state: &ApiState) -> Result<Output, ApiError> {
    let report = handle(state)?
        .refresh()
        .await
        .map_err(|e| ApiError::command(e.to_string()))?;
    Ok(Output::Once(json!(report)))
}

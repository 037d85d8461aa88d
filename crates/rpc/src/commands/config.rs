//! `config/show`, `config <key> [value]`, `config/replace`, `config/profile/apply`.
//!
//! Thin wire layer: the rules (Kubo's schema, its error texts, its profiles) live in
//! [`cairn_node_core::config::edit`], shared with the CLI's offline path.

use cairn_node_core::Config;
use cairn_node_core::config::{ConfigEdit, ConfigEditError, ValueKind};
use serde_json::{Value, json};

use super::save_config;
use crate::error::ApiError;
use crate::request::CommandRequest;
use crate::response::Output;
use crate::server::ApiState;

/// The config as `config/show` prints it: no private key, no authorization secrets.
fn scrubbed(config: &Config) -> Value {
    let mut v = cairn_node_core::config::edit::without_private_key(&config.to_value());
    if let Some(auths) = v
        .pointer_mut("/API/Authorizations")
        .and_then(Value::as_object_mut)
    {
        for entry in auths.values_mut() {
            if let Some(e) = entry.as_object_mut() {
                e.insert("AuthSecret".into(), json!(""));
            }
        }
    }
    v
}

/// Every config error is a failed command (HTTP 500), as in Kubo.
fn failed(e: ConfigEditError) -> ApiError {
    ApiError::command(e)
}

pub(crate) fn show(state: &ApiState) -> Result<Output, ApiError> {
    Ok(Output::Once(scrubbed(&state.inner.config.lock())))
}

pub(crate) async fn get_set(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let key = req.arg(0, "key")?.to_string();
    let kind = if req.flag(&["json"], false)? {
        ValueKind::Json
    } else if req.flag(&["bool"], false)? {
        ValueKind::Bool
    } else {
        ValueKind::String
    };
    let edit = ConfigEdit::new(&state.inner.config.lock());
    let Some(raw) = req.args.get(1) else {
        let value = edit.get(&key).map_err(failed)?;
        return Ok(Output::Once(json!({"Key": key, "Value": value})));
    };
    let out = edit.set(&key, raw, kind).map_err(failed)?;
    if let Some(note) = &out.note {
        tracing::warn!("{note}");
    }
    save_config(state, &out.config)?;
    *state.inner.config.lock() = out.config;
    Ok(Output::Once(json!({"Key": key, "Value": out.value})))
}

pub(crate) async fn replace(
    state: &ApiState,
    req: &mut CommandRequest,
) -> Result<Output, ApiError> {
    let parts = req.files_required("file").await?;
    let text =
        std::str::from_utf8(&parts[0].data).map_err(|_| ApiError::client("config is not UTF-8"))?;
    let new = ConfigEdit::new(&state.inner.config.lock())
        .replace(text)
        .map_err(failed)?;
    save_config(state, &new)?;
    *state.inner.config.lock() = new;
    Ok(Output::Empty)
}

/// `config/profile/apply?arg=<profile>&dry-run=<bool>`: `{"OldCfg":{..},"NewCfg":{..}}`, both
/// without the private key, as Kubo answers.
pub(crate) async fn profile_apply(
    state: &ApiState,
    req: &CommandRequest,
) -> Result<Output, ApiError> {
    let name = req.arg(0, "profile")?.to_string();
    let dry_run = req.flag(&["dry-run"], false)?;
    let out = ConfigEdit::new(&state.inner.config.lock())
        .apply_profile(&name)
        .map_err(failed)?;
    if !dry_run {
        if let Some(note) = &out.note {
            tracing::warn!("{note}");
        }
        save_config(state, &out.config)?;
        *state.inner.config.lock() = out.config;
    }
    Ok(Output::Once(json!({"OldCfg": out.old, "NewCfg": out.new})))
}

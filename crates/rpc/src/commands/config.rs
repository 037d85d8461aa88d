//! `config/show`, `config <key> [value]`, `config/replace`.

use cairn_node_core::Config;
use serde_json::{Value, json};

use super::save_config;
use crate::error::ApiError;
use crate::request::CommandRequest;
use crate::request::parse_bool;
use crate::response::Output;
use crate::server::ApiState;

const PRIVATE_KEY: &str = "cannot show or change private key through API";

/// The config as `config/show` prints it: no private key, no authorization secrets.
fn scrubbed(config: &Config) -> Value {
    let mut v = config.to_value();
    if let Some(id) = v.get_mut("Identity").and_then(Value::as_object_mut) {
        id.remove("PrivKey");
    }
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

pub(crate) fn show(state: &ApiState) -> Result<Output, ApiError> {
    Ok(Output::Once(scrubbed(&state.inner.config.lock())))
}

pub(crate) async fn get_set(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let key = req.arg(0, "key")?.to_string();
    let as_json = req.flag(&["json"], false)?;
    let as_bool = req.flag(&["bool"], false)?;
    if key == "Identity" || key.starts_with("Identity.PrivKey") {
        return Err(ApiError::command(PRIVATE_KEY));
    }
    let path: Vec<&str> = key.split('.').collect();
    let Some(raw) = req.args.get(1) else {
        let config = state.inner.config.lock().to_value();
        let value = path
            .iter()
            .try_fold(&config, |v, k| v.get(k))
            .ok_or_else(|| {
                ApiError::command(format!(
                    "failed to get config value: key has no attribute {key:?}"
                ))
            })?;
        return Ok(Output::Once(json!({"Key": key, "Value": value})));
    };
    let value: Value = if as_json {
        serde_json::from_str(raw)
            .map_err(|e| ApiError::command(format!("failed to unmarshal json. {e}")))?
    } else if as_bool {
        json!(
            parse_bool(raw)
                .ok_or_else(|| ApiError::client(format!("value {raw:?} is not a boolean")))?
        )
    } else {
        json!(raw)
    };
    let updated = {
        let current = state.inner.config.lock();
        if key == "Identity.PeerID" && value != json!(current.identity.peer_id) {
            return Err(ApiError::command(
                "cannot change Identity.PeerID through the API",
            ));
        }
        let mut doc = current.to_value();
        let mut slot = &mut doc;
        for k in &path {
            if !slot.is_object() {
                return Err(ApiError::command(format!(
                    "failed to set config value: {key:?} is not inside an object"
                )));
            }
            slot = slot
                .as_object_mut()
                .expect("checked")
                .entry(k.to_string())
                .or_insert(Value::Null);
        }
        *slot = value.clone();
        Config::from_json(&doc.to_string(), std::path::Path::new("config"))
            .map_err(|e| ApiError::command(format!("failed to set config value: {e}")))?
    };
    save_config(state, &updated)?;
    *state.inner.config.lock() = updated;
    Ok(Output::Once(json!({"Key": key, "Value": value})))
}

pub(crate) async fn replace(
    state: &ApiState,
    req: &mut CommandRequest,
) -> Result<Output, ApiError> {
    let parts = req.files_required("file").await?;
    let text =
        std::str::from_utf8(&parts[0].data).map_err(|_| ApiError::client("config is not UTF-8"))?;
    let mut new = Config::from_json(text, std::path::Path::new("config"))
        .map_err(|e| ApiError::client(e.to_string()))?;
    let current = state.inner.config.lock().clone();
    if !new.identity.priv_key.is_empty() && new.identity.priv_key != current.identity.priv_key {
        return Err(ApiError::command(
            "setting private key with API is not supported",
        ));
    }
    new.identity = current.identity.clone();
    save_config(state, &new)?;
    *state.inner.config.lock() = new;
    Ok(Output::Empty)
}

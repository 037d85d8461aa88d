//! `config` and `bootstrap` without a daemon: like Kubo's, they edit the repo's config file
//! directly when no daemon is running (so a repo can be set up before its first start).

use std::path::Path;

use anyhow::{Context, bail};
use cairn::bootstrap::{BootstrapPeer, DEFAULT_BOOTSTRAP};
use cairn::node::Config;
use cairn::node::repo::{read_config, write_config};
use serde_json::{Value, json};

/// `config KEY [VALUE]` on the file. Prints like the online command.
pub fn config(
    repo: &Path,
    key: &str,
    value: Option<&str>,
    as_json: bool,
    as_bool: bool,
) -> anyhow::Result<Value> {
    let config = read_config(repo)?;
    if key == "show" && value.is_none() {
        let mut v = config.to_value();
        if let Some(id) = v.get_mut("Identity").and_then(Value::as_object_mut) {
            id.remove("PrivKey");
        }
        return Ok(v);
    }
    if key == "Identity" || key.starts_with("Identity.PrivKey") {
        bail!("cannot show or change private key through the CLI");
    }
    let path: Vec<&str> = key.split('.').collect();
    let mut doc = config.to_value();
    let Some(raw) = value else {
        let v = path
            .iter()
            .try_fold(&doc, |v, k| v.get(k))
            .with_context(|| format!("key has no attribute {key:?}"))?;
        return Ok(json!({"Key": key, "Value": v}));
    };
    let new: Value = if as_json {
        serde_json::from_str(raw).context("failed to unmarshal json")?
    } else if as_bool {
        json!(
            raw.parse::<bool>()
                .with_context(|| format!("{raw:?} is not a boolean"))?
        )
    } else {
        json!(raw)
    };
    let mut slot = &mut doc;
    for k in &path {
        let Some(obj) = slot.as_object_mut() else {
            bail!("{key:?} is not inside an object")
        };
        slot = obj.entry(k.to_string()).or_insert(Value::Null);
    }
    *slot = new.clone();
    let updated = Config::from_json(&doc.to_string(), &repo.join("config"))?;
    write_config(repo, &updated)?;
    Ok(json!({"Key": key, "Value": new}))
}

/// `bootstrap list|add|rm` on the file. Returns the entries to print.
pub fn bootstrap(
    repo: &Path,
    action: &str,
    addrs: &[String],
    flag: bool,
) -> anyhow::Result<Vec<String>> {
    let mut config = read_config(repo)?;
    let parse = |a: &String| {
        BootstrapPeer::parse(a)
            .map(|p| p.addr.to_string())
            .map_err(|e| anyhow::anyhow!("invalid bootstrap address: {e}"))
    };
    let out = match action {
        "list" => config.bootstrap.clone(),
        "add" => {
            let wanted: Vec<String> = if flag {
                DEFAULT_BOOTSTRAP.iter().map(|s| s.to_string()).collect()
            } else if addrs.is_empty() {
                bail!("no bootstrap peers to add");
            } else {
                addrs.iter().map(parse).collect::<Result<_, _>>()?
            };
            let mut added = Vec::new();
            for a in wanted {
                if !config.bootstrap.contains(&a) && !added.contains(&a) {
                    added.push(a);
                }
            }
            config.bootstrap.extend(added.iter().cloned());
            added
        }
        _ => {
            if flag {
                std::mem::take(&mut config.bootstrap)
            } else {
                if addrs.is_empty() {
                    bail!("no bootstrap peers to remove");
                }
                let targets: Vec<String> = addrs.iter().map(parse).collect::<Result<_, _>>()?;
                let (removed, kept) = config
                    .bootstrap
                    .iter()
                    .cloned()
                    .partition(|a| targets.contains(a));
                config.bootstrap = kept;
                removed
            }
        }
    };
    if action != "list" {
        write_config(repo, &config)?;
    }
    Ok(out)
}

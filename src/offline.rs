//! `config` and `bootstrap` without a daemon: like Kubo's, they edit the repo's config file
//! directly when no daemon is running (so a repo can be set up before its first start).
//!
//! The config rules are node-core's [`cairn::node::config::ConfigEdit`], the same the RPC uses.

use std::path::Path;

use anyhow::bail;
use cairn::bootstrap::{BootstrapPeer, DEFAULT_BOOTSTRAP};
use cairn::node::config::{ConfigEdit, ValueKind};
use cairn::node::repo::{read_config, write_config};
use serde_json::{Value, json};

/// `config KEY [VALUE]` (or `config show`) on the file. Returns what the online command answers
/// and, for a set, the note to print when cairn does not act on the key.
pub fn config(
    repo: &Path,
    key: &str,
    value: Option<&str>,
    kind: ValueKind,
) -> anyhow::Result<(Value, Option<String>)> {
    let config = read_config(repo)?;
    let edit = ConfigEdit::new(&config);
    if key == "show" && value.is_none() {
        return Ok((
            cairn::node::config::edit::without_private_key(edit.value()),
            None,
        ));
    }
    let Some(raw) = value else {
        return Ok((json!({"Key": key, "Value": edit.get(key)?}), None));
    };
    let out = edit.set(key, raw, kind)?;
    write_config(repo, &out.config)?;
    Ok((json!({"Key": key, "Value": out.value}), out.note))
}

/// `config profile apply NAME [--dry-run]` on the file: Kubo's `{"OldCfg":..,"NewCfg":..}` and
/// the note for keys cairn does not act on.
pub fn profile_apply(
    repo: &Path,
    name: &str,
    dry_run: bool,
) -> anyhow::Result<(Value, Option<String>)> {
    let out = ConfigEdit::new(&read_config(repo)?).apply_profile(name)?;
    if !dry_run {
        write_config(repo, &out.config)?;
    }
    Ok((json!({"OldCfg": out.old, "NewCfg": out.new}), out.note))
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

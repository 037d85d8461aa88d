//! Reading and changing the config by dotted key, as `ipfs config KEY [VALUE]`,
//! `ipfs config replace` and `ipfs config profile apply` do in Kubo 0.34+.
//!
//! One implementation for both callers: the RPC (`/api/v0/config*` on a running daemon) and the
//! CLI editing the repo's file when no daemon runs. Both hand in the current [`Config`], call
//! [`ConfigEdit::get`], [`ConfigEdit::set`], [`ConfigEdit::replace`] or
//! [`ConfigEdit::apply_profile`], and store the [`Config`] that comes back.
//!
//! Rules, after Kubo (`core/commands/config.go`, `repo/fsrepo/fsrepo.go` `SetConfigKey`,
//! `config/config.go` `CheckKey`):
//! - a key that is not in Kubo's schema ([`super::schema`]) is refused with Kubo's text,
//!   `failed to set config value: Addresses.APII not found (maybe use --json?)`;
//! - objects on the way to the key are created when missing or `null` (`Routing.Type dht` on a
//!   config without `Routing`);
//! - a value is stored as given: a string without `--json`/`--bool` (so `config
//!   Experimental.FilestoreEnabled false` is a wrong type, as in Kubo), parsed JSON with `--json`,
//!   a boolean with `--bool`. A value of the wrong type names the key and the type it holds;
//! - `Identity`, `Identity.PrivKey` and `Pinning.RemoteServices.*.API.Key` can be neither read
//!   nor written; `Identity.PeerID` only set to the node's own id.

use serde_json::{Map, Value};

use super::Config;
use super::schema::{self, LookupError, ValueError};
use crate::error::RepoError;

/// How the text of a value given to `config KEY VALUE` is turned into JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ValueKind {
    /// Stored as a JSON string, as given (Kubo's default).
    #[default]
    String,
    /// Parsed as JSON (`--json`).
    Json,
    /// A boolean (`--bool`): Go's `strconv.ParseBool` spellings (`true`, `false`, `1`, `0`, `t`,
    /// `f`, ...). Kubo stores `value == "true"`; cairn refuses other text instead of storing
    /// `false`.
    Bool,
}

/// Why a config read or change was refused. The texts are Kubo's where Kubo has one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigEditError {
    /// `Identity` or `Identity.PrivKey` (kubo `core/commands/config.go`).
    #[error("cannot show or change private key through API")]
    PrivateKey,
    /// `Pinning.RemoteServices.*.API.Key` and what contains it (kubo `core/commands/config.go`).
    #[error("cannot show or change pinning services credentials")]
    PinningCredentials,
    /// Reading a key the config does not hold; the field is the reason, quoted as Kubo's `%q`
    /// quotes it: `failed to get config value: "Routing.Type not found"`.
    #[error("failed to get config value: {0:?}")]
    Get(String),
    /// Setting a key failed: unknown key, wrong type, or a value cairn cannot use. Kubo's
    /// wording: `failed to set config value: <reason> (maybe use --json?)`.
    #[error("failed to set config value: {0} (maybe use --json?)")]
    Set(String),
    /// `--json` with text that is not JSON (Kubo: `failed to unmarshal json. <reason>`).
    #[error("failed to unmarshal json. {0}")]
    Json(String),
    /// `--bool` with text that is not a boolean.
    #[error("value {0:?} is not a boolean")]
    NotBool(String),
    /// `Identity.PeerID` set to another id than the node's (kubo `core/commands/config.go`).
    #[error(
        "cannot set Identity.PeerID to a value that does not match the node's private key; use 'ipfs key rotate' to change the node identity"
    )]
    PeerId,
    /// An unknown profile name (kubo `core/commands/config.go`: `%s is not a profile`).
    #[error("{0} is not a profile")]
    UnknownProfile(String),
    /// A replacement config that is not JSON, has an unknown key or a wrong type; Kubo says
    /// `failed to decode file as config`, cairn adds which key.
    #[error("failed to decode file as config: {0}")]
    Replace(String),
    /// A replacement config carrying another private key (kubo `core/commands/config.go`).
    #[error("setting private key with API is not supported")]
    ReplacePrivateKey,
    /// A profile could not be applied (e.g. `randomports` found no free port).
    #[error("failed to apply profile {name}: {reason}")]
    Profile {
        /// The profile.
        name: String,
        /// Why.
        reason: String,
    },
}

/// What [`ConfigEdit::set`] stored.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct SetOutcome {
    /// The config after the change, to be stored.
    pub config: Config,
    /// The value now at the key (read back, as Kubo answers).
    pub value: Value,
    /// `Some(note)` when cairn stores the key but does not act on it.
    pub note: Option<String>,
}

/// What [`ConfigEdit::apply_profile`] did.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ProfileOutcome {
    /// The config after the profile, to be stored (unless it is a dry run).
    pub config: Config,
    /// The config before, without `Identity.PrivKey` (Kubo's `OldCfg`).
    pub old: Value,
    /// The config after, without `Identity.PrivKey` (Kubo's `NewCfg`).
    pub new: Value,
    /// The dotted keys the profile changed, sorted.
    pub changed: Vec<String>,
    /// `Some(note)` when some changed keys are stored but not acted on by cairn.
    pub note: Option<String>,
}

/// An edit of a config: built from the current config, answers reads and produces the changed
/// config. It does not write anything; the caller stores the result.
#[derive(Clone, Debug)]
pub struct ConfigEdit {
    config: Config,
    doc: Value,
}

/// The note `config` prints when some of `keys` (dotted) are stored but not acted on by cairn,
/// or `None` when cairn acts on all of them (keys not in the schema are left out).
pub fn inert_note(keys: &[String]) -> Option<String> {
    let inert: Vec<&String> = keys
        .iter()
        .filter(|k| schema::lookup(k).is_ok_and(|r| !schema::is_acted(&r)))
        .collect();
    match inert.as_slice() {
        [] => None,
        [one] => Some(format!(
            "cairn stores {one} in the config but does not act on it"
        )),
        many => Some(format!(
            "cairn stores these keys in the config but does not act on them: {}",
            many.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

fn guard(key: &str) -> Result<(), ConfigEditError> {
    let lower = key.to_ascii_lowercase();
    if lower == "identity" || lower.starts_with("identity.privkey") {
        return Err(ConfigEditError::PrivateKey);
    }
    // Kubo's matchesGlobPrefix(key, PinningConcealSelector): the first min(len) parts match.
    let glob = ["Pinning", "RemoteServices", "*", "API", "Key"];
    let matches = key
        .split('.')
        .zip(glob)
        .all(|(k, g)| g == "*" || k.eq_ignore_ascii_case(g));
    if matches {
        return Err(ConfigEditError::PinningCredentials);
    }
    Ok(())
}

/// Go's `strconv.ParseBool`.
fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// Kubo's `MapGetKV`: the value at a dotted key of a JSON document.
fn get_path<'a>(doc: &'a Value, key: &str) -> Result<&'a Value, String> {
    let parts: Vec<&str> = key.split('.').collect();
    let mut cursor = doc;
    for (i, part) in parts.iter().enumerate() {
        let Some(obj) = cursor.as_object() else {
            return Err(format!("{} key is not a map", parts[..i].join(".")));
        };
        cursor = obj
            .get(*part)
            .ok_or_else(|| format!("{} not found", parts[..=i].join(".")))?;
    }
    Ok(cursor)
}

/// Kubo's `MapSetKV`: sets a dotted key, creating objects on the way when missing or `null`.
pub(crate) fn set_path(doc: &mut Value, key: &str, value: Value) -> Result<(), String> {
    let parts: Vec<&str> = key.split('.').collect();
    let mut cursor = doc;
    for (i, part) in parts.iter().enumerate() {
        if cursor.is_null() {
            *cursor = Value::Object(Map::new());
        }
        let Some(obj) = cursor.as_object_mut() else {
            return Err(format!("{} key is not a map", parts[..i].join(".")));
        };
        if i == parts.len() - 1 {
            obj.insert(part.to_string(), value);
            return Ok(());
        }
        cursor = obj.entry(part.to_string()).or_insert(Value::Null);
    }
    Ok(())
}

/// Removes a dotted key (a Go field set back to its `omitempty` zero value); absent is fine.
pub(crate) fn remove_path(doc: &mut Value, key: &str) {
    let (parent, last) = match key.rsplit_once('.') {
        Some((p, l)) => (get_path_mut(doc, p), l),
        None => (Some(doc), key),
    };
    if let Some(obj) = parent.and_then(Value::as_object_mut) {
        obj.remove(last);
    }
}

fn get_path_mut<'a>(doc: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    key.split('.')
        .try_fold(doc, |v, part| v.as_object_mut()?.get_mut(part))
}

/// The config as `config/show` and `profile apply` print it: without `Identity.PrivKey`.
pub fn without_private_key(doc: &Value) -> Value {
    let mut doc = doc.clone();
    if let Some(id) = doc.get_mut("Identity").and_then(Value::as_object_mut) {
        id.remove("PrivKey");
    }
    doc
}

fn typed(doc: &Value) -> Result<Config, RepoError> {
    Config::from_json(&doc.to_string(), std::path::Path::new("config"))
}

fn typed_reason(e: RepoError) -> String {
    match e {
        RepoError::MalformedConfig { key, reason, .. } => {
            format!("invalid value for config field {key}: {reason}")
        }
        other => other.to_string(),
    }
}

impl ConfigEdit {
    /// An edit of `config`.
    pub fn new(config: &Config) -> Self {
        ConfigEdit {
            doc: config.to_value(),
            config: config.clone(),
        }
    }

    /// The config as JSON (private key included).
    pub fn value(&self) -> &Value {
        &self.doc
    }

    /// The value at a dotted key, as `ipfs config KEY` answers it.
    ///
    /// # Errors
    /// [`ConfigEditError::PrivateKey`] / [`ConfigEditError::PinningCredentials`] for secrets;
    /// [`ConfigEditError::Get`] when the config does not hold the key (Kubo reads the file, so a
    /// key of the schema that was never set is "not found" too: `failed to get config value:
    /// "Routing.Type not found"`).
    pub fn get(&self, key: &str) -> Result<Value, ConfigEditError> {
        guard(key)?;
        get_path(&self.doc, key)
            .cloned()
            .map_err(ConfigEditError::Get)
    }

    /// Sets a dotted key from the text given on the command line, read as `kind` says.
    ///
    /// # Errors
    /// See the module documentation: secrets, [`ConfigEditError::Json`],
    /// [`ConfigEditError::NotBool`], [`ConfigEditError::PeerId`], and
    /// [`ConfigEditError::Set`] for a key not in the schema (`<key> not found`), a value of the
    /// wrong type (`cannot unmarshal string into config field <key> of type bool`), or a value
    /// cairn cannot use.
    pub fn set(
        &self,
        key: &str,
        raw: &str,
        kind: ValueKind,
    ) -> Result<SetOutcome, ConfigEditError> {
        guard(key)?;
        let value = match kind {
            ValueKind::String => Value::String(raw.to_string()),
            ValueKind::Json => {
                serde_json::from_str(raw).map_err(|e| ConfigEditError::Json(e.to_string()))?
            }
            ValueKind::Bool => {
                Value::Bool(parse_bool(raw).ok_or_else(|| ConfigEditError::NotBool(raw.into()))?)
            }
        };
        self.set_value(key, value)
    }

    /// Sets a dotted key to a JSON value; [`ConfigEdit::set`] after the text is parsed.
    ///
    /// # Errors
    /// As [`ConfigEdit::set`].
    pub fn set_value(&self, key: &str, value: Value) -> Result<SetOutcome, ConfigEditError> {
        guard(key)?;
        if key == "Identity.PeerID" && value.as_str() != Some(&self.config.identity.peer_id) {
            return Err(ConfigEditError::PeerId);
        }
        let set_err = |e: &dyn std::fmt::Display| ConfigEditError::Set(e.to_string());
        let resolved = schema::lookup(key).map_err(|e| set_err(&e))?;
        schema::check_value(key, resolved, &value).map_err(|e| set_err(&e))?;
        let mut doc = self.doc.clone();
        set_path(&mut doc, key, value).map_err(|e| set_err(&e))?;
        let config = typed(&doc).map_err(|e| ConfigEditError::Set(typed_reason(e)))?;
        let value = get_path(&config.to_value(), key)
            .cloned()
            .unwrap_or(Value::Null);
        let note = inert_note(&[key.to_string()]);
        Ok(SetOutcome {
            config,
            value,
            note,
        })
    }

    /// The config that `config/replace` stores for the JSON text `text`: every key must be in the
    /// schema and of its type; the identity stays the current one.
    ///
    /// # Errors
    /// [`ConfigEditError::Replace`] naming the unknown or mistyped key;
    /// [`ConfigEditError::ReplacePrivateKey`] when `text` carries another private key.
    pub fn replace(&self, text: &str) -> Result<Config, ConfigEditError> {
        let doc: Value =
            serde_json::from_str(text).map_err(|e| ConfigEditError::Replace(e.to_string()))?;
        schema::check_document(&doc).map_err(|e| ConfigEditError::Replace(e.to_string()))?;
        let mut new = typed(&doc).map_err(|e| ConfigEditError::Replace(typed_reason(e)))?;
        if !new.identity.priv_key.is_empty()
            && new.identity.priv_key != self.config.identity.priv_key
        {
            return Err(ConfigEditError::ReplacePrivateKey);
        }
        new.identity = self.config.identity.clone();
        Ok(new)
    }

    /// Applies one of Kubo's profiles by name ([`super::profile::PROFILES`]) and returns the
    /// config before and after, as `ipfs config profile apply` does.
    ///
    /// # Errors
    /// [`ConfigEditError::UnknownProfile`] (`<name> is not a profile`), or
    /// [`ConfigEditError::Profile`] when the result does not fit the schema or cairn's config.
    pub fn apply_profile(&self, name: &str) -> Result<ProfileOutcome, ConfigEditError> {
        let mut doc = self.doc.clone();
        super::profile::apply(name, &mut doc)?;
        let failed = |reason: String| ConfigEditError::Profile {
            name: name.to_string(),
            reason,
        };
        schema::check_document(&doc).map_err(|e: ValueError| failed(e.to_string()))?;
        let config = typed(&doc).map_err(|e| failed(typed_reason(e)))?;
        let new = config.to_value();
        let changed = schema::changed_keys(&self.doc, &new);
        let note = inert_note(&changed);
        Ok(ProfileOutcome {
            config,
            old: without_private_key(&self.doc),
            new: without_private_key(&new),
            changed,
            note,
        })
    }
}

/// What a config file holds beyond what cairn acts on, for the daemon's start-up lines.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct ConfigReport {
    /// Keys not in Kubo's schema (nor cairn's); kept, but Kubo 0.34+ would refuse to set them.
    pub unknown: Vec<String>,
    /// Keys set that cairn stores but does not act on ([`schema::inert_keys`]).
    pub inert: Vec<String>,
}

/// Looks over a config at start-up: which keys are unknown and which are set but not acted on.
///
/// # Errors
/// A key of the schema holding a value of the wrong type (Kubo refuses to start on such a config:
/// `failure to decode config`), as a [`ValueError`] naming the key.
pub fn report(config: &Config) -> Result<ConfigReport, ValueError> {
    let doc = config.to_value();
    let mut unknown = Vec::new();
    let mut known = Map::new();
    for (k, v) in doc.as_object().into_iter().flatten() {
        collect(k, v, &mut unknown, &mut known);
    }
    unknown.sort();
    let known = Value::Object(known);
    schema::check_document(&known)?;
    let defaults = Config::with_identity(config.identity.clone()).to_value();
    Ok(ConfigReport {
        unknown,
        inert: schema::inert_keys(&known, &defaults),
    })
}

/// Splits a top-level entry into the part the schema knows (into `known`) and the unknown keys.
fn collect(key: &str, value: &Value, unknown: &mut Vec<String>, known: &mut Map<String, Value>) {
    fn prune(path: &str, pattern: &str, v: &Value, unknown: &mut Vec<String>) -> Value {
        let Some(spec) = schema::spec(pattern) else {
            return v.clone();
        };
        match (spec.kind, v) {
            (schema::Kind::Object, Value::Object(obj)) => {
                let mut out = Map::new();
                for (k, child) in obj {
                    let cp = format!("{pattern}.{k}");
                    let ck = format!("{path}.{k}");
                    if schema::spec(&cp).is_some() {
                        out.insert(k.clone(), prune(&ck, &cp, child, unknown));
                    } else {
                        unknown.push(ck);
                    }
                }
                Value::Object(out)
            }
            (schema::Kind::Map, Value::Object(obj)) => {
                let cp = format!("{pattern}.*");
                Value::Object(
                    obj.iter()
                        .map(|(k, c)| (k.clone(), prune(&format!("{path}.{k}"), &cp, c, unknown)))
                        .collect(),
                )
            }
            _ => v.clone(),
        }
    }
    if schema::spec(key).is_some() {
        known.insert(key.to_string(), prune(key, key, value, unknown));
    } else {
        unknown.push(key.to_string());
    }
}

impl From<LookupError> for ConfigEditError {
    fn from(e: LookupError) -> Self {
        ConfigEditError::Set(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Identity;
    use serde_json::json;

    fn edit() -> ConfigEdit {
        ConfigEdit::new(&Config::with_identity(Identity {
            peer_id: "12D3KooWTest".into(),
            priv_key: "secret".into(),
            extra: Map::new(),
        }))
    }

    #[test]
    fn routing_type_dht_is_stored() {
        let e = edit();
        assert!(e.value().get("Routing").is_none());
        let out = e.set("Routing.Type", "dht", ValueKind::String).unwrap();
        assert_eq!(out.value, json!("dht"));
        assert_eq!(out.config.to_value()["Routing"]["Type"], "dht");
        assert_eq!(
            out.note.as_deref(),
            Some("cairn stores Routing.Type in the config but does not act on it")
        );
        assert_eq!(
            ConfigEdit::new(&out.config).get("Routing.Type").unwrap(),
            "dht"
        );
    }

    #[test]
    fn filestore_false_needs_json() {
        let e = edit();
        let out = e
            .set("Experimental.FilestoreEnabled", "false", ValueKind::Json)
            .unwrap();
        assert_eq!(out.value, json!(false));
        assert_eq!(
            out.config.to_value()["Experimental"]["FilestoreEnabled"],
            false
        );
        let err = e
            .set("Experimental.FilestoreEnabled", "false", ValueKind::String)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "failed to set config value: cannot unmarshal string into config field \
             Experimental.FilestoreEnabled of type bool (maybe use --json?)"
        );
        let out = e
            .set("Experimental.FilestoreEnabled", "true", ValueKind::Bool)
            .unwrap();
        assert_eq!(out.value, json!(true));
        assert!(matches!(
            e.set("Experimental.FilestoreEnabled", "yes", ValueKind::Bool),
            Err(ConfigEditError::NotBool(_))
        ));
    }

    #[test]
    fn unknown_key_is_refused_in_kubo_words() {
        let err = edit()
            .set(
                "Addresses.APII",
                "/ip4/127.0.0.1/tcp/5001",
                ValueKind::String,
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "failed to set config value: Addresses.APII not found (maybe use --json?)"
        );
        let err = edit().get("Addresses.APII").unwrap_err();
        assert_eq!(
            err.to_string(),
            "failed to get config value: \"Addresses.APII not found\""
        );
    }

    #[test]
    fn wrong_types_name_key_and_type() {
        let err = edit()
            .set("Swarm.ConnMgr.LowWater", "many", ValueKind::String)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "failed to set config value: cannot unmarshal string into config field \
             Swarm.ConnMgr.LowWater of type integer or null (maybe use --json?)"
        );
        let err = edit()
            .set("Discovery.MDNS.Enabled", "\"yes\"", ValueKind::Json)
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("Discovery.MDNS.Enabled of type bool"),
            "{err}"
        );
        // Kubo accepts negative integers here; cairn's connection manager cannot use them.
        let err = edit()
            .set("Swarm.ConnMgr.LowWater", "-1", ValueKind::Json)
            .unwrap_err();
        assert!(err.to_string().contains("Swarm.ConnMgr.LowWater"), "{err}");
    }

    #[test]
    fn secrets_and_identity() {
        assert!(matches!(
            edit().get("Identity"),
            Err(ConfigEditError::PrivateKey)
        ));
        assert!(matches!(
            edit().set("identity.privkey", "x", ValueKind::String),
            Err(ConfigEditError::PrivateKey)
        ));
        assert!(matches!(
            edit().get("Pinning.RemoteServices.svc.API.Key"),
            Err(ConfigEditError::PinningCredentials)
        ));
        assert!(matches!(
            edit().set("Identity.PeerID", "12D3KooWOther", ValueKind::String),
            Err(ConfigEditError::PeerId)
        ));
        assert!(
            edit()
                .set("Identity.PeerID", "12D3KooWTest", ValueKind::String)
                .is_ok()
        );
    }

    #[test]
    fn replace_checks_every_key() {
        let e = edit();
        let mut doc = without_private_key(e.value());
        doc["Addresses"]["APII"] = json!("x");
        let err = e.replace(&doc.to_string()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "failed to decode file as config: Addresses.APII not found"
        );
        let mut doc = without_private_key(e.value());
        doc["Routing"] = json!({"Type": "dht"});
        let new = e.replace(&doc.to_string()).unwrap();
        assert_eq!(new.identity.priv_key, "secret");
        assert_eq!(new.to_value()["Routing"]["Type"], "dht");
    }

    #[test]
    fn start_up_report() {
        let e = edit();
        let out = e.set("Routing.Type", "dht", ValueKind::String).unwrap();
        let mut config = out.config;
        config.extra.insert("Bogus".into(), json!(1));
        config.swarm.extra.insert("Typo".into(), json!(1));
        let r = report(&config).unwrap();
        assert_eq!(r.unknown, vec!["Bogus", "Swarm.Typo"]);
        assert_eq!(r.inert, vec!["Routing.Type"]);
        let fresh = report(&Config::with_identity(Identity::default())).unwrap();
        assert_eq!(fresh, ConfigReport::default());
    }
}

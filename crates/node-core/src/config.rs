//! The repo's `config` file: JSON with Kubo's key names and casing, so Kubo users and tools read
//! it as they read Kubo's. Keys cairn does not know are kept through a read/write round trip.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::error::RepoError;

pub mod edit;
pub mod profile;
pub mod schema;

pub use cairn_bootstrap::DEFAULT_BOOTSTRAP;
pub use edit::{ConfigEdit, ConfigEditError, ValueKind};

/// A list of strings that Kubo writes as `null` when empty, a bare string when it has one entry,
/// and an array otherwise (Kubo's `config.Strings`, used by `Addresses.API`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Strings(pub Vec<String>);

impl Serialize for Strings {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [] => s.serialize_none(),
            [one] => s.serialize_str(one),
            many => many.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Strings {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(String),
            Many(Vec<String>),
        }
        Ok(match Option::<Raw>::deserialize(d)? {
            None => Strings(Vec::new()),
            Some(Raw::One(s)) => Strings(vec![s]),
            Some(Raw::Many(v)) => Strings(v),
        })
    }
}

/// A list Kubo may write as `null` (`Bootstrap` after `bootstrap rm --all`).
fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

/// The whole config file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Config {
    /// The node's key pair.
    pub identity: Identity,
    /// Where the node listens.
    pub addresses: Addresses,
    /// Peers dialled to join the network (multiaddrs ending in `/p2p/<id>`).
    #[serde(deserialize_with = "null_as_empty")]
    pub bootstrap: Vec<String>,
    /// Local discovery.
    pub discovery: Discovery,
    /// Publish/subscribe.
    pub pubsub: Pubsub,
    /// Swarm tuning.
    pub swarm: SwarmConfig,
    /// The RPC API.
    #[serde(rename = "API")]
    pub api: ApiConfig,
    /// Storage limits.
    pub datastore: DatastoreConfig,
    /// Keys cairn does not interpret, kept as they were.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `Identity`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Identity {
    /// The peer id, base58.
    #[serde(rename = "PeerID")]
    pub peer_id: String,
    /// The private key: base64 of the libp2p protobuf encoding (Kubo's format).
    #[serde(rename = "PrivKey")]
    pub priv_key: String,
    /// Unknown keys, kept.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `Addresses`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Addresses {
    /// Swarm listen addresses.
    #[serde(deserialize_with = "null_as_empty")]
    pub swarm: Vec<String>,
    /// RPC API listen address(es).
    #[serde(rename = "API")]
    pub api: Strings,
    /// Gateway listen address(es): where `cairn daemon` serves the HTTP gateway (none when empty).
    pub gateway: Strings,
    /// Addresses announced instead of the listen addresses.
    #[serde(deserialize_with = "null_as_empty")]
    pub announce: Vec<String>,
    /// Addresses never announced.
    #[serde(deserialize_with = "null_as_empty")]
    pub no_announce: Vec<String>,
    /// Unknown keys, kept.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Default for Addresses {
    fn default() -> Self {
        Addresses {
            swarm: [
                "/ip4/0.0.0.0/tcp/4001",
                "/ip6/::/tcp/4001",
                "/ip4/0.0.0.0/udp/4001/quic-v1",
                "/ip6/::/udp/4001/quic-v1",
            ]
            .map(String::from)
            .to_vec(),
            api: Strings(vec!["/ip4/127.0.0.1/tcp/5001".into()]),
            gateway: Strings(vec!["/ip4/127.0.0.1/tcp/8080".into()]),
            announce: Vec::new(),
            no_announce: Vec::new(),
            extra: Map::new(),
        }
    }
}

/// `Discovery`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Discovery {
    /// `Discovery.MDNS`.
    #[serde(rename = "MDNS")]
    pub mdns: Mdns,
    /// Unknown keys, kept.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `Discovery.MDNS`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Mdns {
    /// Whether mDNS discovery runs (on by default, as in Kubo).
    pub enabled: bool,
    /// Unknown keys, kept.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Default for Mdns {
    fn default() -> Self {
        Mdns {
            enabled: true,
            extra: Map::new(),
        }
    }
}

/// `Pubsub`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Pubsub {
    /// Whether pubsub runs. Unset means off, as in Kubo.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// `""` or `gossipsub` (the only router cairn has).
    pub router: String,
    /// Kubo's test-only switch; cairn always signs and refuses to start with it set.
    pub disable_signing: bool,
    /// Unknown keys, kept.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `Swarm`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SwarmConfig {
    /// `Swarm.ConnMgr`.
    pub conn_mgr: ConnMgrConfig,
    /// Unknown keys, kept.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `Swarm.ConnMgr`: trim connections to `LowWater` when above `HighWater`, sparing peers
/// connected for less than `GracePeriod`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ConnMgrConfig {
    /// `basic` (default) or `none`.
    #[serde(rename = "Type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Trim down to this many peers.
    pub low_water: Option<u32>,
    /// Trim when above this many peers.
    pub high_water: Option<u32>,
    /// New connections are spared this long (Go duration, e.g. `20s`).
    pub grace_period: Option<String>,
    /// Minimum time between trims (Go duration; Kubo's default `10s`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub silence_period: Option<String>,
    /// Unknown keys, kept.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Default for ConnMgrConfig {
    fn default() -> Self {
        ConnMgrConfig {
            kind: None,
            low_water: Some(32),
            high_water: Some(96),
            grace_period: Some("20s".into()),
            silence_period: None,
            extra: Map::new(),
        }
    }
}

/// `API`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ApiConfig {
    /// Headers added to every RPC response; `Access-Control-Allow-*` feed the CORS check.
    #[serde(rename = "HTTPHeaders")]
    pub http_headers: BTreeMap<String, Vec<String>>,
    /// Named RPC credentials; when any exist, every request must present one.
    pub authorizations: BTreeMap<String, Authorization>,
    /// Unknown keys, kept.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One entry of `API.Authorizations`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Authorization {
    /// `bearer:<token>`, `basic:<user>:<password>` or `basic:<base64>`.
    pub auth_secret: String,
    /// Path prefixes this secret may call (`/api/v0` for all).
    pub allowed_paths: Vec<String>,
    /// Unknown keys, kept.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `Datastore`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DatastoreConfig {
    /// Size the repo may grow to (`10GB`).
    pub storage_max: String,
    /// GC watermark, percent of `StorageMax`.
    #[serde(rename = "StorageGCWatermark")]
    pub storage_gc_watermark: i64,
    /// How often automatic GC runs (Go duration).
    #[serde(rename = "GCPeriod")]
    pub gc_period: String,
    /// Whether every acknowledged write is fsynced first (unset means true, as Kubo's default
    /// datastore syncs). `false` opts into buffered writes: a crash may lose what was acknowledged
    /// in the last 500 ms (sled's flush interval), never corrupts what was flushed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync: Option<bool>,
    /// Unknown keys, kept.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Default for DatastoreConfig {
    fn default() -> Self {
        DatastoreConfig {
            storage_max: "10GB".into(),
            storage_gc_watermark: 90,
            gc_period: "1h".into(),
            sync: None,
            extra: Map::new(),
        }
    }
}

impl DatastoreConfig {
    /// `StorageMax` in bytes (Kubo's units: `10GB` is 10^10, `1GiB` is 2^30), or `None` if it
    /// does not parse.
    pub fn storage_max_bytes(&self) -> Option<u64> {
        parse_size(&self.storage_max)
    }

    /// `GCPeriod` as a duration, or `None` if it does not parse.
    pub fn gc_period(&self) -> Option<Duration> {
        parse_go_duration(&self.gc_period)
    }

    /// The repo size above which the daemon's `--enable-gc` collects:
    /// `StorageMax × StorageGCWatermark / 100`, as Kubo computes it.
    pub fn gc_watermark_bytes(&self) -> Option<u64> {
        let max = self.storage_max_bytes()?;
        let percent = u64::try_from(self.storage_gc_watermark.clamp(0, 100)).ok()?;
        Some(max / 100 * percent)
    }
}

/// Parses a size as Kubo's config writes them (`10GB`, `500MiB`, `1.5 MiB`, `1024`).
pub fn parse_size(text: &str) -> Option<u64> {
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

/// Kubo-style config profiles, applied on top of the defaults at init.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Profile {
    /// For tests: everything on 127.0.0.1 with port 0, no bootstrap peers, mDNS off.
    Test,
    /// For data-centre hosts: mDNS off (no multicast on provider networks).
    Server,
    /// For a local network of your own: mDNS on, no public bootstrap peers.
    Lan,
    /// Any other of Kubo's profiles by name ([`profile::PROFILES`]), applied as
    /// `config profile apply` applies it (e.g. `cairn init --profile lowpower`).
    Kubo(&'static str),
}

impl std::str::FromStr for Profile {
    type Err = RepoError;
    fn from_str(s: &str) -> Result<Self, RepoError> {
        match s {
            "test" => Ok(Profile::Test),
            "server" => Ok(Profile::Server),
            "lan" => Ok(Profile::Lan),
            other => profile::PROFILES
                .iter()
                .find(|(name, _)| *name == other)
                .map(|(name, _)| Profile::Kubo(name))
                .ok_or_else(|| RepoError::UnknownProfile(other.to_string())),
        }
    }
}

impl Profile {
    /// Applies the profile to a config.
    pub fn apply(self, config: &mut Config) {
        match self {
            Profile::Test => {
                config.addresses.swarm = vec![
                    "/ip4/127.0.0.1/tcp/0".into(),
                    "/ip4/127.0.0.1/udp/0/quic-v1".into(),
                ];
                config.addresses.api = Strings(vec!["/ip4/127.0.0.1/tcp/0".into()]);
                config.addresses.gateway = Strings(vec!["/ip4/127.0.0.1/tcp/0".into()]);
                config.bootstrap.clear();
                config.discovery.mdns.enabled = false;
            }
            Profile::Server => config.discovery.mdns.enabled = false,
            Profile::Lan => {
                config.discovery.mdns.enabled = true;
                config.bootstrap.clear();
            }
            Profile::Kubo(name) => match ConfigEdit::new(config).apply_profile(name) {
                Ok(out) => *config = out.config,
                Err(e) => tracing::warn!("profile {name} not applied: {e}"),
            },
        }
    }
}

impl Config {
    /// Kubo's defaults, with the given identity.
    pub fn with_identity(identity: Identity) -> Self {
        Config {
            identity,
            bootstrap: DEFAULT_BOOTSTRAP.iter().map(|s| s.to_string()).collect(),
            ..Config::default()
        }
    }

    /// Parses a config file's text; an error names the key that is wrong.
    pub fn from_json(text: &str, path: &Path) -> Result<Self, RepoError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(de).map_err(|e| RepoError::MalformedConfig {
            path: path.to_path_buf(),
            key: e.path().to_string(),
            reason: e.inner().to_string(),
        })
    }

    /// The config as Kubo writes it: indented JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("config serialises")
    }

    /// The config as a JSON value (for `config show` and key lookups).
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("config serialises")
    }

    /// The `Bootstrap` entries to dial, with Kubo 0.37+'s `"auto"` placeholder (written by Kubo's
    /// `init` and the `default-networking`/`autoconf-on` profiles) replaced by Kubo's public
    /// default list: cairn has no AutoConf client, and the default list is what AutoConf serves
    /// for mainnet.
    pub fn bootstrap_entries(&self) -> Vec<&str> {
        self.bootstrap
            .iter()
            .flat_map(|e| match e.as_str() {
                "auto" => DEFAULT_BOOTSTRAP.to_vec(),
                other => vec![other],
            })
            .collect()
    }

    /// Whether pubsub is on.
    pub fn pubsub_enabled(&self) -> bool {
        self.pubsub.enabled.unwrap_or(false)
    }
}

/// Parses a Go duration string (`"20s"`, `"1m30s"`, `"500ms"`, `"1h"`).
pub fn parse_go_duration(text: &str) -> Option<Duration> {
    let mut rest = text.trim();
    if rest == "0" {
        return Some(Duration::ZERO);
    }
    let mut total = Duration::ZERO;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let number: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += Duration::try_from_secs_f64(number * scale).ok()?;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("20s"), Some(Duration::from_secs(20)));
        assert_eq!(parse_go_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_go_duration("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("0"), Some(Duration::ZERO));
        for bad in ["", "s", "20", "20x", "-1s", "1e400s"] {
            assert_eq!(parse_go_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn unknown_keys_survive_a_round_trip() {
        let text = r#"{"Identity":{"PeerID":"x","PrivKey":"y","Future":1},
            "Addresses":{"Swarm":[],"API":"/ip4/127.0.0.1/tcp/5001","Gateway":null,"Extra":[1]},
            "Bootstrap":null,"Gateway":{"NoFetch":true},"Swarm":{"ConnMgr":{"LowWater":1},"Other":"z"}}"#;
        let config = Config::from_json(text, Path::new("config")).unwrap();
        assert!(config.bootstrap.is_empty());
        assert_eq!(config.addresses.api.0, vec!["/ip4/127.0.0.1/tcp/5001"]);
        let back = config.to_value();
        assert_eq!(back["Identity"]["Future"], 1);
        assert_eq!(back["Addresses"]["Extra"][0], 1);
        assert_eq!(back["Addresses"]["API"], "/ip4/127.0.0.1/tcp/5001");
        assert_eq!(back["Gateway"]["NoFetch"], true);
        assert_eq!(back["Swarm"]["Other"], "z");
        assert_eq!(back["Swarm"]["ConnMgr"]["LowWater"], 1);
        let again = Config::from_json(&config.to_json(), Path::new("config")).unwrap();
        assert_eq!(again, config);
    }

    #[test]
    fn malformed_config_names_the_key() {
        let err = Config::from_json(
            r#"{"Swarm":{"ConnMgr":{"LowWater":"many"}}}"#,
            Path::new("/r/config"),
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("at key Swarm.ConnMgr.LowWater"), "{msg}");
        let err = Config::from_json("{not json", Path::new("/r/config")).unwrap_err();
        assert!(
            err.to_string().starts_with("malformed config /r/config"),
            "{err}"
        );
    }

    #[test]
    fn auto_bootstrap_is_kubos_default_list() {
        let mut c = Config::with_identity(Identity::default());
        c.bootstrap = vec!["auto".into(), "/ip4/1.2.3.4/tcp/4001/p2p/x".into()];
        let entries = c.bootstrap_entries();
        assert_eq!(entries.len(), DEFAULT_BOOTSTRAP.len() + 1);
        assert_eq!(entries[..DEFAULT_BOOTSTRAP.len()], *DEFAULT_BOOTSTRAP);
        assert_eq!(
            entries[DEFAULT_BOOTSTRAP.len()],
            "/ip4/1.2.3.4/tcp/4001/p2p/x"
        );
    }

    #[test]
    fn profiles() {
        let mut c = Config::with_identity(Identity::default());
        assert_eq!(c.swarm.conn_mgr.low_water, Some(32));
        assert!(c.discovery.mdns.enabled);
        Profile::Test.apply(&mut c);
        assert!(c.bootstrap.is_empty() && !c.discovery.mdns.enabled);
        assert!(
            c.addresses
                .swarm
                .iter()
                .all(|a| a.starts_with("/ip4/127.0.0.1/"))
        );
        assert!("nope".parse::<Profile>().is_err());
        let mut c = Config::with_identity(Identity::default());
        "lowpower".parse::<Profile>().unwrap().apply(&mut c);
        assert_eq!(c.swarm.conn_mgr.low_water, Some(20));
        assert_eq!(c.to_value()["Routing"]["Type"], "autoclient");
    }
}

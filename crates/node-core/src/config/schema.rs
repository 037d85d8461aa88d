//! Kubo's config schema: every key of Kubo's `config.Config` (kubo `config/*.go`, documented in
//! kubo `docs/config.md`) with the JSON type Kubo decodes it as, plus cairn's own keys.
//!
//! Kubo 0.34+ refuses `ipfs config KEY VALUE` for a key its config structs do not have
//! (`config.CheckKey`), and refuses to decode a config whose values have the wrong type. cairn
//! follows both with this table: [`lookup`] answers whether a dotted key exists and what it holds,
//! [`check_value`] whether a JSON value fits it. The table also records which keys cairn acts on,
//! so that `config` and the daemon can say when a key is stored but has no effect in cairn.
//!
//! Free-key maps (`API.Authorizations`, `Gateway.PublicGateways`, `Routing.Routers`, ...) are
//! written with a `*` segment for the free key; the items of `Peering.Peers` (an array of objects)
//! with a `[]` segment.

use serde_json::Value;

use super::parse_go_duration;
use super::parse_size;

/// The JSON shape a config key holds, named after the Go type Kubo decodes it into.
///
/// Every kind accepts `null` as Go's decoder does (a `null` leaves a Go field at its zero value),
/// except [`Kind::Removed`] keys which accept only `null` or an empty object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// A struct: an object whose keys are the entries below it in the table.
    Object,
    /// A map with free keys (Go `map[string]T`); the value type is the `*` entry below it.
    Map,
    /// Anything (Go `any`): `Datastore.Params`, `Routing.Routers.*.Parameters`, `Cairn`.
    Any,
    /// A JSON string (Go `string`).
    String,
    /// `true` or `false` (Go `bool`).
    Bool,
    /// An integer number (Go `int`/`int64`).
    Integer,
    /// Kubo's `Flag`: `true`, `false` or `null` (the default).
    Flag,
    /// Kubo's `Priority`: a positive integer, `false` (disabled) or `null` (default).
    Priority,
    /// Kubo's `OptionalInteger`: an integer or `null`.
    OptionalInteger,
    /// Kubo's `OptionalString`: a string or `null`.
    OptionalString,
    /// Kubo's `OptionalDuration`: a Go duration string (`"30s"`, `"1h0m0s"`) or `null`.
    OptionalDuration,
    /// Kubo's `OptionalBytes`: a size string (`"5GiB"`) or a number of bytes, or `null`.
    OptionalBytes,
    /// Kubo's `Duration` (router timeouts): a Go duration string or a number of nanoseconds.
    Duration,
    /// An array of strings (Go `[]string`).
    StringArray,
    /// Kubo's `Strings`: one string or an array of strings (`Addresses.API`).
    Strings,
    /// An array of objects whose keys are the `[]` entries below it (`Peering.Peers`).
    ObjectArray,
    /// A string out of a fixed set (Kubo's text-unmarshalled enums such as `AutoNAT.ServiceMode`).
    Enum(&'static [&'static str]),
    /// A key Kubo removed but still decodes to give its message: only `null` or `{}` pass, anything
    /// else fails with this text (Kubo's wording).
    Removed(&'static str),
}

impl Kind {
    /// How the type is named in a wrong-type error.
    pub fn describe(self) -> &'static str {
        match self {
            Kind::Object | Kind::Map => "object",
            Kind::Any => "any JSON value",
            Kind::String => "string",
            Kind::Bool => "bool",
            Kind::Integer => "integer",
            Kind::Flag => "flag (true, false or null)",
            Kind::Priority => "priority (a positive integer, false or null)",
            Kind::OptionalInteger => "integer or null",
            Kind::OptionalString => "string or null",
            Kind::OptionalDuration => "duration string (e.g. \"30s\") or null",
            Kind::OptionalBytes => "byte size (e.g. \"5GiB\" or a number) or null",
            Kind::Duration => "duration string (e.g. \"30s\") or nanoseconds",
            Kind::StringArray => "array of strings",
            Kind::Strings => "string or array of strings",
            Kind::ObjectArray => "array of objects",
            Kind::Enum(_) => "one of the listed strings",
            Kind::Removed(_) => "removed key",
        }
    }

    /// Whether values of this kind are objects with keys of their own (structs and maps).
    pub fn has_children(self) -> bool {
        matches!(self, Kind::Object | Kind::Map)
    }
}

/// One key of the schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeySpec {
    /// The dotted path; `*` stands for a free map key, `[]` for an array item.
    pub path: &'static str,
    /// What the key holds.
    pub kind: Kind,
    /// Whether cairn reads the key and acts on it (otherwise it is only stored, for Kubo tools).
    pub acted: bool,
    /// Whether the key is cairn's own (not in Kubo's config).
    pub cairn_only: bool,
}

const fn kubo(path: &'static str, kind: Kind) -> KeySpec {
    KeySpec {
        path,
        kind,
        acted: false,
        cairn_only: false,
    }
}

const fn acted(path: &'static str, kind: Kind) -> KeySpec {
    KeySpec {
        path,
        kind,
        acted: true,
        cairn_only: false,
    }
}

const fn cairn(path: &'static str, kind: Kind) -> KeySpec {
    KeySpec {
        path,
        kind,
        acted: true,
        cairn_only: true,
    }
}

use Kind::*;

/// Kubo's `AcceleratedDHTClient` message for the old `Experimental` key (kubo `config/types.go`).
const ACCELERATED_MOVED: &str = "The Experimental.AcceleratedDHTClient key has been moved to Routing.AcceleratedDHTClient in Kubo 0.21, please use this new key and remove the old one.";
/// Kubo's message for `Experimental.GraphsyncEnabled` (kubo `config/types.go`).
const GRAPHSYNC_REMOVED: &str = "Support for Experimental.GraphsyncEnabled has been removed in Kubo 0.25.0, please remove this key. For more details see https://github.com/ipfs/kubo/pull/9747.";
/// Kubo's message for `Swarm.ResourceMgr.Limits` (kubo `config/types.go`).
const LIMITS_REMOVED: &str = "The Swarm.ResourceMgr.Limits configuration has been removed in Kubo 0.19 and should be empty or not present. To set custom libp2p limits, read https://github.com/ipfs/kubo/blob/master/docs/libp2p-resource-management.md#user-supplied-override-limits";

/// The whole schema, sorted by path (byte order), so [`lookup`] can binary-search it.
///
/// Source: kubo `config/*.go` at 0.44-dev (the structs `config.CheckKey` walks); the keys
/// docs/config.md lists as removed (`Gateway.Writable`, `Swarm.EnableAutoRelay`, ...) are not
/// in Kubo's structs and so are refused, as Kubo refuses them. `Cairn` and `Datastore.Sync` are
/// cairn's own.
pub static SCHEMA: &[KeySpec] = &[
    acted("API", Object),
    acted("API.Authorizations", Map),
    acted("API.Authorizations.*", Object),
    acted("API.Authorizations.*.AllowedPaths", StringArray),
    acted("API.Authorizations.*.AuthSecret", String),
    acted("API.HTTPHeaders", Map),
    acted("API.HTTPHeaders.*", StringArray),
    acted("Addresses", Object),
    acted("Addresses.API", Strings),
    kubo("Addresses.Announce", StringArray),
    kubo("Addresses.AppendAnnounce", StringArray),
    acted("Addresses.Gateway", Strings),
    kubo("Addresses.NoAnnounce", StringArray),
    acted("Addresses.Swarm", StringArray),
    kubo("AutoConf", Object),
    kubo("AutoConf.Enabled", Flag),
    kubo("AutoConf.RefreshInterval", OptionalDuration),
    kubo("AutoConf.TLSInsecureSkipVerify", Flag),
    kubo("AutoConf.URL", OptionalString),
    kubo("AutoNAT", Object),
    kubo(
        "AutoNAT.ServiceMode",
        Enum(&["", "enabled", "disabled", "legacy-v1"]),
    ),
    kubo("AutoNAT.Throttle", Object),
    kubo("AutoNAT.Throttle.GlobalLimit", Integer),
    kubo("AutoNAT.Throttle.Interval", OptionalDuration),
    kubo("AutoNAT.Throttle.PeerLimit", Integer),
    kubo("AutoTLS", Object),
    kubo("AutoTLS.AutoWSS", Flag),
    kubo("AutoTLS.CAEndpoint", OptionalString),
    kubo("AutoTLS.DomainSuffix", OptionalString),
    kubo("AutoTLS.Enabled", Flag),
    kubo("AutoTLS.RegistrationDelay", OptionalDuration),
    kubo("AutoTLS.RegistrationEndpoint", OptionalString),
    kubo("AutoTLS.RegistrationToken", OptionalString),
    kubo("AutoTLS.ShortAddrs", Flag),
    kubo("AutoTLS.SkipDNSLookup", Flag),
    kubo("Bitswap", Object),
    kubo("Bitswap.Libp2pEnabled", Flag),
    kubo("Bitswap.ServerEnabled", Flag),
    acted("Bootstrap", StringArray),
    cairn("Cairn", Any),
    kubo("DNS", Object),
    kubo("DNS.MaxCacheTTL", OptionalDuration),
    kubo("DNS.Resolvers", Map),
    kubo("DNS.Resolvers.*", String),
    acted("Datastore", Object),
    kubo("Datastore.BlockKeyCacheSize", OptionalInteger),
    kubo("Datastore.BloomFilterSize", Integer),
    acted("Datastore.GCPeriod", String),
    kubo("Datastore.HashOnRead", Bool),
    kubo("Datastore.NoSync", Bool),
    kubo("Datastore.Params", Any),
    kubo("Datastore.Path", String),
    kubo("Datastore.Spec", Map),
    kubo("Datastore.Spec.*", Any),
    acted("Datastore.StorageGCWatermark", Integer),
    acted("Datastore.StorageMax", String),
    cairn("Datastore.Sync", Bool),
    kubo("Datastore.Type", String),
    kubo("Datastore.WriteThrough", Flag),
    acted("Discovery", Object),
    acted("Discovery.MDNS", Object),
    acted("Discovery.MDNS.Enabled", Bool),
    kubo("Experimental", Object),
    kubo(
        "Experimental.AcceleratedDHTClient",
        Removed(ACCELERATED_MOVED),
    ),
    kubo("Experimental.FilestoreEnabled", Bool),
    kubo("Experimental.GatewayOverLibp2p", Bool),
    kubo("Experimental.GraphsyncEnabled", Removed(GRAPHSYNC_REMOVED)),
    kubo("Experimental.Libp2pStreamMounting", Bool),
    kubo("Experimental.OptimisticProvide", Bool),
    kubo("Experimental.OptimisticProvideJobsPoolSize", Integer),
    kubo("Experimental.P2pHttpProxy", Bool),
    kubo("Experimental.ShardingEnabled", Bool),
    kubo("Experimental.StrategicProviding", Bool),
    kubo("Experimental.UrlstoreEnabled", Bool),
    acted("Gateway", Object),
    kubo("Gateway.AllowCodecConversion", Flag),
    acted("Gateway.DeserializedResponses", Flag),
    kubo("Gateway.DiagnosticServiceURL", OptionalString),
    kubo("Gateway.DisableHTMLErrors", Flag),
    kubo("Gateway.ExposeRoutingAPI", Flag),
    acted("Gateway.HTTPHeaders", Map),
    acted("Gateway.HTTPHeaders.*", StringArray),
    acted("Gateway.MaxConcurrentRequests", OptionalInteger),
    acted("Gateway.MaxRangeRequestFileSize", OptionalBytes),
    acted("Gateway.MaxRequestDuration", OptionalDuration),
    kubo("Gateway.NoDNSLink", Bool),
    acted("Gateway.NoFetch", Bool),
    kubo("Gateway.PublicGateways", Map),
    kubo("Gateway.PublicGateways.*", Object),
    kubo("Gateway.PublicGateways.*.DeserializedResponses", Flag),
    kubo("Gateway.PublicGateways.*.InlineDNSLink", Flag),
    kubo("Gateway.PublicGateways.*.NoDNSLink", Bool),
    kubo("Gateway.PublicGateways.*.Paths", StringArray),
    kubo("Gateway.PublicGateways.*.UseSubdomains", Bool),
    acted("Gateway.RetrievalTimeout", OptionalDuration),
    acted("Gateway.RootRedirect", String),
    kubo("HTTPRetrieval", Object),
    kubo("HTTPRetrieval.Allowlist", StringArray),
    kubo("HTTPRetrieval.Denylist", StringArray),
    kubo("HTTPRetrieval.Enabled", Flag),
    kubo("HTTPRetrieval.MaxBlockSize", OptionalString),
    kubo("HTTPRetrieval.NumWorkers", OptionalInteger),
    kubo("HTTPRetrieval.TLSInsecureSkipVerify", Flag),
    acted("Identity", Object),
    acted("Identity.PeerID", String),
    acted("Identity.PrivKey", String),
    kubo("Import", Object),
    kubo("Import.BatchMaxNodes", OptionalInteger),
    kubo("Import.BatchMaxSize", OptionalInteger),
    kubo("Import.CidVersion", OptionalInteger),
    kubo("Import.FastProvideDAG", Flag),
    kubo("Import.FastProvideRoot", Flag),
    kubo("Import.FastProvideWait", Flag),
    kubo("Import.HashFunction", OptionalString),
    kubo("Import.UnixFSChunker", OptionalString),
    kubo("Import.UnixFSDAGLayout", OptionalString),
    kubo("Import.UnixFSDirectoryMaxLinks", OptionalInteger),
    kubo("Import.UnixFSFileMaxLinks", OptionalInteger),
    kubo("Import.UnixFSHAMTDirectoryMaxFanout", OptionalInteger),
    kubo("Import.UnixFSHAMTDirectorySizeEstimation", OptionalString),
    kubo("Import.UnixFSHAMTDirectorySizeThreshold", OptionalBytes),
    kubo("Import.UnixFSRawLeaves", Flag),
    kubo("Internal", Object),
    kubo("Internal.BackupBootstrapInterval", OptionalDuration),
    kubo("Internal.Bitswap", Object),
    kubo("Internal.Bitswap.BroadcastControl", Object),
    kubo("Internal.Bitswap.BroadcastControl.Enable", Flag),
    kubo("Internal.Bitswap.BroadcastControl.LocalPeers", Flag),
    kubo(
        "Internal.Bitswap.BroadcastControl.MaxPeers",
        OptionalInteger,
    ),
    kubo(
        "Internal.Bitswap.BroadcastControl.MaxRandomPeers",
        OptionalInteger,
    ),
    kubo("Internal.Bitswap.BroadcastControl.PeeredPeers", Flag),
    kubo("Internal.Bitswap.BroadcastControl.SendToPendingPeers", Flag),
    kubo(
        "Internal.Bitswap.EngineBlockstoreWorkerCount",
        OptionalInteger,
    ),
    kubo("Internal.Bitswap.EngineTaskWorkerCount", OptionalInteger),
    kubo(
        "Internal.Bitswap.MaxOutstandingBytesPerPeer",
        OptionalInteger,
    ),
    kubo("Internal.Bitswap.ProviderSearchDelay", OptionalDuration),
    kubo("Internal.Bitswap.ProviderSearchMaxResults", OptionalInteger),
    kubo("Internal.Bitswap.TaskWorkerCount", OptionalInteger),
    kubo("Internal.Bitswap.WantHaveReplaceSize", OptionalInteger),
    kubo("Internal.CGNATCheck", Flag),
    kubo("Internal.DeadListenerCheck", Flag),
    kubo("Internal.Libp2pForceReachability", OptionalString),
    kubo("Internal.MFSNoFlushLimit", OptionalInteger),
    kubo("Internal.NonPublicAddrPublishing", Flag),
    kubo("Internal.ShutdownTimeout", OptionalDuration),
    kubo("Internal.UnixFSShardingSizeThreshold", OptionalString),
    kubo("Ipns", Object),
    kubo("Ipns.DelegatedPublishers", StringArray),
    kubo("Ipns.MaxCacheTTL", OptionalDuration),
    kubo("Ipns.RecordLifetime", String),
    kubo("Ipns.RepublishPeriod", String),
    kubo("Ipns.ResolveCacheSize", Integer),
    kubo("Ipns.UsePubsub", Flag),
    kubo("Migration", Object),
    kubo("Migration.DownloadSources", StringArray),
    kubo("Migration.Keep", String),
    kubo("Mounts", Object),
    kubo("Mounts.FuseAllowOther", Flag),
    kubo("Mounts.IPFS", String),
    kubo("Mounts.IPNS", String),
    kubo("Mounts.MFS", String),
    kubo("Mounts.StoreMode", Flag),
    kubo("Mounts.StoreMtime", Flag),
    kubo("Peering", Object),
    kubo("Peering.Peers", ObjectArray),
    kubo("Peering.Peers.[]", Object),
    kubo("Peering.Peers.[].Addrs", StringArray),
    kubo("Peering.Peers.[].ID", String),
    kubo("Pinning", Object),
    kubo("Pinning.RemoteServices", Map),
    kubo("Pinning.RemoteServices.*", Object),
    kubo("Pinning.RemoteServices.*.API", Object),
    kubo("Pinning.RemoteServices.*.API.Endpoint", String),
    kubo("Pinning.RemoteServices.*.API.Key", String),
    kubo("Pinning.RemoteServices.*.Policies", Object),
    kubo("Pinning.RemoteServices.*.Policies.MFS", Object),
    kubo("Pinning.RemoteServices.*.Policies.MFS.Enable", Bool),
    kubo("Pinning.RemoteServices.*.Policies.MFS.PinName", String),
    kubo(
        "Pinning.RemoteServices.*.Policies.MFS.RepinInterval",
        String,
    ),
    kubo("Plugins", Object),
    kubo("Plugins.Plugins", Map),
    kubo("Plugins.Plugins.*", Object),
    kubo("Plugins.Plugins.*.Config", Any),
    kubo("Plugins.Plugins.*.Disabled", Bool),
    acted("Provide", Object),
    kubo("Provide.BloomFPRate", OptionalInteger),
    acted("Provide.DHT", Object),
    kubo("Provide.DHT.DedicatedBurstWorkers", OptionalInteger),
    kubo("Provide.DHT.DedicatedPeriodicWorkers", OptionalInteger),
    acted("Provide.DHT.Interval", OptionalDuration),
    kubo("Provide.DHT.KeystoreBatchSize", OptionalInteger),
    kubo("Provide.DHT.MaxProvideConnsPerWorker", OptionalInteger),
    kubo("Provide.DHT.MaxWorkers", OptionalInteger),
    kubo("Provide.DHT.OfflineDelay", OptionalDuration),
    kubo("Provide.DHT.ResumeEnabled", Flag),
    kubo("Provide.DHT.SendProviderRecordTimeout", OptionalDuration),
    kubo("Provide.DHT.SweepEnabled", Flag),
    acted("Provide.Enabled", Flag),
    acted("Provide.Strategy", OptionalString),
    kubo("Provider", Object),
    kubo("Provider.Enabled", Flag),
    kubo("Provider.Strategy", OptionalString),
    kubo("Provider.WorkerCount", OptionalInteger),
    acted("Pubsub", Object),
    acted("Pubsub.DisableSigning", Bool),
    acted("Pubsub.Enabled", Flag),
    acted("Pubsub.Router", String),
    kubo("Pubsub.SeenMessagesStrategy", OptionalString),
    kubo("Pubsub.SeenMessagesTTL", OptionalDuration),
    acted("Reprovider", Object),
    acted("Reprovider.Interval", OptionalDuration),
    acted("Reprovider.Strategy", OptionalString),
    kubo("Routing", Object),
    kubo("Routing.AcceleratedDHTClient", Flag),
    kubo("Routing.DelegatedRouters", StringArray),
    kubo("Routing.IgnoreProviders", StringArray),
    kubo("Routing.LoopbackAddressesOnLanDHT", Flag),
    kubo("Routing.Methods", Map),
    kubo("Routing.Methods.*", Object),
    kubo("Routing.Methods.*.RouterName", String),
    kubo("Routing.Routers", Map),
    kubo("Routing.Routers.*", Object),
    kubo("Routing.Routers.*.Parameters", Any),
    kubo("Routing.Routers.*.Type", String),
    kubo("Routing.Type", OptionalString),
    acted("Swarm", Object),
    kubo("Swarm.AddrFilters", StringArray),
    acted("Swarm.ConnMgr", Object),
    acted("Swarm.ConnMgr.GracePeriod", OptionalDuration),
    acted("Swarm.ConnMgr.HighWater", OptionalInteger),
    acted("Swarm.ConnMgr.LowWater", OptionalInteger),
    acted("Swarm.ConnMgr.SilencePeriod", OptionalDuration),
    acted("Swarm.ConnMgr.Type", OptionalString),
    kubo("Swarm.DisableBandwidthMetrics", Bool),
    kubo("Swarm.DisableNatPortMap", Bool),
    kubo("Swarm.EnableHolePunching", Flag),
    kubo("Swarm.RelayClient", Object),
    kubo("Swarm.RelayClient.Enabled", Flag),
    kubo("Swarm.RelayClient.StaticRelays", StringArray),
    kubo("Swarm.RelayService", Object),
    kubo("Swarm.RelayService.BufferSize", OptionalInteger),
    kubo("Swarm.RelayService.ConnectionDataLimit", OptionalInteger),
    kubo(
        "Swarm.RelayService.ConnectionDurationLimit",
        OptionalDuration,
    ),
    kubo("Swarm.RelayService.Enabled", Flag),
    kubo("Swarm.RelayService.MaxCircuits", OptionalInteger),
    kubo("Swarm.RelayService.MaxReservations", OptionalInteger),
    kubo("Swarm.RelayService.MaxReservationsPerASN", OptionalInteger),
    kubo("Swarm.RelayService.MaxReservationsPerIP", OptionalInteger),
    kubo("Swarm.RelayService.ReservationTTL", OptionalDuration),
    kubo("Swarm.ResourceMgr", Object),
    kubo("Swarm.ResourceMgr.Allowlist", StringArray),
    kubo("Swarm.ResourceMgr.Enabled", Flag),
    kubo("Swarm.ResourceMgr.Limits", Removed(LIMITS_REMOVED)),
    kubo("Swarm.ResourceMgr.MaxFileDescriptors", OptionalInteger),
    kubo("Swarm.ResourceMgr.MaxMemory", OptionalBytes),
    kubo("Swarm.Transports", Object),
    kubo("Swarm.Transports.Multiplexers", Object),
    kubo("Swarm.Transports.Multiplexers.Yamux", Priority),
    kubo("Swarm.Transports.Network", Object),
    kubo("Swarm.Transports.Network.QUIC", Flag),
    kubo("Swarm.Transports.Network.Relay", Flag),
    kubo("Swarm.Transports.Network.TCP", Flag),
    kubo("Swarm.Transports.Network.WebRTCDirect", Flag),
    kubo("Swarm.Transports.Network.WebTransport", Flag),
    kubo("Swarm.Transports.Network.Websocket", Flag),
    kubo("Swarm.Transports.Security", Object),
    kubo("Swarm.Transports.Security.Noise", Priority),
    kubo("Swarm.Transports.Security.TLS", Priority),
    kubo("Version", Object),
    kubo("Version.AgentSuffix", OptionalString),
    kubo("Version.SwarmCheckEnabled", Flag),
    kubo("Version.SwarmCheckPercentThreshold", OptionalInteger),
];

/// The entry for an exact schema path (with `*`/`[]` segments), if any.
pub fn spec(pattern: &str) -> Option<&'static KeySpec> {
    SCHEMA
        .binary_search_by(|s| s.path.cmp(pattern))
        .ok()
        .map(|i| &SCHEMA[i])
}

/// Why a key is not in the schema. The texts are Kubo's (`config.CheckKey`, kubo
/// `config/config.go`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LookupError {
    /// No such key: the field holds the key up to and including the first unknown segment.
    #[error("{0} not found")]
    NotFound(std::string::String),
    /// The key goes below a value that has no keys (a string, a number, an array); the field holds
    /// the key up to that value.
    #[error("{0} key is not a map")]
    NotAMap(std::string::String),
}

/// What a dotted key resolves to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The schema entry; for a key below an [`Kind::Any`] value, that value's entry.
    pub spec: &'static KeySpec,
    /// Whether the key lies below an [`Kind::Any`] value (so its own type is unknown).
    pub inside_any: bool,
}

/// Resolves a dotted config key (`Swarm.ConnMgr.LowWater`, `API.Authorizations.ci.AuthSecret`)
/// against the schema, as Kubo's `config.CheckKey` does: segments are matched case-sensitively,
/// a free map key matches `*`, anything below a free-form value is accepted.
///
/// # Errors
/// [`LookupError::NotFound`] names the key up to its first unknown segment
/// (`Addresses.APII` → `Addresses.APII not found`); [`LookupError::NotAMap`] a key that goes
/// below a value with no keys (`Routing.Type.X` → `Routing.Type key is not a map`). Kubo's
/// optional types (`OptionalInteger`, ...) are Go structs with no exported fields, so below them
/// Kubo answers "not found", and so does this.
pub fn lookup(key: &str) -> Result<Resolved, LookupError> {
    let parts: Vec<&str> = key.split('.').collect();
    let mut pattern = std::string::String::new();
    let mut current: Option<&'static KeySpec> = None;
    for (i, part) in parts.iter().enumerate() {
        if let Some(parent) = current {
            match parent.kind {
                Any => {
                    return Ok(Resolved {
                        spec: parent,
                        inside_any: true,
                    });
                }
                Object => {}
                Map => {
                    pattern.push_str(".*");
                    current = spec(&pattern);
                    continue;
                }
                OptionalInteger | OptionalString | OptionalDuration | OptionalBytes | Duration => {
                    return Err(LookupError::NotFound(parts[..=i].join(".")));
                }
                _ => return Err(LookupError::NotAMap(parts[..i].join("."))),
            }
            pattern.push('.');
        }
        pattern.push_str(part);
        match spec(&pattern) {
            Some(s) => current = Some(s),
            None => return Err(LookupError::NotFound(parts[..=i].join("."))),
        }
    }
    let spec = current.ok_or_else(|| LookupError::NotFound(key.to_string()))?;
    Ok(Resolved {
        spec,
        inside_any: false,
    })
}

/// A value that does not fit the schema.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValueError {
    /// A key inside an object value is not in the schema (Kubo's `CheckKey` wording).
    #[error(transparent)]
    Unknown(#[from] LookupError),
    /// A value of the wrong JSON type; modelled on Go's `json: cannot unmarshal string into Go
    /// struct field ... of type ...`, naming cairn's dotted key and the schema type.
    #[error("cannot unmarshal {found} into config field {key} of type {expected}")]
    WrongType {
        /// The dotted key.
        key: std::string::String,
        /// The JSON type found (`string`, `number`, `bool`, `array`, `object`).
        found: &'static str,
        /// The type the key holds ([`Kind::describe`]).
        expected: &'static str,
    },
    /// A value of the right JSON type that does not parse (a bad duration, a non-positive
    /// priority, an unknown enum value, a removed key).
    #[error("invalid value for config field {key}: {reason}")]
    Invalid {
        /// The dotted key.
        key: std::string::String,
        /// Why.
        reason: std::string::String,
    },
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Checks that `value` fits the key `key` (already resolved to `resolved`), recursing into objects
/// and arrays: every nested key must be in the schema and every leaf of the right type.
///
/// # Errors
/// The first key that is unknown or of the wrong type, as a [`ValueError`] naming it.
pub fn check_value(key: &str, resolved: Resolved, value: &Value) -> Result<(), ValueError> {
    if resolved.inside_any {
        return Ok(());
    }
    check_at(key, resolved.spec.path, resolved.spec.kind, value)
}

/// Checks a whole config document (`config/replace`, a config file): every key known, every value
/// of the right type.
///
/// # Errors
/// As [`check_value`]; a document that is not an object is a [`ValueError::WrongType`] at `.`.
pub fn check_document(doc: &Value) -> Result<(), ValueError> {
    let Some(obj) = doc.as_object() else {
        return Err(ValueError::WrongType {
            key: ".".into(),
            found: json_type(doc),
            expected: "object",
        });
    };
    for (k, v) in obj {
        let resolved = lookup(k)?;
        check_value(k, resolved, v)?;
    }
    Ok(())
}

fn check_at(key: &str, pattern: &str, kind: Kind, value: &Value) -> Result<(), ValueError> {
    let wrong = || ValueError::WrongType {
        key: key.to_string(),
        found: json_type(value),
        expected: kind.describe(),
    };
    let invalid = |reason: std::string::String| ValueError::Invalid {
        key: key.to_string(),
        reason,
    };
    if value.is_null() {
        return Ok(());
    }
    match kind {
        Any => Ok(()),
        Object => {
            let obj = value.as_object().ok_or_else(wrong)?;
            for (k, v) in obj {
                let child = format!("{pattern}.{k}");
                let child_key = format!("{key}.{k}");
                let s = spec(&child).ok_or_else(|| LookupError::NotFound(child_key.clone()))?;
                check_at(&child_key, s.path, s.kind, v)?;
            }
            Ok(())
        }
        Map => {
            let obj = value.as_object().ok_or_else(wrong)?;
            let child = format!("{pattern}.*");
            let s = spec(&child).expect("every map has a `*` entry");
            for (k, v) in obj {
                check_at(&format!("{key}.{k}"), s.path, s.kind, v)?;
            }
            Ok(())
        }
        ObjectArray => {
            let items = value.as_array().ok_or_else(wrong)?;
            let child = format!("{pattern}.[]");
            let s = spec(&child).expect("every object array has a `[]` entry");
            for (i, v) in items.iter().enumerate() {
                check_at(&format!("{key}[{i}]"), s.path, s.kind, v)?;
            }
            Ok(())
        }
        String | OptionalString => value.as_str().map(|_| ()).ok_or_else(wrong),
        Bool | Flag => value.as_bool().map(|_| ()).ok_or_else(wrong),
        Integer | OptionalInteger => {
            if value.is_i64() || value.is_u64() {
                Ok(())
            } else {
                Err(wrong())
            }
        }
        Priority => match value {
            Value::Bool(false) => Ok(()),
            Value::Bool(true) => Err(invalid("'true' is not a valid priority".into())),
            v if v.as_i64().is_some_and(|p| p > 0) => Ok(()),
            v if v.as_i64().is_some() => Err(invalid(format!(
                "priority must be positive: {} <= 0",
                v.as_i64().unwrap_or_default()
            ))),
            _ => Err(wrong()),
        },
        OptionalDuration | Duration => match value {
            Value::String(s) => {
                if kind == OptionalDuration && matches!(s.as_str(), "" | "null" | "default")
                    || parse_go_duration(s).is_some()
                {
                    Ok(())
                } else {
                    Err(invalid(format!("time: invalid duration {s:?}")))
                }
            }
            Value::Number(n) if kind == Duration || n.as_u64() == Some(0) => Ok(()),
            _ => Err(wrong()),
        },
        OptionalBytes => match value {
            Value::Number(_) => Ok(()),
            Value::String(s) if parse_size(s).is_some() => Ok(()),
            Value::String(s) => Err(invalid(format!("invalid byte size {s:?}"))),
            _ => Err(wrong()),
        },
        StringArray => {
            let items = value.as_array().ok_or_else(wrong)?;
            if items.iter().all(Value::is_string) {
                Ok(())
            } else {
                Err(wrong())
            }
        }
        Strings => match value {
            Value::String(_) => Ok(()),
            Value::Array(items) if items.iter().all(Value::is_string) => Ok(()),
            _ => Err(wrong()),
        },
        Enum(allowed) => match value.as_str() {
            Some(s) if allowed.contains(&s) => Ok(()),
            Some(s) => Err(invalid(format!(
                "{s:?} is not one of {}",
                allowed
                    .iter()
                    .map(|a| format!("{a:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
            None => Err(wrong()),
        },
        Removed(message) => match value {
            Value::Object(o) if o.is_empty() => Ok(()),
            _ => Err(invalid(message.to_string())),
        },
    }
}

/// The keys set in `doc` that cairn stores but does not act on, as dotted paths, sorted.
///
/// "Set" leaves out what carries no setting: `null`, `false`, `0`, `""`, `[]`, `{}`, and values
/// equal to what cairn's own `init` writes (`defaults`, e.g. `Addresses.Gateway`), so a fresh
/// repo reports nothing and a repo taken over from Kubo reports what Kubo would have used (its
/// `Datastore.Spec`, `Mounts`, ...). A free-key map cairn does not act on is reported whole.
/// Keys not in the schema are skipped (the caller reports those separately).
pub fn inert_keys(doc: &Value, defaults: &Value) -> Vec<std::string::String> {
    let mut out = Vec::new();
    if let Some(obj) = doc.as_object() {
        for (k, v) in obj {
            if let Some(s) = spec(k) {
                walk_inert(k, s, v, defaults.get(k), &mut out);
            }
        }
    }
    out.sort();
    out
}

fn is_blank(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Bool(true) => false,
    }
}

fn walk_inert(
    key: &str,
    s: &KeySpec,
    v: &Value,
    default: Option<&Value>,
    out: &mut Vec<std::string::String>,
) {
    if is_blank(v) || default == Some(v) {
        return;
    }
    match s.kind {
        Object => {
            for (k, child) in v.as_object().into_iter().flatten() {
                if let Some(cs) = spec(&format!("{}.{k}", s.path)) {
                    walk_inert(
                        &format!("{key}.{k}"),
                        cs,
                        child,
                        default.and_then(|d| d.get(k)),
                        out,
                    );
                }
            }
        }
        _ if !s.acted => out.push(key.to_string()),
        _ => {}
    }
}

/// The dotted keys whose value differs between `old` and `new` (added, removed or changed),
/// sorted; the schema's structs ([`Kind::Object`]) are compared key by key, anything else (maps,
/// arrays, free-form values, unknown keys) as a whole.
pub fn changed_keys(old: &Value, new: &Value) -> Vec<std::string::String> {
    let mut out = Vec::new();
    diff("", old, new, &mut out);
    out.sort();
    out
}

fn diff(prefix: &str, old: &Value, new: &Value, out: &mut Vec<std::string::String>) {
    let is_struct =
        prefix.is_empty() || lookup(prefix).is_ok_and(|r| r.spec.kind == Object && !r.inside_any);
    // A struct absent on one side compares as empty, so its changed keys are listed one by one.
    let empty = Value::Object(serde_json::Map::new());
    let (old, new) = match (old, new) {
        (Value::Null, n @ Value::Object(_)) if is_struct => (&empty, n),
        (o @ Value::Object(_), Value::Null) if is_struct => (o, &empty),
        pair => pair,
    };
    match (old, new) {
        (Value::Object(a), Value::Object(b)) if is_struct => {
            let keys: std::collections::BTreeSet<&std::string::String> =
                a.keys().chain(b.keys()).collect();
            for k in keys {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                let null = Value::Null;
                diff(
                    &key,
                    a.get(k).unwrap_or(&null),
                    b.get(k).unwrap_or(&null),
                    out,
                );
            }
        }
        (a, b) if a != b => out.push(prefix.to_string()),
        _ => {}
    }
}

/// Whether cairn acts on the key (resolved by [`lookup`]); keys below an acted free-form value
/// count as acted.
pub fn is_acted(resolved: &Resolved) -> bool {
    resolved.spec.acted
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn table_is_sorted_and_maps_have_item_entries() {
        for pair in SCHEMA.windows(2) {
            assert!(
                pair[0].path < pair[1].path,
                "{} before {}",
                pair[0].path,
                pair[1].path
            );
        }
        for s in SCHEMA {
            if s.kind == Map {
                assert!(spec(&format!("{}.*", s.path)).is_some(), "{}", s.path);
            }
            if s.kind == ObjectArray {
                assert!(spec(&format!("{}.[]", s.path)).is_some(), "{}", s.path);
            }
            // Every entry's parent exists.
            if let Some((parent, _)) = s.path.rsplit_once('.') {
                assert!(spec(parent).is_some(), "parent of {}", s.path);
            }
        }
    }

    #[test]
    fn lookup_known_keys() {
        assert_eq!(lookup("Routing.Type").unwrap().spec.kind, OptionalString);
        assert_eq!(
            lookup("Experimental.FilestoreEnabled").unwrap().spec.kind,
            Bool
        );
        assert_eq!(
            lookup("Swarm.ConnMgr.LowWater").unwrap().spec.kind,
            OptionalInteger
        );
        assert!(lookup("Swarm.ConnMgr.LowWater").unwrap().spec.acted);
        assert!(!lookup("Routing.Type").unwrap().spec.acted);
        let auth = lookup("API.Authorizations.ci.AuthSecret").unwrap();
        assert_eq!(auth.spec.path, "API.Authorizations.*.AuthSecret");
        assert_eq!(
            lookup("Gateway.PublicGateways.localhost")
                .unwrap()
                .spec
                .kind,
            Object
        );
        // Keys are split at every dot, in Kubo too: a host name with dots is set with --json on
        // the map.
        assert_eq!(
            lookup("Gateway.PublicGateways.example.com")
                .unwrap_err()
                .to_string(),
            "Gateway.PublicGateways.example.com not found"
        );
        assert!(
            lookup("Routing.Routers.r1.Parameters.Endpoint")
                .unwrap()
                .inside_any
        );
        assert!(!lookup("Datastore.Spec.mounts").unwrap().inside_any);
        assert!(lookup("Datastore.Spec.mounts.x.y").unwrap().inside_any);
        assert_eq!(lookup("Cairn.Anything.Here").unwrap().spec.path, "Cairn");
        assert!(lookup("Datastore.Sync").unwrap().spec.cairn_only);
    }

    #[test]
    fn lookup_unknown_keys_in_kubo_words() {
        let e = lookup("Addresses.APII").unwrap_err();
        assert_eq!(e.to_string(), "Addresses.APII not found");
        assert_eq!(
            lookup("Foo.Bar.Baz").unwrap_err().to_string(),
            "Foo not found"
        );
        assert_eq!(
            lookup("Routing.Type.X").unwrap_err().to_string(),
            "Routing.Type.X not found"
        );
        assert_eq!(
            lookup("Discovery.MDNS.Enabled.X").unwrap_err().to_string(),
            "Discovery.MDNS.Enabled key is not a map"
        );
        // Case matters, as in Kubo's CheckKey.
        assert!(lookup("routing.type").is_err());
        // Removed keys docs/config.md still lists are not in Kubo's structs.
        assert!(lookup("Gateway.Writable").is_err());
        assert!(lookup("Swarm.EnableAutoRelay").is_err());
    }

    #[test]
    fn values_are_checked_against_the_type() {
        let check = |key: &str, v: Value| check_value(key, lookup(key).unwrap(), &v);
        assert!(check("Routing.Type", json!("dht")).is_ok());
        assert!(check("Experimental.FilestoreEnabled", json!(false)).is_ok());
        let e = check("Experimental.FilestoreEnabled", json!("false")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot unmarshal string into config field Experimental.FilestoreEnabled of type bool"
        );
        let e = check("Swarm.ConnMgr.LowWater", json!("many")).unwrap_err();
        assert!(
            e.to_string()
                .contains("Swarm.ConnMgr.LowWater of type integer or null")
        );
        assert!(check("Swarm.ConnMgr.GracePeriod", json!("1m0s")).is_ok());
        assert!(check("Swarm.ConnMgr.GracePeriod", json!("soon")).is_err());
        assert!(check("Swarm.Transports.Security.TLS", json!(false)).is_ok());
        assert!(check("Swarm.Transports.Security.TLS", json!(true)).is_err());
        assert!(check("Swarm.Transports.Security.TLS", json!(0)).is_err());
        assert!(check("Addresses.API", json!("/ip4/127.0.0.1/tcp/5001")).is_ok());
        assert!(check("Addresses.API", json!(["/ip4/127.0.0.1/tcp/5001"])).is_ok());
        assert!(check("Addresses.Swarm", json!("/ip4/0.0.0.0/tcp/4001")).is_err());
        assert!(check("AutoNAT.ServiceMode", json!("disabled")).is_ok());
        assert!(check("AutoNAT.ServiceMode", json!("off")).is_err());
        assert!(check("Swarm.ResourceMgr.Limits", json!({})).is_ok());
        assert!(check("Swarm.ResourceMgr.Limits", json!({"System": {}})).is_err());
        assert!(check("Import.UnixFSHAMTDirectorySizeThreshold", json!("256KiB")).is_ok());
        assert!(check("Datastore.Spec", json!({"type": "mount", "mounts": []})).is_ok());
        assert!(check("Datastore.Spec", json!("flatfs")).is_err());
        let peers = json!([{"ID": "12D3KooW", "Addrs": ["/ip4/1.2.3.4/tcp/4001"]}]);
        assert!(check("Peering.Peers", peers).is_ok());
        let e = check("Peering.Peers", json!([{"Id": "x"}])).unwrap_err();
        assert_eq!(e.to_string(), "Peering.Peers[0].Id not found");
        let e = check("Swarm.ConnMgr", json!({"LowWatr": 1})).unwrap_err();
        assert_eq!(e.to_string(), "Swarm.ConnMgr.LowWatr not found");
        let e = check("API.HTTPHeaders", json!({"X": "y"})).unwrap_err();
        assert!(
            e.to_string()
                .contains("API.HTTPHeaders.X of type array of strings"),
            "{e}"
        );
        assert!(check("Discovery.MDNS.Enabled", json!(null)).is_ok());
    }

    #[test]
    fn documents_and_inert_keys() {
        let doc = json!({"Routing": {"Type": "dht"}, "Addresses": {"Gateway": "/ip4/127.0.0.1/tcp/8080",
            "Swarm": ["/ip4/0.0.0.0/tcp/4001"]}, "Mounts": {"IPFS": "/ipfs", "FuseAllowOther": false},
            "DNS": {"Resolvers": {"eth.": "https://dns.eth.limo/dns-query"}}});
        assert!(check_document(&doc).is_ok());
        let defaults = json!({"Addresses": {"Gateway": "/ip4/127.0.0.1/tcp/8080"}});
        assert_eq!(
            inert_keys(&doc, &defaults),
            vec!["DNS.Resolvers", "Mounts.IPFS", "Routing.Type"]
        );
        let e = check_document(&json!({"Addresses": {"APII": "x"}})).unwrap_err();
        assert_eq!(e.to_string(), "Addresses.APII not found");
        assert_eq!(
            changed_keys(
                &json!({"Swarm": {"ConnMgr": {"LowWater": 1}}, "DNS": {"Resolvers": {}}}),
                &json!({"Swarm": {"ConnMgr": {"LowWater": 2, "Type": "basic"}},
                        "DNS": {"Resolvers": {".": "auto"}}})
            ),
            vec![
                "DNS.Resolvers",
                "Swarm.ConnMgr.LowWater",
                "Swarm.ConnMgr.Type"
            ]
        );
        assert_eq!(
            changed_keys(&json!({}), &json!({"Routing": {"Type": "dht"}})),
            vec!["Routing.Type"]
        );
    }
}

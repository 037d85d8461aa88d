//! Kubo's config profiles (kubo `config/profile.go`), applied to the config as JSON by
//! `config profile apply NAME`.
//!
//! Each profile makes the same key changes Kubo's makes. Where Kubo sets a field back to its
//! `omitempty` default (`Default` flags, `nil` pointers) the key is removed, as it disappears
//! from Kubo's file. The datastore profiles (`flatfs`, `pebbleds`, `badgerds`, ...) store Kubo's
//! `Datastore.Spec`, which cairn does not act on: cairn keeps its own block store whatever the
//! spec says. Kubo marks those profiles init-only in their description but `profile apply` does
//! not enforce it, and neither does cairn.

use serde_json::{Value, json};

use super::edit::{ConfigEditError, remove_path, set_path};

/// Kubo's profile names with their one-line descriptions, sorted by name.
pub const PROFILES: &[(&str, &str)] = &[
    (
        "announce-off",
        "Disables the Provide system (announcing to the Amino DHT).",
    ),
    (
        "announce-on",
        "Re-enables the Provide system (reverts announce-off).",
    ),
    (
        "autoconf-off",
        "Disables AutoConf and empties the networking fields it fills.",
    ),
    (
        "autoconf-on",
        "Sets bootstrap, DNS resolvers, delegated routers and publishers to \"auto\".",
    ),
    (
        "badgerds",
        "DEPRECATED: the legacy badgerv1 datastore (Datastore.Spec; not acted on by cairn).",
    ),
    (
        "badgerds-measure",
        "DEPRECATED: badgerv1 with a metrics wrapper (Datastore.Spec; not acted on by cairn).",
    ),
    (
        "default-datastore",
        "The default datastore, flatfs (Datastore.Spec; not acted on by cairn).",
    ),
    (
        "default-networking",
        "Restores default network settings (inverse of test).",
    ),
    (
        "flatfs",
        "The flatfs datastore (Datastore.Spec; not acted on by cairn).",
    ),
    (
        "flatfs-measure",
        "flatfs with a metrics wrapper (Datastore.Spec; not acted on by cairn).",
    ),
    ("legacy-cid-v0", "Alias for unixfs-v0-2015."),
    (
        "local-discovery",
        "Undoes server: enables discovery in local networks.",
    ),
    (
        "lowpower",
        "Reduces daemon overhead: DHT client only, fewer connections.",
    ),
    (
        "pebbleds",
        "The pebble datastore (Datastore.Spec; not acted on by cairn).",
    ),
    (
        "pebbleds-measure",
        "pebble with a metrics wrapper (Datastore.Spec; not acted on by cairn).",
    ),
    ("randomports", "Uses a random port number for the swarm."),
    (
        "server",
        "Disables local host discovery and private-range announcements, for public hosts.",
    ),
    (
        "test",
        "Reduces external interference, for test environments.",
    ),
    (
        "unixfs-v0-2015",
        "Legacy UnixFS import settings (CIDv0, 256 KiB chunks).",
    ),
    (
        "unixfs-v1-2025",
        "UnixFS import settings for cross-implementation CID determinism (IPIP-499).",
    ),
];

/// The address ranges the `server` profile adds to `Addresses.NoAnnounce` and
/// `Swarm.AddrFilters` (kubo `config/profile.go` `defaultServerFilters`: the IANA special-purpose
/// ranges that are not globally reachable).
pub const SERVER_FILTERS: &[&str] = &[
    "/ip4/10.0.0.0/ipcidr/8",
    "/ip4/100.64.0.0/ipcidr/10",
    "/ip4/127.0.0.0/ipcidr/8",
    "/ip4/169.254.0.0/ipcidr/16",
    "/ip4/172.16.0.0/ipcidr/12",
    "/ip4/192.0.0.0/ipcidr/24",
    "/ip4/192.0.2.0/ipcidr/24",
    "/ip4/192.168.0.0/ipcidr/16",
    "/ip4/198.18.0.0/ipcidr/15",
    "/ip4/198.51.100.0/ipcidr/24",
    "/ip4/203.0.113.0/ipcidr/24",
    "/ip4/240.0.0.0/ipcidr/4",
    "/ip6/::/ipcidr/3",
    "/ip6/::1/ipcidr/128",
    "/ip6/100::/ipcidr/64",
    "/ip6/2001:2::/ipcidr/48",
    "/ip6/2001:db8::/ipcidr/32",
    "/ip6/fc00::/ipcidr/7",
    "/ip6/fe80::/ipcidr/10",
];

/// Kubo's default AutoConf URL (docs/config.md `AutoConf.URL`).
pub const DEFAULT_AUTOCONF_URL: &str = "https://conf.ipfs-mainnet.org/autoconf.json";

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(String::from))
        .collect()
}

fn at<'a>(doc: &'a Value, key: &str) -> Option<&'a Value> {
    key.split('.').try_fold(doc, |v, k| v.get(k))
}

/// Kubo's `appendSingle`: `a` then `b`, each entry once.
fn append_single(doc: &Value, key: &str, add: &[&str]) -> Value {
    let mut out: Vec<String> = Vec::new();
    for s in strings(at(doc, key))
        .into_iter()
        .chain(add.iter().map(|s| s.to_string()))
    {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    json!(out)
}

/// Kubo's `deleteEntries` (it returns the rest in map order; cairn keeps the original order).
fn delete_entries(doc: &Value, key: &str, del: &[&str]) -> Value {
    let mut out: Vec<String> = Vec::new();
    for s in strings(at(doc, key)) {
        if !del.contains(&s.as_str()) && !out.contains(&s) {
            out.push(s);
        }
    }
    json!(out)
}

fn flatfs_spec(measure: bool) -> Value {
    if measure {
        json!({"type": "mount", "mounts": [
            {"mountpoint": "/blocks", "type": "measure", "prefix": "flatfs.datastore",
             "child": {"type": "flatfs", "path": "blocks", "sync": false,
                       "shardFunc": "/repo/flatfs/shard/v1/next-to-last/2"}},
            {"mountpoint": "/", "type": "measure", "prefix": "leveldb.datastore",
             "child": {"type": "levelds", "path": "datastore", "compression": "none"}}]})
    } else {
        json!({"type": "mount", "mounts": [
            {"mountpoint": "/blocks", "type": "flatfs", "prefix": "flatfs.datastore",
             "path": "blocks", "sync": false, "shardFunc": "/repo/flatfs/shard/v1/next-to-last/2"},
            {"mountpoint": "/", "type": "levelds", "prefix": "leveldb.datastore",
             "path": "datastore", "compression": "none"}]})
    }
}

/// Kubo also writes `formatMajorVersion` (pebble's newest format in the pebble it links); cairn
/// links no pebble and leaves it out, which Kubo reads as "the newest".
fn pebble_spec(measure: bool) -> Value {
    if measure {
        json!({"type": "measure", "prefix": "pebble.datastore",
               "child": {"type": "pebbleds", "path": "pebbleds"}})
    } else {
        json!({"type": "pebbleds", "prefix": "pebble.datastore", "path": "pebbleds"})
    }
}

fn badger_spec(measure: bool) -> Value {
    if measure {
        json!({"type": "measure", "prefix": "badger.datastore",
               "child": {"type": "badgerds", "path": "badgerds", "syncWrites": false,
                         "truncate": true}})
    } else {
        json!({"type": "badgerds", "prefix": "badger.datastore", "path": "badgerds",
               "syncWrites": false, "truncate": true})
    }
}

fn unixfs(doc: &mut Value, v1: bool) -> Result<(), String> {
    let (cid, leaves, chunker, links, estimation) = if v1 {
        (1, true, "size-1048576", 1024, "block")
    } else {
        (0, false, "size-262144", 174, "links")
    };
    let set = [
        ("Import.CidVersion", json!(cid)),
        ("Import.UnixFSRawLeaves", json!(leaves)),
        ("Import.UnixFSChunker", json!(chunker)),
        ("Import.HashFunction", json!("sha2-256")),
        ("Import.UnixFSFileMaxLinks", json!(links)),
        ("Import.UnixFSDirectoryMaxLinks", json!(0)),
        ("Import.UnixFSHAMTDirectoryMaxFanout", json!(256)),
        ("Import.UnixFSHAMTDirectorySizeThreshold", json!("256KiB")),
        (
            "Import.UnixFSHAMTDirectorySizeEstimation",
            json!(estimation),
        ),
        ("Import.UnixFSDAGLayout", json!("balanced")),
    ];
    for (k, v) in set {
        set_path(doc, k, v)?;
    }
    Ok(())
}

fn free_port() -> std::io::Result<u16> {
    let l = std::net::TcpListener::bind("[::]:0")
        .or_else(|_| std::net::TcpListener::bind("0.0.0.0:0"))?;
    Ok(l.local_addr()?.port())
}

/// Applies the profile `name` to the config document `doc`.
///
/// # Errors
/// [`ConfigEditError::UnknownProfile`] for a name not in [`PROFILES`] (Kubo: `<name> is not a
/// profile`); [`ConfigEditError::Profile`] when `randomports` finds no free port or the document
/// has a non-object where the profile sets a key.
pub fn apply(name: &str, doc: &mut Value) -> Result<(), ConfigEditError> {
    let failed = |reason: String| ConfigEditError::Profile {
        name: name.to_string(),
        reason,
    };
    let mut sets: Vec<(&str, Value)> = Vec::new();
    let mut removes: Vec<&str> = Vec::new();
    match name {
        "server" => {
            sets.push((
                "Addresses.NoAnnounce",
                append_single(doc, "Addresses.NoAnnounce", SERVER_FILTERS),
            ));
            sets.push((
                "Swarm.AddrFilters",
                append_single(doc, "Swarm.AddrFilters", SERVER_FILTERS),
            ));
            sets.push(("Discovery.MDNS.Enabled", json!(false)));
            sets.push(("Swarm.DisableNatPortMap", json!(true)));
        }
        "local-discovery" => {
            sets.push((
                "Addresses.NoAnnounce",
                delete_entries(doc, "Addresses.NoAnnounce", SERVER_FILTERS),
            ));
            sets.push((
                "Swarm.AddrFilters",
                delete_entries(doc, "Swarm.AddrFilters", SERVER_FILTERS),
            ));
            sets.push(("Discovery.MDNS.Enabled", json!(true)));
            sets.push(("Swarm.DisableNatPortMap", json!(false)));
        }
        "test" => {
            sets.extend([
                ("Addresses.API", json!("/ip4/127.0.0.1/tcp/0")),
                ("Addresses.Gateway", json!("/ip4/127.0.0.1/tcp/0")),
                ("Addresses.Swarm", json!(["/ip4/127.0.0.1/tcp/0"])),
                ("Swarm.DisableNatPortMap", json!(true)),
                ("Routing.LoopbackAddressesOnLanDHT", json!(true)),
                ("Bootstrap", json!([])),
                ("Discovery.MDNS.Enabled", json!(false)),
                ("AutoTLS.Enabled", json!(false)),
                ("AutoConf.Enabled", json!(false)),
                ("DNS.Resolvers", json!({})),
                ("Routing.DelegatedRouters", json!([])),
                ("Ipns.DelegatedPublishers", json!([])),
            ]);
        }
        "default-networking" => {
            sets.extend([
                (
                    "Addresses",
                    json!({
                        "Swarm": [
                            "/ip4/0.0.0.0/tcp/4001",
                            "/ip6/::/tcp/4001",
                            "/ip4/0.0.0.0/udp/4001/webrtc-direct",
                            "/ip4/0.0.0.0/udp/4001/quic-v1",
                            "/ip4/0.0.0.0/udp/4001/quic-v1/webtransport",
                            "/ip6/::/udp/4001/webrtc-direct",
                            "/ip6/::/udp/4001/quic-v1",
                            "/ip6/::/udp/4001/quic-v1/webtransport"
                        ],
                        "Announce": [], "AppendAnnounce": [], "NoAnnounce": [],
                        "API": "/ip4/127.0.0.1/tcp/5001",
                        "Gateway": "/ip4/127.0.0.1/tcp/8080"
                    }),
                ),
                ("Bootstrap", json!(["auto"])),
                ("Swarm.DisableNatPortMap", json!(false)),
                ("Discovery.MDNS.Enabled", json!(true)),
            ]);
            removes.extend(["AutoConf.Enabled", "AutoConf.URL", "AutoTLS.Enabled"]);
        }
        "default-datastore" | "flatfs" => sets.push(("Datastore.Spec", flatfs_spec(false))),
        "flatfs-measure" => sets.push(("Datastore.Spec", flatfs_spec(true))),
        "pebbleds" => sets.push(("Datastore.Spec", pebble_spec(false))),
        "pebbleds-measure" => sets.push(("Datastore.Spec", pebble_spec(true))),
        "badgerds" => sets.push(("Datastore.Spec", badger_spec(false))),
        "badgerds-measure" => sets.push(("Datastore.Spec", badger_spec(true))),
        "lowpower" => {
            sets.extend([
                ("Routing.Type", json!("autoclient")),
                ("AutoNAT.ServiceMode", json!("disabled")),
                ("Swarm.RelayService.Enabled", json!(false)),
                ("Swarm.ConnMgr.Type", json!("basic")),
                ("Swarm.ConnMgr.LowWater", json!(20)),
                ("Swarm.ConnMgr.HighWater", json!(40)),
                ("Swarm.ConnMgr.GracePeriod", json!("1m0s")),
            ]);
        }
        "announce-off" => {
            sets.push(("Provide.Enabled", json!(false)));
            sets.push(("Provide.DHT.Interval", json!("0s")));
        }
        "announce-on" => {
            sets.push(("Provide.Enabled", json!(true)));
            sets.push(("Provide.DHT.Interval", json!("22h0m0s")));
        }
        "randomports" => {
            let port = free_port().map_err(|e| failed(e.to_string()))?;
            sets.push((
                "Addresses.Swarm",
                json!([
                    format!("/ip4/0.0.0.0/tcp/{port}"),
                    format!("/ip6/::/tcp/{port}")
                ]),
            ));
        }
        "unixfs-v0-2015" | "legacy-cid-v0" => unixfs(doc, false).map_err(failed)?,
        "unixfs-v1-2025" => unixfs(doc, true).map_err(failed)?,
        "autoconf-on" => {
            sets.extend([
                ("Bootstrap", json!(["auto"])),
                ("DNS.Resolvers", json!({".": "auto"})),
                ("Routing.DelegatedRouters", json!(["auto"])),
                ("Ipns.DelegatedPublishers", json!(["auto"])),
                ("AutoConf.Enabled", json!(true)),
            ]);
            if at(doc, "AutoConf.URL").is_none_or(Value::is_null) {
                sets.push(("AutoConf.URL", json!(DEFAULT_AUTOCONF_URL)));
            }
        }
        "autoconf-off" => {
            sets.extend([
                ("Bootstrap", Value::Null),
                ("DNS.Resolvers", Value::Null),
                ("Routing.DelegatedRouters", Value::Null),
                ("Ipns.DelegatedPublishers", Value::Null),
                ("AutoConf.Enabled", json!(false)),
            ]);
        }
        other => return Err(ConfigEditError::UnknownProfile(other.to_string())),
    }
    for (key, value) in sets {
        set_path(doc, key, value).map_err(failed)?;
    }
    for key in removes {
        remove_path(doc, key);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_profile_applies_and_names_are_sorted() {
        for pair in PROFILES.windows(2) {
            assert!(pair[0].0 < pair[1].0);
        }
        for (name, _) in PROFILES {
            let mut doc = json!({});
            apply(name, &mut doc).unwrap_or_else(|e| panic!("{name}: {e}"));
            crate::config::schema::check_document(&doc).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let err = apply("nope", &mut json!({})).unwrap_err();
        assert_eq!(err.to_string(), "nope is not a profile");
    }

    #[test]
    fn server_and_local_discovery_are_inverse() {
        let mut doc = json!({"Addresses": {"NoAnnounce": ["/ip4/1.2.3.4/ipcidr/32"]}});
        apply("server", &mut doc).unwrap();
        let na = doc["Addresses"]["NoAnnounce"].as_array().unwrap();
        assert_eq!(na.len(), 1 + SERVER_FILTERS.len());
        assert_eq!(na[0], "/ip4/1.2.3.4/ipcidr/32");
        assert_eq!(doc["Discovery"]["MDNS"]["Enabled"], false);
        assert_eq!(doc["Swarm"]["DisableNatPortMap"], true);
        apply("local-discovery", &mut doc).unwrap();
        assert_eq!(
            doc["Addresses"]["NoAnnounce"],
            json!(["/ip4/1.2.3.4/ipcidr/32"])
        );
        assert_eq!(doc["Swarm"]["AddrFilters"], json!([]));
        assert_eq!(doc["Discovery"]["MDNS"]["Enabled"], true);
    }
}

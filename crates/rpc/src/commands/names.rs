//! Kubo's key, IPNS and DHT record commands on [`cairn_node_core::Node`]: `key/gen`,
//! `key/list` (and `key/ls`), `key/rm`, `key/rename`, `key/import`; `name/publish`,
//! `name/resolve`, `name/inspect`; `routing/get`, `routing/put` and `dht/query` (with their
//! `dht/` aliases). Each parses Kubo's options and prints Kubo's output shapes; the work is the
//! node's. `key/export` is not served over HTTP, as in Kubo (it reads the repo directly: the
//! CLI does that).

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use cairn_node_core::ipns::{IpnsRecord, Name};
use cairn_node_core::keystore::KeyInfo;
use cairn_node_core::names::PublishOptions;
use cairn_node_core::{NodeError, PeerId};
use futures::StreamExt;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::request::{CommandRequest, parse_go_duration};
use crate::response::Output;
use crate::server::ApiState;

/// The largest key file `key/import` takes, and the largest record `routing/put` and
/// `name/inspect` take, in bytes.
const MAX_INPUT: usize = 64 * 1024;

/// How a key id is printed: Kubo's `--ipns-base` (`base36`, the default, gives `k51...`; `b58mh`
/// a base58 peer id; `base32` a `bafz...` CID).
fn key_id(req: &CommandRequest, id: &PeerId) -> Result<String, ApiError> {
    let name = Name::from_peer_id(*id);
    match req.opt(&["ipns-base"])?.unwrap_or("base36") {
        "base36" | "k" => Ok(name.to_string()),
        "b58mh" => Ok(id.to_base58()),
        // A CIDv1 prints in base32 by default: `bafz...`.
        "base32" | "b" => Ok(name.to_cid().to_string()),
        other => Err(ApiError::client(format!(
            "cannot get key encoder: unrecognized ipns-base {other:?} (use base36, base32 or b58mh)"
        ))),
    }
}

fn key_output(req: &CommandRequest, k: &KeyInfo) -> Result<Value, ApiError> {
    Ok(json!({"Name": k.name, "Id": key_id(req, &k.id)?}))
}

/// `key/gen <name>`: `type` (`ed25519` default, `rsa`, `secp256k1`), `size` (RSA bits).
pub(crate) async fn key_gen(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let name = req.arg(0, "name")?.to_string();
    let kind = req.opt(&["type", "t"])?.unwrap_or("ed25519").to_string();
    let size = match req.opt(&["size", "s"])? {
        None => None,
        Some(s) => Some(
            s.parse::<usize>()
                .map_err(|_| ApiError::bad_request(format!("invalid size {s:?}")))?,
        ),
    };
    let node = state.inner.node.clone();
    // RSA generation takes a second or more: off the async threads.
    let info = tokio::task::spawn_blocking(move || node.keystore().generate(&name, &kind, size))
        .await
        .map_err(ApiError::command)?
        .map_err(NodeError::from)?;
    Ok(Output::Once(key_output(req, &info)?))
}

/// `key/list` (`key/ls`): `self` and the keystore's keys.
pub(crate) async fn key_list(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let _long = req.flag(&["l"], false)?;
    let keys = state
        .inner
        .node
        .keys()
        .map_err(|e| ApiError::command(format!("listing keys failed: {e}")))?;
    let list = keys
        .iter()
        .map(|k| key_output(req, k))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Output::Once(json!({ "Keys": list })))
}

/// `key/rm <name>...`.
pub(crate) async fn key_rm(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let mut list = Vec::new();
    for name in req.args_required("name")? {
        let info = state
            .inner
            .node
            .keystore()
            .remove(name)
            .map_err(NodeError::from)?;
        list.push(key_output(req, &info)?);
    }
    Ok(Output::Once(json!({ "Keys": list })))
}

/// `key/rename <name> <newName>` with `force`.
pub(crate) async fn key_rename(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let (old, new) = (req.arg(0, "name")?, req.arg(1, "newName")?);
    let force = req.flag(&["force", "f"], false)?;
    let (info, overwrite) = state
        .inner
        .node
        .keystore()
        .rename(old, new, force)
        .map_err(NodeError::from)?;
    Ok(Output::Once(json!({
        "Was": old,
        "Now": new,
        "Id": key_id(req, &info.id)?,
        "Overwrite": overwrite,
    })))
}

/// `key/import <name>` with the key file as the multipart body, in libp2p's protobuf form
/// (`format=libp2p-protobuf-cleartext`, the default).
pub(crate) async fn key_import(
    state: &ApiState,
    req: &mut CommandRequest,
) -> Result<Output, ApiError> {
    let name = req.arg(0, "name")?.to_string();
    if name == "self" {
        return Err(ApiError::command("cannot import key with name 'self'"));
    }
    match req
        .opt(&["format", "f"])?
        .unwrap_or("libp2p-protobuf-cleartext")
    {
        "libp2p-protobuf-cleartext" => {}
        "pem-pkcs8-cleartext" => {
            return Err(ApiError::command(
                "pem-pkcs8-cleartext import is not supported by cairn: use libp2p-protobuf-cleartext",
            ));
        }
        other => {
            return Err(ApiError::command(format!(
                "unrecognized import format: {other}"
            )));
        }
    }
    let _any = req.flag(&["allow-any-key-type"], false)?;
    let data = one_file(req, "key").await?;
    let info = state
        .inner
        .node
        .keystore()
        .put(&name, &data)
        .map_err(|e| match e {
            cairn_node_core::keystore::KeystoreError::InvalidKey(why) => ApiError::command(
                format!("unable to unmarshall format=libp2p-protobuf-cleartext: {why}"),
            ),
            other => NodeError::from(other).into(),
        })?;
    Ok(Output::Once(key_output(req, &info)?))
}

/// The first multipart file of the request, bounded by [`MAX_INPUT`].
async fn one_file(req: &mut CommandRequest, name: &str) -> Result<bytes::Bytes, ApiError> {
    let part = req.files_required(name).await?.swap_remove(0);
    if part.data.len() > MAX_INPUT {
        return Err(ApiError::client(format!(
            "{name} is {} bytes, over the {MAX_INPUT}-byte limit",
            part.data.len()
        )));
    }
    Ok(part.data)
}

/// A Kubo duration option (`24h`, `300s`), if given.
fn duration_opt(req: &CommandRequest, names: &[&str]) -> Result<Option<Duration>, ApiError> {
    match req.opt(names)? {
        None => Ok(None),
        Some(text) => parse_go_duration(text)
            .map_err(|e| ApiError::command(format!("error parsing {} option: {e}", names[0]))),
    }
}

/// `name/publish <ipfs-path>`: `key`, `lifetime`, `ttl`, `resolve`, `allow-offline`,
/// `sequence`, `v1compat`, `quieter`, `ipns-base`. Answers `{"Name","Value"}`.
pub(crate) async fn name_publish(
    state: &ApiState,
    req: &CommandRequest,
) -> Result<Output, ApiError> {
    let value = cairn_node_core::names::normalize_value(req.arg(0, "ipfs-path")?)?;
    let mut opts = PublishOptions::default();
    if let Some(k) = req.opt(&["key", "k"])? {
        opts.key = k.to_string();
    }
    if let Some(l) = duration_opt(req, &["lifetime", "t"])? {
        if l.is_zero() {
            return Err(ApiError::command(format!(
                "lifetime must be greater than zero, got {}",
                super::go_duration(l)
            )));
        }
        opts.lifetime = l;
    }
    if let Some(t) = duration_opt(req, &["ttl"])? {
        if t > opts.lifetime {
            return Err(ApiError::command(format!(
                "ttl ({}) must not be greater than lifetime ({})",
                super::go_duration(t),
                super::go_duration(opts.lifetime)
            )));
        }
        opts.ttl = t;
    }
    if let Some(s) = req.opt(&["sequence"])? {
        opts.sequence = Some(
            s.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid sequence {s:?}")))?,
        );
    }
    opts.v1_compatible = req.flag(&["v1compat"], true)?;
    opts.allow_offline = req.flag(&["allow-offline"], false)?;
    if req.offline() {
        if !opts.allow_offline {
            return Err(ApiError::command(
                "can't publish while offline: pass `--allow-offline` to override",
            ));
        }
        opts.offline = true;
    }
    let _quieter = req.flag(&["quieter", "Q"], false)?;
    let node = &state.inner.node;
    if req.flag(&["resolve"], true)? {
        // Kubo checks that the path resolves before signing it.
        if value.starts_with("/ipns/") {
            node.name_resolve(&value, true).await?;
        } else if value.trim_start_matches("/ipfs/").contains('/') {
            node.resolve(&value, req.fetch_options())
                .await
                .map_err(super::dag::fetch_error)?;
        }
    }
    let published = node.name_publish(&value, opts).await?;
    Ok(Output::Once(json!({
        "Name": key_id(req, &published.name.peer_id())?,
        "Value": published.value,
    })))
}

/// `name/resolve [<name>]` (default: this node's name): `recursive` (default true), `nocache`,
/// `dht-record-count`, `dht-timeout`, `stream`. Answers `{"Path"}`.
pub(crate) async fn name_resolve(
    state: &ApiState,
    req: &CommandRequest,
) -> Result<Output, ApiError> {
    let node = &state.inner.node;
    let name = match req.arg(0, "name") {
        Ok(n) => n.to_string(),
        Err(_) => Name::from_peer_id(node.peer_id()).to_path(),
    };
    let recursive = req.flag(&["recursive", "r"], true)?;
    let _nocache = req.flag(&["nocache", "n"], false)?;
    let _count = req.int(&["dht-record-count", "dhtrc"], 16)?;
    let stream = req.flag(&["stream", "s"], false)?;
    let timeout = duration_opt(req, &["dht-timeout", "dhtt"])?.filter(|d| !d.is_zero());
    let work = node.name_resolve(&name, recursive);
    let path = match timeout {
        Some(t) => tokio::time::timeout(t, work)
            .await
            .map_err(|_| ApiError::command(super::DEADLINE_EXCEEDED))??,
        None => work.await?,
    };
    let out = json!({ "Path": path });
    if stream {
        return Ok(Output::stream_of(vec![out]));
    }
    Ok(Output::Once(out))
}

/// Go's `hex.Dump`: 16 bytes a line, offset, two groups of eight, and the printable text.
fn hex_dump(data: &[u8]) -> String {
    let mut out = String::new();
    for (i, chunk) in data.chunks(16).enumerate() {
        out.push_str(&format!("{:08x}  ", i * 16));
        for j in 0..16 {
            match chunk.get(j) {
                Some(b) => out.push_str(&format!("{b:02x} ")),
                None => out.push_str("   "),
            }
            if j == 7 {
                out.push(' ');
            }
        }
        out.push_str(" |");
        for b in chunk {
            out.push(if (0x20..0x7f).contains(b) {
                *b as char
            } else {
                '.'
            });
        }
        out.push_str("|\n");
    }
    out
}

/// `name/inspect` with the record as the multipart body: its fields, signature type, size,
/// a hex dump (`dump`, default true), and with `verify=<name>` whether it validates for that
/// name now.
pub(crate) async fn name_inspect(
    _state: &ApiState,
    req: &mut CommandRequest,
) -> Result<Output, ApiError> {
    let verify = req.opt(&["verify"])?.map(str::to_string);
    let dump = req.flag(&["dump"], true)?;
    let data = one_file(req, "record").await?;
    let record = IpnsRecord::decode(&data).map_err(ApiError::command)?;
    let entry = record.entry();
    let signature_type = if entry.signature_v1.as_ref().is_some_and(|s| !s.is_empty())
        || entry.value.as_ref().is_some_and(|v| !v.is_empty())
    {
        "V1+V2"
    } else if entry.data.is_some() {
        "V2"
    } else {
        "Unknown"
    };
    let validity = record
        .validity()
        .ok()
        .map(|t| cairn_node_core::ipns::format_validity(t).unwrap_or_default());
    let mut out = json!({
        "Entry": {
            "Value": record.value_path().unwrap_or_default(),
            "ValidityType": record.validity_type(),
            "Validity": validity,
            "Sequence": record.sequence(),
            "TTL": record.ttl().map(|t| t.as_nanos() as u64),
        },
        "PbSize": data.len(),
        "SignatureType": signature_type,
        "HexDump": if dump { hex_dump(&data) } else { String::new() },
        "Validation": Value::Null,
    });
    if let Some(v) = verify {
        let name = Name::parse(&v).map_err(ApiError::command)?;
        let result = cairn_node_core::ipns::validate(&record, &name.peer_id(), SystemTime::now());
        out["Validation"] = json!({
            "Valid": result.is_ok(),
            "Reason": result.err().map(|e| e.to_string()).unwrap_or_default(),
            "Name": name.to_string(),
        });
    }
    Ok(Output::Once(out))
}

/// Kubo's error when IPNS over pubsub is off.
const ERR_NO_NAME_PUBSUB: &str = "IPNS pubsub subsystem is not enabled";

/// `name/pubsub/state`: `{"Enabled"}`.
pub(crate) fn pubsub_state(state: &ApiState) -> Result<Output, ApiError> {
    Ok(Output::Once(
        json!({ "Enabled": state.inner.node.name_pubsub_enabled() }),
    ))
}

/// `name/pubsub/subs`: the names followed over pubsub, as `/ipns/<id>` (`ipns-base`).
pub(crate) fn pubsub_subs(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let node = &state.inner.node;
    if !node.name_pubsub_enabled() {
        return Err(ApiError::command(ERR_NO_NAME_PUBSUB));
    }
    let names = node
        .name_pubsub_subs()
        .iter()
        .map(|n| Ok(format!("/ipns/{}", key_id(req, &n.peer_id())?)))
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(Output::Once(json!({ "Strings": names })))
}

/// `name/pubsub/cancel <name>`: `{"Canceled"}`, whether the name was followed.
pub(crate) async fn pubsub_cancel(
    state: &ApiState,
    req: &CommandRequest,
) -> Result<Output, ApiError> {
    let node = &state.inner.node;
    if !node.name_pubsub_enabled() {
        return Err(ApiError::command(ERR_NO_NAME_PUBSUB));
    }
    let name = Name::parse(req.arg(0, "name")?).map_err(ApiError::command)?;
    let canceled = node.name_pubsub_cancel(&name).await?;
    Ok(Output::Once(json!({ "Canceled": canceled })))
}

/// Kubo's `normalizeKey`: `/ipns/<peer id>` or `/pk/<peer id>` (any spelling of the id) to the
/// binary DHT key.
fn dht_key(text: &str) -> Result<(Vec<u8>, PeerId), ApiError> {
    let parts: Vec<&str> = text.split('/').collect();
    if parts.len() != 3 || !parts[0].is_empty() || !(parts[1] == "ipns" || parts[1] == "pk") {
        return Err(ApiError::command("invalid key"));
    }
    let peer = Name::parse(parts[2]).map_err(ApiError::command)?.peer_id();
    let key = [format!("/{}/", parts[1]).as_bytes(), &peer.to_bytes()].concat();
    Ok((key, peer))
}

/// `routing/get <key>`: the best record, as a routing event of type 5 (Value) with the record
/// base64 in `Extra`.
pub(crate) async fn routing_get(
    state: &ApiState,
    req: &CommandRequest,
) -> Result<Output, ApiError> {
    let (key, _) = dht_key(req.arg(0, "key")?)?;
    let value = state.inner.node.get_value(key).await?;
    Ok(Output::Once(json!({
        "Extra": base64::engine::general_purpose::STANDARD.encode(value),
        "ID": "",
        "Responses": Value::Null,
        "Type": 5,
    })))
}

/// `routing/put <key>` with the record as the multipart body, `allow-offline`.
pub(crate) async fn routing_put(
    state: &ApiState,
    req: &mut CommandRequest,
) -> Result<Output, ApiError> {
    let (key, peer) = dht_key(req.arg(0, "key")?)?;
    let allow_offline = req.flag(&["allow-offline"], false)?;
    let data = one_file(req, "value-file").await?;
    match state.inner.node.put_value(key, data.to_vec()).await {
        Ok(_) => {}
        Err(NodeError::Routing(_)) if allow_offline => {}
        Err(e) => return Err(e.into()),
    }
    Ok(Output::Once(json!({
        "Extra": "",
        "ID": peer.to_base58(),
        "Responses": Value::Null,
        "Type": 5,
    })))
}

/// `dht/query <peerID>`: the closest peers to the id on the WAN DHT, each as a routing event of
/// type 2 (FinalPeer), after the lookup ends (Kubo also streams the lookup's progress events,
/// types 0 and 1; cairn sends only the result).
pub(crate) async fn dht_query(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let peer = cairn_node_core::parse_peer_id(req.arg(0, "peerID")?)?;
    let found = state.inner.node.closest_peers(peer.to_bytes()).await?;
    if found.peers.is_empty() {
        return Err(ApiError::command("failed to find any peer in table"));
    }
    let events: Vec<Result<Value, ApiError>> = found
        .peers
        .iter()
        .map(|p| {
            Ok(json!({
                "Extra": "",
                "ID": p.to_base58(),
                "Responses": Value::Null,
                "Type": 2,
            }))
        })
        .collect();
    Ok(Output::Stream(futures::stream::iter(events).boxed()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_dump_is_gos() {
        // Go: hex.Dump([]byte("/ipfs/bafy0123456789"))
        let expected = format!(
            "00000000  2f 69 70 66 73 2f 62 61  66 79 30 31 32 33 34 35  |/ipfs/bafy012345|\n\
             00000010  36 37 38 39{}|6789|\n",
            " ".repeat(39)
        );
        assert_eq!(hex_dump(b"/ipfs/bafy0123456789"), expected);
    }

    #[test]
    fn dht_keys_are_kubos() {
        let peer = PeerId::random();
        let (key, p) = dht_key(&format!("/ipns/{}", peer.to_base58())).unwrap();
        assert_eq!(p, peer);
        assert_eq!(key, [b"/ipns/".as_slice(), &peer.to_bytes()].concat());
        let k51 = Name::from_peer_id(peer).to_string();
        assert_eq!(dht_key(&format!("/pk/{k51}")).unwrap().1, peer);
        for bad in ["/v/x", "ipns/x", "/ipns/x/y", "/ipns/notapeer"] {
            assert!(dht_key(bad).is_err(), "{bad}");
        }
    }
}

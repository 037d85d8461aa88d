//! IPNS on a [`Node`]: named keys, publishing signed records to the DHT, resolving names, and
//! republishing this node's records, as Kubo's `key`, `name publish` and `name resolve` do.
//!
//! - Keys: `self` is the node's identity; the others live in the [`Keystore`].
//! - Publishing ([`Node::name_publish`]) signs a V1+V2 record ([`cairn_ipns::IpnsRecord`]),
//!   keeps it durably in the blockstore under Kubo's datastore key (`/ipns/<peer id bytes>`),
//!   and puts it in the DHT (both of Kubo's DHTs), with the public key under `/pk/` when the
//!   name cannot carry it (RSA). The sequence follows boxo's publisher: the last published
//!   record's, plus one when the value changes (or when the new record would end sooner, which
//!   the DHT would refuse as older).
//! - Resolving ([`Node::name_resolve`]) asks the DHT (this node's own records included), keeps
//!   the best valid record by the IPNS order, and follows `/ipns/` values up to
//!   [`MAX_RESOLVE_DEPTH`] names.
//! - The republisher ([`Node::republish_names`], run every `Ipns.RepublishPeriod` by the node)
//!   re-signs each record this node published with a new end of life (`Ipns.RecordLifetime`),
//!   as Kubo's does.

use std::time::{Duration, SystemTime};

use cairn_ipns::{IpnsRecord, Name};
use libp2p::PeerId;
use libp2p::identity::Keypair;

use crate::NodeError;
use crate::keystore::{KeyInfo, Keystore, SELF_KEY};
use crate::node::Node;

/// boxo's `namesys.DefaultDepthLimit`: how many names a resolution follows.
pub const MAX_RESOLVE_DEPTH: usize = 32;
/// Kubo's default `Ipns.RepublishPeriod`.
pub const DEFAULT_REPUBLISH_PERIOD: Duration = Duration::from_secs(4 * 3600);
/// Kubo's republisher waits this long after start before its first round.
pub const REPUBLISH_INITIAL_DELAY: Duration = Duration::from_secs(60);

/// boxo's `namesys.ErrResolveFailed` text.
pub const ERR_RESOLVE_FAILED: &str = "could not resolve name";

/// How [`Node::name_publish`] signs and sends a record (Kubo's `name publish` options).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PublishOptions {
    /// The key: `self`, a keystore name, or the peer id of one of them. Default `self`.
    pub key: String,
    /// How long the record is valid (its end of life is now + this). Default 48 h.
    pub lifetime: Duration,
    /// The cache hint written in the record. Default 5 min (capped at `lifetime`).
    pub ttl: Duration,
    /// A sequence number to use instead of the next one; it must be higher than the current.
    pub sequence: Option<u64>,
    /// Write the V1 fields and signature too (Kubo's `--v1compat`, default true).
    pub v1_compatible: bool,
    /// Succeed when no DHT peer took the record (it is kept locally and republished).
    pub allow_offline: bool,
    /// Do not send the record anywhere: keep it locally only (Kubo's `--offline` with
    /// `--allow-offline`); this node still resolves it, and the republisher sends it later.
    pub offline: bool,
}

impl Default for PublishOptions {
    fn default() -> Self {
        PublishOptions {
            key: SELF_KEY.to_string(),
            lifetime: cairn_ipns::DEFAULT_RECORD_LIFETIME,
            ttl: cairn_ipns::DEFAULT_RECORD_TTL,
            sequence: None,
            v1_compatible: true,
            allow_offline: false,
            offline: false,
        }
    }
}

/// What [`Node::name_publish`] did.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Published {
    /// The name (the key's peer id).
    pub name: Name,
    /// The value published (`/ipfs/<cid>...` or `/ipns/<name>...`).
    pub value: String,
    /// The record's sequence number.
    pub sequence: u64,
    /// The signed record, as it went to the DHT.
    pub record: IpnsRecord,
    /// How many DHT peers took it (0 with `allow_offline` and no peers).
    pub peers: usize,
}

/// The node's key of a name, the datastore key of its own published record.
fn own_record_key(peer: &PeerId) -> Vec<u8> {
    cairn_ipns::routing_key(peer)
}

/// A content path for a publish value: `/ipfs/...` and `/ipns/...` as they are, a bare CID as
/// `/ipfs/<cid>` (Kubo accepts both).
pub fn normalize_value(value: &str) -> Result<String, NodeError> {
    let value = value.trim();
    if value.starts_with("/ipfs/") || value.starts_with("/ipns/") || value.starts_with("/ipld/") {
        return Ok(value.to_string());
    }
    let first = value.split('/').next().unwrap_or_default();
    cid::Cid::try_from(first)
        .map(|_| format!("/ipfs/{value}"))
        .map_err(|_| {
            NodeError::Ipns(format!(
                "invalid path {value:?}: not a /ipfs/ or /ipns/ path nor a CID"
            ))
        })
}

impl Node {
    /// The node's keystore (keys other than `self`).
    pub fn keystore(&self) -> &Keystore {
        &self.shared().keystore
    }

    /// Every key: `self` first, then the keystore's, sorted by name (Kubo's `key list`).
    ///
    /// # Errors
    /// [`NodeError::Keystore`] if the keystore cannot be read.
    pub fn keys(&self) -> Result<Vec<KeyInfo>, NodeError> {
        let mut out = vec![KeyInfo {
            name: SELF_KEY.to_string(),
            id: self.peer_id(),
        }];
        for name in self.keystore().names()? {
            match self.keystore().info(&name) {
                Ok(info) => out.push(info),
                // Kubo logs and skips a key it cannot read.
                Err(e) => tracing::error!("cannot get key {name:?} from keystore: {e}"),
            }
        }
        Ok(out)
    }

    /// The key pair of `key`: `self`, a keystore name, or the peer id (any spelling) of one.
    ///
    /// # Errors
    /// [`NodeError::Ipns`] Kubo's `'"x"' is not a known key, an IPNS Name, or a valid PeerID`.
    pub fn key_pair(&self, key: &str) -> Result<Keypair, NodeError> {
        if key == SELF_KEY || key.is_empty() {
            return Ok(self.shared().keypair.clone());
        }
        if let Ok(k) = self.keystore().get(key) {
            return Ok(k);
        }
        if let Ok(name) = Name::parse(key) {
            let peer = name.peer_id();
            if peer == self.peer_id() {
                return Ok(self.shared().keypair.clone());
            }
            for info in self.keys()? {
                if info.id == peer {
                    return Ok(self.keystore().get(&info.name)?);
                }
            }
        }
        Err(NodeError::Ipns(format!(
            "'{key:?}' is not a known key, an IPNS Name, or a valid PeerID"
        )))
    }

    /// The last record this node published for `peer`, if any (from the blockstore).
    ///
    /// # Errors
    /// [`NodeError::Blockstore`], or [`NodeError::Ipns`] for a stored record that no longer
    /// decodes.
    pub fn published_record(&self, peer: &PeerId) -> Result<Option<IpnsRecord>, NodeError> {
        let Some(bytes) = self.blockstore()?.get_record(&own_record_key(peer))? else {
            return Ok(None);
        };
        IpnsRecord::decode(&bytes)
            .map(Some)
            .map_err(|e| NodeError::Ipns(e.to_string()))
    }

    /// Publishes `value` under the name of `opts.key` (Kubo's `name publish`): signs the next
    /// record, keeps it durably, and puts it in the DHT.
    ///
    /// # Errors
    /// [`NodeError::Ipns`] for a bad value, an unknown key, a sequence not above the current,
    /// or a record that cannot be made; [`NodeError::Routing`] when no DHT peer took it and
    /// `allow_offline` is not set (the record is still kept and republished).
    pub async fn name_publish(
        &self,
        value: &str,
        opts: PublishOptions,
    ) -> Result<Published, NodeError> {
        let value = normalize_value(value)?;
        let keypair = self.key_pair(&opts.key)?;
        let peer = keypair.public().to_peer_id();
        let previous = self.published_record(&peer)?;
        let sequence = match (&previous, opts.sequence) {
            (Some(p), Some(s)) if s <= p.sequence() => {
                return Err(NodeError::Ipns(format!(
                    "sequence number ({s}) must be greater than the current record sequence ({})",
                    p.sequence()
                )));
            }
            (_, Some(s)) => s,
            // boxo's publisher bumps the sequence only when the value changes; cairn also bumps
            // it when the new record would end sooner than the last (a shorter lifetime), which
            // Kubo's DHT would refuse as older ("can't replace a newer value...").
            (Some(p), None)
                if p.value() == value.as_bytes()
                    && p.validity()
                        .is_ok_and(|eol| eol <= SystemTime::now() + opts.lifetime) =>
            {
                p.sequence()
            }
            (Some(p), None) => p.sequence().saturating_add(1),
            (None, None) => 0,
        };
        let ttl = opts.ttl.min(opts.lifetime);
        let record = IpnsRecord::create(
            &keypair,
            value.as_bytes(),
            sequence,
            SystemTime::now() + opts.lifetime,
            ttl,
            opts.v1_compatible,
            false,
        )
        .map_err(|e| NodeError::Ipns(e.to_string()))?;
        self.blockstore()?
            .put_record(&own_record_key(&peer), record.as_bytes())?;
        let peers = if opts.offline {
            0
        } else {
            self.send_record(&keypair, &record, opts.allow_offline)
                .await?
        };
        Ok(Published {
            name: Name::from_peer_id(peer),
            value,
            sequence,
            record,
            peers,
        })
    }

    /// Puts a signed record (and, for keys a peer id cannot carry, the public key under `/pk/`)
    /// in the DHT.
    async fn send_record(
        &self,
        keypair: &Keypair,
        record: &IpnsRecord,
        allow_offline: bool,
    ) -> Result<usize, NodeError> {
        let peer = keypair.public().to_peer_id();
        self.pubsub_send(record, peer).await;
        let sent = self
            .put_value(cairn_ipns::routing_key(&peer), record.to_bytes())
            .await;
        if matches!(cairn_ipns::inlined_public_key(&peer), Ok(None)) {
            let pk = keypair.public().encode_protobuf();
            if let Err(e) = self
                .put_value(cairn_ipns::public_key_routing_key(&peer), pk)
                .await
            {
                tracing::debug!(%peer, "public key not put in the DHT: {e}");
            }
        }
        match sent {
            Ok(n) => Ok(n),
            Err(NodeError::Routing(_)) if allow_offline => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// The best valid record for `name` in the DHT (this node's own store included), validated
    /// against the name at this moment.
    ///
    /// # Errors
    /// [`NodeError::Ipns`] ([`ERR_RESOLVE_FAILED`]) when there is none.
    pub async fn name_record(&self, name: &Name) -> Result<IpnsRecord, NodeError> {
        let values = match self.get_values(name.routing_key()).await {
            Ok(v) => v,
            Err(NodeError::Routing(_)) => Vec::new(),
            Err(e) => return Err(e),
        };
        let now = SystemTime::now();
        let mut records: Vec<IpnsRecord> = values
            .iter()
            .filter_map(|v| IpnsRecord::decode(v).ok())
            .collect();
        records.extend(self.pubsub_record(name).await);
        // This node's own last record for the name (kept across restarts, and the only copy
        // of one published offline).
        if let Ok(Some(own)) = self.published_record(&name.peer_id()) {
            records.push(own);
        }
        records.retain(|r| cairn_ipns::validate(r, &name.peer_id(), now).is_ok());
        let best = cairn_ipns::select_best(&records)
            .ok_or_else(|| NodeError::Ipns(ERR_RESOLVE_FAILED.to_string()))?;
        Ok(records
            .into_iter()
            .nth(best)
            .expect("index from select_best"))
    }

    /// Resolves an IPNS path (`/ipns/<name>[/rest]`, or a bare name) to the path its record
    /// points at, with `rest` appended (Kubo's `name resolve`). With `recursive`, `/ipns/`
    /// values are followed until a non-IPNS path, at most [`MAX_RESOLVE_DEPTH`] names.
    ///
    /// # Errors
    /// [`NodeError::Ipns`]: a bad name, [`ERR_RESOLVE_FAILED`] when no valid record is found,
    /// or Kubo's `could not resolve name (recursion limit exceeded)`.
    pub async fn name_resolve(&self, path: &str, recursive: bool) -> Result<String, NodeError> {
        let mut current = if path.starts_with("/ipns/") {
            path.to_string()
        } else {
            format!("/ipns/{path}")
        };
        for _ in 0..MAX_RESOLVE_DEPTH {
            let Some(rest) = current.strip_prefix("/ipns/") else {
                return Ok(current);
            };
            let (name, tail) = match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, ""),
            };
            let name = Name::parse(name).map_err(|e| NodeError::Ipns(e.to_string()))?;
            let record = self.name_record(&name).await?;
            let value = record
                .value_path()
                .map_err(|e| NodeError::Ipns(e.to_string()))?;
            current = format!("{}{tail}", value.trim_end_matches('/'));
            if !recursive {
                return Ok(current);
            }
        }
        if current.starts_with("/ipns/") {
            return Err(NodeError::Ipns(format!(
                "{ERR_RESOLVE_FAILED} (recursion limit exceeded)"
            )));
        }
        Ok(current)
    }

    /// Re-signs every record this node published whose key it still holds, with the same
    /// value and sequence and a new end of life `lifetime` from now, and puts each in the DHT
    /// (Kubo's republisher). Returns how many were republished.
    ///
    /// # Errors
    /// [`NodeError::Blockstore`] if the stored records cannot be listed; a record that fails to
    /// republish is logged and skipped.
    pub async fn republish_names(&self, lifetime: Duration) -> Result<usize, NodeError> {
        let stored = self.blockstore()?.records_with_prefix(b"/ipns/")?;
        let mut keys: Vec<Keypair> = vec![self.shared().keypair.clone()];
        for name in self.keystore().names()? {
            if let Ok(k) = self.keystore().get(&name) {
                keys.push(k);
            }
        }
        let mut done = 0;
        for (key, bytes) in stored {
            let Ok(peer) = cairn_ipns::peer_from_routing_key(&key) else {
                continue;
            };
            let Some(keypair) = keys.iter().find(|k| k.public().to_peer_id() == peer) else {
                continue; // the key was removed: Kubo stops republishing it too
            };
            let Ok(old) = IpnsRecord::decode(&bytes) else {
                continue;
            };
            let ttl = old.ttl().unwrap_or(cairn_ipns::DEFAULT_RECORD_TTL);
            let record = match IpnsRecord::create(
                keypair,
                old.value(),
                old.sequence(),
                SystemTime::now() + lifetime,
                ttl,
                old.signature_v1().is_some(),
                false,
            ) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(%peer, "cannot re-sign IPNS record: {e}");
                    continue;
                }
            };
            self.blockstore()?.put_record(&key, record.as_bytes())?;
            match self.send_record(keypair, &record, true).await {
                Ok(_) => done += 1,
                Err(e) => tracing::warn!(%peer, "IPNS republish failed: {e}"),
            }
        }
        Ok(done)
    }
}

/// When the republisher runs and how long its records live: Kubo's `Ipns.RepublishPeriod`
/// (default 4 h; `0` turns republishing off)
/// and `Ipns.RecordLifetime` (default 48 h).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpnsTiming {
    /// How often records are republished; `None` never.
    pub republish_period: Option<Duration>,
    /// The end of life a republished record gets, from the moment it is re-signed.
    pub record_lifetime: Duration,
}

impl IpnsTiming {
    /// The `Ipns` section of a config (Go durations such as `4h`).
    ///
    /// # Errors
    /// [`crate::RepoError::InvalidValue`] for a value that is not a duration.
    pub fn from_config(config: &crate::Config) -> Result<Self, crate::RepoError> {
        let ipns = config.extra.get("Ipns");
        let duration = |key: &str| -> Result<Option<Duration>, crate::RepoError> {
            match ipns.and_then(|i| i.get(key)).filter(|v| !v.is_null()) {
                None => Ok(None),
                Some(v) => v
                    .as_str()
                    .and_then(|s| {
                        if s == "0" {
                            Some(Duration::ZERO)
                        } else {
                            crate::config::parse_go_duration(s)
                        }
                    })
                    .map(Some)
                    .ok_or_else(|| crate::RepoError::InvalidValue {
                        key: format!("Ipns.{key}"),
                        reason: "expected a duration like 4h".into(),
                    }),
            }
        };
        let period = duration("RepublishPeriod")?.unwrap_or(DEFAULT_REPUBLISH_PERIOD);
        Ok(IpnsTiming {
            republish_period: (!period.is_zero()).then_some(period),
            record_lifetime: duration("RecordLifetime")?
                .filter(|d| !d.is_zero())
                .unwrap_or(cairn_ipns::DEFAULT_RECORD_LIFETIME),
        })
    }
}

/// Starts the republisher: after [`REPUBLISH_INITIAL_DELAY`], then every period, it runs
/// [`Node::republish_names`]. It holds the node weakly (a node is not kept alive by its own
/// republisher) and ends at shutdown.
pub(crate) fn spawn_republisher(node: &Node, timing: IpnsTiming) {
    let Some(period) = timing.republish_period else {
        return;
    };
    let weak = node.downgrade();
    let cancel = node.shutdown_token();
    tokio::spawn(async move {
        let mut delay = REPUBLISH_INITIAL_DELAY.min(period);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(delay) => {}
            }
            let Some(node) = Node::upgrade(&weak) else {
                return;
            };
            match node.republish_names(timing.record_lifetime).await {
                Ok(n) if n > 0 => tracing::info!("republished {n} IPNS records"),
                Ok(_) => {}
                Err(e) => tracing::warn!("IPNS republish: {e}"),
            }
            delay = period;
        }
    });
}

/// IPNS over pubsub (Kubo's `--enable-namesys-pubsub`, `Ipns.UsePubsub`): records also travel
/// on gossipsub, on go-libp2p-pubsub-router's topic for the name's routing key, so a resolver
/// subscribed to a name hears every update at once. The DHT stays the source for a first
/// lookup; a subscription is made by the first resolve (or publish) of a name and lasts until
/// `name/pubsub/cancel`.
///
/// Memory: one task and one record (at most 10 KiB) per subscribed name, at most
/// [`MAX_PUBSUB_NAMES`] names.
#[derive(Debug, Default)]
pub(crate) struct NamePubsub {
    pub(crate) enabled: bool,
    subs: parking_lot::Mutex<std::collections::BTreeMap<PeerId, NameSub>>,
}

/// One subscribed name: its best record heard so far, and the task listening.
#[derive(Debug)]
struct NameSub {
    best: std::sync::Arc<parking_lot::Mutex<Option<IpnsRecord>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for NameSub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The most names followed over pubsub at once; past it, new names are resolved through the
/// DHT only.
pub const MAX_PUBSUB_NAMES: usize = 1024;

/// go-libp2p-pubsub-router's `KeyToTopic`: `/record/` + unpadded base64url of the routing key.
pub fn pubsub_topic(name: &Name) -> String {
    use base64::Engine as _;
    format!(
        "/record/{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(name.routing_key())
    )
}

impl NamePubsub {
    /// A state with IPNS over pubsub on or off.
    pub(crate) fn new(enabled: bool) -> Self {
        NamePubsub {
            enabled,
            subs: Default::default(),
        }
    }
}

impl Node {
    /// Whether IPNS over pubsub is on (Kubo's `name pubsub state`).
    pub fn name_pubsub_enabled(&self) -> bool {
        self.shared().name_pubsub.enabled
    }

    /// The names followed over pubsub (Kubo's `name pubsub subs`).
    pub fn name_pubsub_subs(&self) -> Vec<Name> {
        let subs = self.shared().name_pubsub.subs.lock();
        subs.keys().map(|p| Name::from_peer_id(*p)).collect()
    }

    /// The best record for `name` heard over pubsub so far, if this node follows the name
    /// (nothing is subscribed or fetched here).
    pub fn name_pubsub_record(&self, name: &Name) -> Option<IpnsRecord> {
        let subs = self.shared().name_pubsub.subs.lock();
        subs.get(&name.peer_id())
            .and_then(|s| s.best.lock().clone())
    }

    /// Stops following `name` over pubsub; returns whether it was followed (Kubo's
    /// `name pubsub cancel`).
    ///
    /// # Errors
    /// [`NodeError::NodeStopped`].
    pub async fn name_pubsub_cancel(&self, name: &Name) -> Result<bool, NodeError> {
        let removed = self
            .shared()
            .name_pubsub
            .subs
            .lock()
            .remove(&name.peer_id());
        if removed.is_some() {
            self.unsubscribe(pubsub_topic(name)).await?;
        }
        Ok(removed.is_some())
    }

    /// The best record for `name` heard over pubsub, subscribing to its topic first if this
    /// node does not follow it yet (then there is nothing yet: the DHT answers this time).
    async fn pubsub_record(&self, name: &Name) -> Option<IpnsRecord> {
        let state = &self.shared().name_pubsub;
        if !state.enabled {
            return None;
        }
        if let Some(sub) = state.subs.lock().get(&name.peer_id()) {
            return sub.best.lock().clone();
        }
        if state.subs.lock().len() >= MAX_PUBSUB_NAMES {
            return None;
        }
        let mut stream = match self.subscribe(pubsub_topic(name)).await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(%name, "IPNS pubsub subscribe: {e}");
                return None;
            }
        };
        let best = std::sync::Arc::new(parking_lot::Mutex::new(None::<IpnsRecord>));
        let keep = best.clone();
        let peer = name.peer_id();
        let task = tokio::spawn(async move {
            use futures::StreamExt as _;
            while let Some(msg) = stream.next().await {
                let Ok(record) = IpnsRecord::decode(&msg.data) else {
                    continue;
                };
                if cairn_ipns::validate(&record, &peer, SystemTime::now()).is_err() {
                    continue;
                }
                let mut best = keep.lock();
                let newer = best
                    .as_ref()
                    .is_none_or(|b| cairn_ipns::compare(&record, b) == std::cmp::Ordering::Greater);
                if newer {
                    *best = Some(record);
                }
            }
        });
        state
            .subs
            .lock()
            .entry(name.peer_id())
            .or_insert(NameSub { best, task });
        None
    }

    /// Sends a record on its name's pubsub topic (subscribing first, as go-libp2p-pubsub-router
    /// does, so the node keeps hearing its name).
    async fn pubsub_send(&self, record: &IpnsRecord, peer: PeerId) {
        if !self.name_pubsub_enabled() {
            return;
        }
        let name = Name::from_peer_id(peer);
        let _ = self.pubsub_record(&name).await;
        if let Some(sub) = self.shared().name_pubsub.subs.lock().get(&peer) {
            *sub.best.lock() = Some(record.clone());
        }
        if let Err(e) = self.publish(pubsub_topic(&name), record.to_bytes()).await {
            tracing::debug!(%name, "IPNS pubsub publish: {e}");
        }
    }
}

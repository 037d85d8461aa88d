//! Kubo's dual DHT: a WAN Kademlia on `/ipfs/kad/1.0.0` and a LAN one on `/ipfs/lan/kad/1.0.0`,
//! both in server mode, with provide, find-providers and find-peer running over both.
//!
//! Why two: Kubo (go-libp2p-kad-dht's `dual` package) runs the WAN DHT with a routing-table filter
//! that keeps only peers with public addresses, and a LAN DHT (the protocol with the `/lan`
//! extension) that keeps only peers with private or loopback addresses. `Provide` goes to the WAN
//! DHT only while its table has peers, else to the LAN one; `FindProviders` and `FindPeer` ask
//! both. A Kubo node that sees cairn on 127.0.0.1 or a LAN address therefore never puts provider
//! records to cairn over `/ipfs/kad/1.0.0`, and a Kubo without public reachability does not even
//! serve that protocol (its WAN DHT stays a client): the LAN protocol is the only way to exchange
//! records with it. cairn serves and queries both, and merges the answers (each provider and each
//! address once).
//!
//! The event loop owns the swarm and forwards the two behaviours' query events here; replies
//! wait in this module's maps, keyed by which DHT ran the query (query ids are per behaviour and
//! collide across the two).

use std::collections::{HashMap, HashSet};

use libp2p::kad::{self, QueryId, QueryResult};
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId, StreamProtocol};
use tokio::sync::{mpsc, oneshot};

use crate::behaviour::Behaviour;
use crate::error::NodeError;
use crate::types::{ClosestPeers, LookupStats, NodeEvent, Provider};

/// Kubo's LAN DHT protocol: `/ipfs` + go-libp2p-kad-dht's `LanExtension` (`/lan`) + `/kad/1.0.0`.
pub const LAN_KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/ipfs/lan/kad/1.0.0");

type Reply<T> = oneshot::Sender<Result<T, NodeError>>;

/// Which of the two DHTs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Dht {
    /// `/ipfs/kad/1.0.0`, the public network's DHT.
    Wan,
    /// `/ipfs/lan/kad/1.0.0`, Kubo's DHT among private and loopback addresses.
    Lan,
}

impl Dht {
    const BOTH: [Dht; 2] = [Dht::Wan, Dht::Lan];
}

/// The behaviour of one of the two DHTs.
pub(crate) fn kad_of(
    b: &mut Behaviour,
    dht: Dht,
) -> &mut kad::Behaviour<crate::provider_store::ProviderStore> {
    match dht {
        Dht::Wan => &mut b.kad,
        Dht::Lan => &mut b.lan_kad,
    }
}

/// Whether an address is one Kubo's LAN DHT keeps (go-libp2p-kad-dht's
/// `PrivateRoutingTableFilter` looks for such an address): loopback, RFC 1918 private, link-local,
/// CGNAT shared space, IPv6 unique-local. DNS names are not resolved here and do not count.
pub(crate) fn is_lan_addr(addr: &Multiaddr) -> bool {
    match addr.iter().next() {
        Some(Protocol::Ip4(ip)) => {
            let o = ip.octets();
            ip.is_loopback()
                || ip.is_private()
                || ip.is_link_local()
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
        }
        Some(Protocol::Ip6(ip)) => {
            let s = ip.segments()[0];
            ip.is_loopback() || (s & 0xfe00) == 0xfc00 || (s & 0xffc0) == 0xfe80
        }
        _ => false,
    }
}

/// The addresses the DHTs know for a peer: from both routing tables, and from the provider
/// answers that named it, each once.
pub(crate) fn table_addrs(b: &mut Behaviour, peer: &PeerId) -> Vec<Multiaddr> {
    let mut out: Vec<Multiaddr> = Vec::new();
    for kad in [&b.kad, &b.lan_kad] {
        for a in kad.provider_addrs(peer).unwrap_or_default() {
            if !out.contains(a) {
                out.push(a.clone());
            }
        }
    }
    for dht in Dht::BOTH {
        for bucket in kad_of(b, dht).kbuckets() {
            for entry in bucket.iter() {
                if entry.node.key.preimage() == peer {
                    for a in entry.node.value.iter() {
                        if !out.contains(a) {
                            out.push(a.clone());
                        }
                    }
                }
            }
        }
    }
    out
}

/// Feeds a peer's identify information to the DHTs it serves: every listen address to the WAN
/// table (as before: cairn's WAN table does not filter, so cairn nodes on one host still find each
/// other), the private and loopback ones to the LAN table, as Kubo's LAN filter does.
pub(crate) fn add_identified(
    b: &mut Behaviour,
    peer: &PeerId,
    protocols: &[StreamProtocol],
    listen_addrs: &[Multiaddr],
) {
    if protocols.contains(&crate::behaviour::KAD_PROTOCOL) {
        for addr in listen_addrs {
            b.kad.add_address(peer, addr.clone());
        }
    }
    if protocols.contains(&LAN_KAD_PROTOCOL) {
        for addr in listen_addrs.iter().filter(|a| is_lan_addr(a)) {
            b.lan_kad.add_address(peer, addr.clone());
        }
    }
}

/// Every peer in either routing table, with its common prefix length (CPL) with this node: how
/// many leading bits of its DHT key (SHA-256 of the peer id) match ours. The connection manager
/// values routing-table peers by it, as go-libp2p-kad-dht tags them (see `crate::connmgr`).
pub(crate) fn table_peers_cpl(b: &mut Behaviour, local: &PeerId) -> HashMap<PeerId, u32> {
    let me = kad::KBucketKey::from(*local);
    let mut out = HashMap::new();
    for dht in Dht::BOTH {
        for bucket in kad_of(b, dht).kbuckets() {
            for entry in bucket.iter() {
                // The distance's highest set bit is 255 − CPL; only our own key has none.
                if let Some(bit) = me.distance(entry.node.key).ilog2() {
                    out.insert(*entry.node.key.preimage(), 255 - bit);
                }
            }
        }
    }
    out
}

/// Drops a peer that could not be dialled from both routing tables, as go-libp2p-kad-dht drops a
/// peer whose dial fails during a query. rust-libp2p keeps an unreachable peer in its table until
/// a newcomer needs its bucket slot, so without this a node that left stays in the tables of a
/// network whose buckets are not full, and every lookup that picks it waits on a failed dial.
/// Only failures that say the peer is not at its addresses count: a dial refused by our own
/// limits, aborted, or not made (already dialling, no address) says nothing about the peer.
pub(crate) fn on_dial_failure(b: &mut Behaviour, peer: &PeerId, error: &libp2p::swarm::DialError) {
    use libp2p::swarm::DialError;
    let unreachable = matches!(
        error,
        DialError::Transport(_) | DialError::WrongPeerId { .. }
    );
    if !unreachable {
        return;
    }
    let mut removed = false;
    for kad in [&mut b.kad, &mut b.lan_kad] {
        removed |= kad.remove_peer(peer).is_some();
    }
    if removed {
        tracing::debug!(%peer, "unreachable: removed from the DHT routing tables");
    }
}

/// Reports the provider records a peer's request stored in one of the DHTs (kad runs with
/// `StoreInserts::Unfiltered`: the store has already validated and kept them, see
/// [`crate::provider_store`]).
pub(crate) fn on_inbound(
    b: &mut Behaviour,
    dht: Dht,
    request: kad::InboundRequest,
) -> Vec<NodeEvent> {
    if !matches!(request, kad::InboundRequest::AddProvider { .. }) {
        return Vec::new();
    }
    kad_of(b, dht)
        .store_mut()
        .take_stored()
        .into_iter()
        .map(|(key, provider)| NodeEvent::ProviderRecordStored {
            key: key.to_vec(),
            provider,
            lan: dht == Dht::Lan,
        })
        .collect()
}

/// Kubo's `dhtrecordcount` (go-libp2p-kad-dht's default quorum for `GetValue`): a lookup stops
/// after this many valid records and answers with the best.
pub(crate) const RECORD_QUORUM: usize = 16;

/// A value put on both DHTs: succeeds if a peer of either took it.
struct ValuePut {
    reply: Reply<usize>,
    outstanding: usize,
    stored_on: usize,
    error: Option<String>,
}

/// A value lookup on both DHTs: the valid records both found (this node's own included).
struct ValueLookup {
    reply: Reply<Vec<Vec<u8>>>,
    outstanding: usize,
    values: Vec<Vec<u8>>,
}

/// A provide running on both DHTs: succeeds if either announcement did.
struct Provide {
    reply: Reply<()>,
    outstanding: usize,
    succeeded: bool,
    error: Option<String>,
}

/// A provider lookup on both DHTs, feeding one stream.
struct Lookup {
    sender: mpsc::Sender<Provider>,
    seen: HashSet<PeerId>,
    limit: usize,
    outstanding: usize,
}

/// A peer lookup on both DHTs: the addresses either found, merged.
struct PeerLookup {
    target: PeerId,
    reply: Reply<Vec<Multiaddr>>,
    outstanding: usize,
    addrs: Vec<Multiaddr>,
}

/// One progress report of a DHT query, as kad's `OutboundQueryProgressed` gives it.
pub(crate) struct QueryStep {
    /// The query.
    pub id: QueryId,
    /// What this step found.
    pub result: QueryResult,
    /// Whether this is the query's last report.
    pub last: bool,
    /// Requests so far and the time taken.
    pub stats: kad::QueryStats,
}

/// The operations in flight on the two DHTs.
#[derive(Default)]
pub(crate) struct DualDht {
    next_op: u64,
    /// Which operation each running query belongs to.
    queries: HashMap<(Dht, QueryId), u64>,
    provides: HashMap<u64, Provide>,
    lookups: HashMap<u64, Lookup>,
    peer_lookups: HashMap<u64, PeerLookup>,
    /// `closest_peers` lookups (WAN only), by query id.
    closest: HashMap<QueryId, Reply<ClosestPeers>>,
    value_puts: HashMap<u64, ValuePut>,
    value_lookups: HashMap<u64, ValueLookup>,
}

impl DualDht {
    fn op(&mut self) -> u64 {
        self.next_op += 1;
        self.next_op
    }

    /// Starts one query of operation `op` on each DHT with `start`; returns how many started
    /// and the last error of those that did not.
    fn start_both<E: ToString>(
        &mut self,
        b: &mut Behaviour,
        op: u64,
        mut start: impl FnMut(
            &mut kad::Behaviour<crate::provider_store::ProviderStore>,
        ) -> Result<QueryId, E>,
    ) -> (usize, Option<String>) {
        let mut started = 0;
        let mut error = None;
        for dht in Dht::BOTH {
            match start(kad_of(b, dht)) {
                Ok(id) => {
                    self.queries.insert((dht, id), op);
                    started += 1;
                }
                Err(e) => error = Some(e.to_string()),
            }
        }
        (started, error)
    }

    /// Announces `key` on both DHTs (Kubo picks one; announcing on both reaches Kubo whichever it
    /// uses, and costs a second walk only when both tables have peers). Replies once both finished.
    pub fn provide(&mut self, b: &mut Behaviour, key: kad::RecordKey, reply: Reply<()>) {
        let op = self.op();
        let (started, error) = self.start_both(b, op, |kad| kad.start_providing(key.clone()));
        if started == 0 {
            let e = error.unwrap_or_default();
            let _ = reply.send(Err(NodeError::Routing(format!("provide: {e}"))));
            return;
        }
        self.provides.insert(
            op,
            Provide {
                reply,
                outstanding: started,
                succeeded: false,
                error,
            },
        );
    }

    /// Looks for providers of `key` on both DHTs; each provider goes to `sender` once. The stream
    /// ends after `limit` providers or when both queries end.
    pub fn find_providers(
        &mut self,
        b: &mut Behaviour,
        key: kad::RecordKey,
        limit: usize,
        sender: mpsc::Sender<Provider>,
    ) {
        let op = self.op();
        for dht in Dht::BOTH {
            let id = kad_of(b, dht).get_providers(key.clone());
            self.queries.insert((dht, id), op);
        }
        self.lookups.insert(
            op,
            Lookup {
                sender,
                seen: HashSet::new(),
                limit,
                outstanding: 2,
            },
        );
    }

    /// Looks `target` up on both DHTs; replies with the addresses found, or those the tables
    /// know, or [`NodeError::PeerNotFound`].
    pub fn find_peer(&mut self, b: &mut Behaviour, target: PeerId, reply: Reply<Vec<Multiaddr>>) {
        let op = self.op();
        for dht in Dht::BOTH {
            let id = kad_of(b, dht).get_closest_peers(target);
            self.queries.insert((dht, id), op);
        }
        self.peer_lookups.insert(
            op,
            PeerLookup {
                target,
                reply,
                outstanding: 2,
                addrs: Vec::new(),
            },
        );
    }

    /// Runs an iterative FIND_NODE for `key` on the WAN DHT only, as Kubo's `dht query` does
    /// (the LAN DHT holds only the peers on private addresses); replies with the closest peers
    /// found and the lookup's cost once it ends.
    pub fn closest_peers(&mut self, b: &mut Behaviour, key: Vec<u8>, reply: Reply<ClosestPeers>) {
        let id = b.kad.get_closest_peers(key);
        self.closest.insert(id, reply);
    }

    /// Stores `value` under `key` (already validated) in this node's DHT stores and sends it to
    /// the closest peers on both DHTs, as go-libp2p-kad-dht's `PutValue` does on Kubo's dual
    /// DHT. Replies with how many peers took it, or with [`NodeError::Routing`] if none did
    /// (`failed to find any peer in table` when neither table has a peer).
    pub fn put_value(
        &mut self,
        b: &mut Behaviour,
        key: Vec<u8>,
        value: Vec<u8>,
        reply: Reply<usize>,
    ) {
        use kad::store::RecordStore as _;
        let rkey = kad::RecordKey::new(&key);
        for dht in Dht::BOTH {
            if let Some(held) = kad_of(b, dht).store_mut().get(&rkey)
                && crate::dht_records::compare(&key, &value, &held.value)
                    == std::cmp::Ordering::Less
            {
                // go-libp2p-kad-dht's PutValue refuses to replace a better local record.
                let e = crate::dht_records::RecordError::Outdated;
                let _ = reply.send(Err(NodeError::InvalidRecord(e)));
                return;
            }
        }
        let op = self.op();
        let record = kad::Record {
            key: rkey,
            value,
            publisher: None,
            expires: None,
        };
        let (started, error) = self.start_both(b, op, |kad| {
            kad.put_record(record.clone(), kad::Quorum::One)
        });
        if started == 0 {
            let e = error.unwrap_or_default();
            let _ = reply.send(Err(NodeError::Routing(format!("put value: {e}"))));
            return;
        }
        self.value_puts.insert(
            op,
            ValuePut {
                reply,
                outstanding: started,
                stored_on: 0,
                error,
            },
        );
    }

    /// Looks `key` up on both DHTs (this node's own store first); replies with every valid
    /// record found, distinct, once both lookups end or [`RECORD_QUORUM`] were found. The caller
    /// picks the best ([`crate::dht_records::select`]).
    pub fn get_value(&mut self, b: &mut Behaviour, key: Vec<u8>, reply: Reply<Vec<Vec<u8>>>) {
        let op = self.op();
        for dht in Dht::BOTH {
            let id = kad_of(b, dht).get_record(kad::RecordKey::new(&key));
            self.queries.insert((dht, id), op);
        }
        self.value_lookups.insert(
            op,
            ValueLookup {
                reply,
                outstanding: 2,
                values: Vec::new(),
            },
        );
    }

    /// Forgets lookups whose consumer went away, stopping their queries.
    pub fn prune(&mut self, b: &mut Behaviour) {
        let gone: HashSet<u64> = self
            .lookups
            .iter()
            .filter(|(_, l)| l.sender.is_closed())
            .map(|(op, _)| *op)
            .collect();
        if gone.is_empty() {
            return;
        }
        self.lookups.retain(|op, _| !gone.contains(op));
        self.finish_queries(b, &gone);
    }

    fn finish_queries(&mut self, b: &mut Behaviour, ops: &HashSet<u64>) {
        let ids: Vec<(Dht, QueryId)> = self
            .queries
            .iter()
            .filter(|(_, op)| ops.contains(op))
            .map(|(k, _)| *k)
            .collect();
        for (dht, id) in ids {
            self.queries.remove(&(dht, id));
            if let Some(mut q) = kad_of(b, dht).query_mut(&id) {
                q.finish();
            }
        }
    }

    /// A query step of one DHT. `addrs_of` gives the addresses known for a provider (connected
    /// peers' included, which only the event loop knows).
    pub fn on_query(
        &mut self,
        b: &mut Behaviour,
        dht: Dht,
        step: QueryStep,
        addrs_of: &mut dyn FnMut(&mut Behaviour, &PeerId) -> Vec<Multiaddr>,
    ) {
        let QueryStep {
            id,
            result,
            last,
            stats,
        } = step;
        let stats = &stats;
        if dht == Dht::Wan
            && last
            && let QueryResult::GetClosestPeers(r) = &result
            && let Some(reply) = self.closest.remove(&id)
        {
            // A timed-out lookup still reports the closest peers it reached.
            let peers = match r {
                Ok(ok) => &ok.peers,
                Err(kad::GetClosestPeersError::Timeout { peers, .. }) => peers,
            };
            let _ = reply.send(Ok(ClosestPeers {
                peers: peers.iter().map(|p| p.peer_id).collect(),
                stats: LookupStats::of(stats),
            }));
            return;
        }
        let Some(&op) = self.queries.get(&(dht, id)) else {
            return;
        };
        if last {
            self.queries.remove(&(dht, id));
        }
        match result {
            QueryResult::StartProviding(r) => {
                let Some(p) = self.provides.get_mut(&op) else {
                    return;
                };
                match r {
                    Ok(_) => p.succeeded = true,
                    Err(e) => p.error = Some(e.to_string()),
                }
                p.outstanding -= 1;
                if p.outstanding == 0 {
                    let p = self.provides.remove(&op).expect("present");
                    let result = if p.succeeded {
                        Ok(())
                    } else {
                        Err(NodeError::Routing(format!(
                            "provide: {}",
                            p.error.unwrap_or_default()
                        )))
                    };
                    let _ = p.reply.send(result);
                }
            }
            QueryResult::GetProviders(r) => {
                let Some(mut lookup) = self.lookups.remove(&op) else {
                    return;
                };
                // A failed query (timeout) ends that side; the other may still answer.
                let side_done = last || r.is_err();
                let mut all_done = false;
                if let Ok(kad::GetProvidersOk::FoundProviders { providers, .. }) = r {
                    for peer in providers {
                        if lookup.seen.insert(peer) {
                            let provider = Provider {
                                peer_id: peer,
                                addresses: addrs_of(b, &peer),
                            };
                            if lookup.sender.try_send(provider).is_err() {
                                all_done = true; // the consumer went away or cannot keep up
                            }
                        }
                    }
                    all_done |= lookup.seen.len() >= lookup.limit;
                }
                if side_done && !last {
                    if let Some(mut q) = kad_of(b, dht).query_mut(&id) {
                        q.finish();
                    }
                    self.queries.remove(&(dht, id));
                }
                if side_done {
                    lookup.outstanding -= 1;
                }
                if all_done || lookup.outstanding == 0 {
                    self.finish_queries(b, &HashSet::from([op]));
                    // Dropping the lookup drops the sender: the stream ends.
                } else {
                    self.lookups.insert(op, lookup);
                }
            }
            QueryResult::PutRecord(r) => {
                let Some(p) = self.value_puts.get_mut(&op) else {
                    return;
                };
                match r {
                    Ok(_) => p.stored_on += 1,
                    Err(
                        kad::PutRecordError::QuorumFailed { success, .. }
                        | kad::PutRecordError::Timeout { success, .. },
                    ) => {
                        p.stored_on += success.len();
                        if success.is_empty() {
                            p.error = Some("failed to find any peer in table".into());
                        }
                    }
                }
                if !last {
                    return;
                }
                p.outstanding -= 1;
                if p.outstanding == 0 {
                    let p = self.value_puts.remove(&op).expect("present");
                    let result = if p.stored_on > 0 {
                        Ok(p.stored_on)
                    } else {
                        Err(NodeError::Routing(p.error.unwrap_or_else(|| {
                            "failed to find any peer in table".into()
                        })))
                    };
                    let _ = p.reply.send(result);
                }
            }
            QueryResult::GetRecord(r) => {
                let Some(lookup) = self.value_lookups.get_mut(&op) else {
                    return;
                };
                let side_done = last || r.is_err();
                if let Ok(kad::GetRecordOk::FoundRecord(found)) = r {
                    let now = std::time::SystemTime::now();
                    let key = found.record.key.as_ref();
                    match crate::dht_records::validate(key, &found.record.value, now) {
                        Ok(()) if !lookup.values.contains(&found.record.value) => {
                            lookup.values.push(found.record.value);
                        }
                        Ok(()) => {}
                        Err(e) => {
                            tracing::debug!(peer = ?found.peer, "invalid record dropped: {e}")
                        }
                    }
                }
                if side_done && !last {
                    if let Some(mut q) = kad_of(b, dht).query_mut(&id) {
                        q.finish();
                    }
                    self.queries.remove(&(dht, id));
                }
                if side_done {
                    lookup.outstanding -= 1;
                }
                if lookup.outstanding == 0 || lookup.values.len() >= RECORD_QUORUM {
                    let lookup = self.value_lookups.remove(&op).expect("present");
                    self.finish_queries(b, &HashSet::from([op]));
                    let _ = lookup.reply.send(Ok(lookup.values));
                }
            }
            QueryResult::GetClosestPeers(r) => {
                let Some(lookup) = self.peer_lookups.get_mut(&op) else {
                    return;
                };
                let peers = match r {
                    Ok(ok) => ok.peers,
                    Err(kad::GetClosestPeersError::Timeout { peers, .. }) => peers,
                };
                for p in peers.into_iter().filter(|p| p.peer_id == lookup.target) {
                    for a in p.addrs {
                        if !lookup.addrs.contains(&a) {
                            lookup.addrs.push(a);
                        }
                    }
                }
                if !last {
                    return;
                }
                lookup.outstanding -= 1;
                if lookup.outstanding > 0 {
                    return;
                }
                let lookup = self.peer_lookups.remove(&op).expect("present");
                let addrs = if lookup.addrs.is_empty() {
                    table_addrs(b, &lookup.target)
                } else {
                    lookup.addrs
                };
                let result = if addrs.is_empty() {
                    Err(NodeError::PeerNotFound(lookup.target.to_base58()))
                } else {
                    Ok(addrs)
                };
                let _ = lookup.reply.send(result);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lan_addresses_are_the_ones_kubos_lan_filter_keeps() {
        for a in [
            "/ip4/127.0.0.1/tcp/4001",
            "/ip4/10.1.2.3/tcp/4001",
            "/ip4/192.168.1.5/udp/4001/quic-v1",
            "/ip4/172.16.0.1/tcp/1",
            "/ip4/169.254.1.1/tcp/1",
            "/ip4/100.64.0.1/tcp/1",
            "/ip6/::1/tcp/4001",
            "/ip6/fd00::1/tcp/4001",
            "/ip6/fe80::1/tcp/4001",
        ] {
            assert!(is_lan_addr(&a.parse().unwrap()), "{a}");
        }
        for a in [
            "/ip4/1.2.3.4/tcp/4001",
            "/ip4/100.128.0.1/tcp/1",
            "/ip6/2001:db8::1/tcp/4001",
            "/dns4/localhost/tcp/4001",
        ] {
            assert!(!is_lan_addr(&a.parse().unwrap()), "{a}");
        }
    }
}

//! The one place multiaddrs are shaped for output, so every command prints them as Kubo does.
//!
//! libp2p hands cairn addresses in several forms: a dialled connection's remote address keeps
//! the `/p2p/<id>` it was dialled with, the DHT and identify may report an address more than once,
//! and some sources append the peer id a second time (`…/tcp/4001/p2p/ID/p2p/ID`). Kubo prints:
//!
//! - transport addresses (`swarm/peers` `Addr`, `swarm/addrs`, `routing/findpeer` and
//!   `routing/findprovs` `Addrs`, `swarm/addrs/listen`): never a trailing `/p2p/<id>` (go-libp2p's
//!   `Conn.RemoteMultiaddr` and the peerstore hold none), each address once;
//! - peer addresses (`id` `Addresses`, `swarm/addrs/local --id`): the transport address with
//!   exactly one `/p2p/<id>`, as go-libp2p's `peer.AddrInfoToP2pAddrs` builds them.
//!
//! A relayed address keeps the relay's id in the middle (`…/p2p/RELAY/p2p-circuit`): only the
//! trailing `/p2p` components name the peer itself.

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};

/// `addr` without its trailing `/p2p/<id>` components (any number of them); `/p2p/<id>` alone is
/// the empty multiaddr.
pub fn transport(addr: &Multiaddr) -> Multiaddr {
    let mut addr = addr.clone();
    while matches!(addr.iter().last(), Some(Protocol::P2p(_))) {
        addr.pop();
    }
    addr
}

/// Each address in transport form ([`transport`]), once, in the order first seen; addresses
/// that are only a peer id are dropped (they say nothing about where the peer is).
pub fn transports<'a>(addrs: impl IntoIterator<Item = &'a Multiaddr>) -> Vec<String> {
    unique_transports(addrs)
        .iter()
        .map(Multiaddr::to_string)
        .collect()
}

fn unique_transports<'a>(addrs: impl IntoIterator<Item = &'a Multiaddr>) -> Vec<Multiaddr> {
    let mut out: Vec<Multiaddr> = Vec::new();
    for a in addrs {
        let t = transport(a);
        if !t.is_empty() && !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

/// `addr` in transport form with exactly one `/p2p/<peer>` after it.
pub fn with_peer(addr: &Multiaddr, peer: &PeerId) -> String {
    transport(addr).with(Protocol::P2p(*peer)).to_string()
}

/// [`with_peer`] for each address, sorted and each once (Kubo's `id` sorts its `Addresses`).
pub fn with_peer_sorted<'a>(
    addrs: impl IntoIterator<Item = &'a Multiaddr>,
    peer: &PeerId,
) -> Vec<String> {
    let mut out: Vec<String> = unique_transports(addrs)
        .iter()
        .map(|t| with_peer(t, peer))
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN";
    const RELAY: &str = "QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN";

    fn ma(s: &str) -> Multiaddr {
        s.parse().unwrap()
    }

    #[test]
    fn trailing_peer_ids_go_however_many_there_are() {
        let bare = "/ip4/10.0.0.1/tcp/4001";
        for input in [
            bare.to_string(),
            format!("{bare}/p2p/{ID}"),
            format!("{bare}/p2p/{ID}/p2p/{ID}"),
        ] {
            assert_eq!(transport(&ma(&input)).to_string(), bare, "{input}");
        }
        let relayed = format!("/ip4/10.0.0.1/tcp/4001/p2p/{RELAY}/p2p-circuit");
        assert_eq!(
            transport(&ma(&format!("{relayed}/p2p/{ID}"))).to_string(),
            relayed
        );
        assert!(transport(&ma(&format!("/p2p/{ID}"))).is_empty());
    }

    #[test]
    fn lists_hold_each_address_once() {
        let a = ma("/ip4/10.0.0.1/tcp/4001");
        let b = ma("/ip6/::1/udp/4001/quic-v1");
        let a_id = ma(&format!("{a}/p2p/{ID}"));
        let a_twice = ma(&format!("{a}/p2p/{ID}/p2p/{ID}"));
        let only_id = ma(&format!("/p2p/{ID}"));
        assert_eq!(
            transports([&a_id, &b, &a, &a_twice, &only_id]),
            vec![a.to_string(), b.to_string()]
        );
        let peer: PeerId = ID.parse().unwrap();
        assert_eq!(
            with_peer_sorted([&a_twice, &b, &a], &peer),
            vec![format!("{a}/p2p/{ID}"), format!("{b}/p2p/{ID}")]
        );
        assert_eq!(with_peer(&a_twice, &peer), format!("{a}/p2p/{ID}"));
    }
}

//! Bootstrap lists: multiaddrs that end in `/p2p/<peer id>`, Kubo's public default list, and
//! parsing that names the bad entry.

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};

use crate::error::BootstrapError;

/// Kubo's public bootstrap list (its pre-AutoConf default), what `bootstrap add --default` restores.
pub const DEFAULT_BOOTSTRAP: &[&str] = &[
    "/dnsaddr/bootstrap.libp2p.io/p2p/QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN",
    "/dnsaddr/bootstrap.libp2p.io/p2p/QmQCU2EcMqAqQPR2i9bChDtGNJchTbq5TbXJJ16u19uLTa",
    "/dnsaddr/bootstrap.libp2p.io/p2p/QmbLHAnMoJPWSCR5Zhtx6BHJX9KiKNN6tpvbUcqanj75Nb",
    "/dnsaddr/bootstrap.libp2p.io/p2p/QmcZf59bWwK5XFi76CZX8cbJ4BhTzzA3gU1ZjYZcYW3dwt",
    "/dnsaddr/va1.bootstrap.libp2p.io/p2p/12D3KooWKnDdG3iXw9eTFijk3EWSunZcFi54Zka4wmtqtt6rPxc8",
    "/ip4/104.131.131.82/tcp/4001/p2p/QmaCpDMGvV2BGHeYERUEnRQAwe3N8SzbUtfsmvsqQLuvuJ",
    "/ip4/104.131.131.82/udp/4001/quic-v1/p2p/QmaCpDMGvV2BGHeYERUEnRQAwe3N8SzbUtfsmvsqQLuvuJ",
];

/// One bootstrap entry: where to dial and whom to expect there.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BootstrapPeer {
    /// The full address, `/p2p/<id>` included (a `/dnsaddr/` one is resolved when dialled).
    pub addr: Multiaddr,
    /// The peer the address names.
    pub peer_id: PeerId,
}

impl BootstrapPeer {
    /// Parses one entry; it must be a multiaddr ending in `/p2p/<peer id>`.
    pub fn parse(entry: &str) -> Result<Self, BootstrapError> {
        let bad = |reason: String| BootstrapError::InvalidEntry {
            entry: entry.chars().take(256).collect(),
            reason,
        };
        if entry.trim().is_empty() {
            return Err(bad("empty multiaddr".into()));
        }
        let addr: Multiaddr = entry
            .trim()
            .parse()
            .map_err(|e: libp2p::multiaddr::Error| bad(e.to_string()))?;
        Self::from_addr(addr).map_err(|_| bad("it must end in /p2p/<peer id>".into()))
    }

    /// The entry for an already parsed address.
    pub fn from_addr(addr: Multiaddr) -> Result<Self, BootstrapError> {
        match addr.iter().last() {
            Some(Protocol::P2p(peer_id)) if addr.iter().count() >= 2 => {
                Ok(BootstrapPeer { addr, peer_id })
            }
            _ => Err(BootstrapError::InvalidEntry {
                entry: addr.to_string(),
                reason: "it must be a transport address ending in /p2p/<peer id>".into(),
            }),
        }
    }

    /// The address without its `/p2p/` suffix (what the DHT routing table stores).
    pub fn transport_addr(&self) -> Multiaddr {
        let mut a = self.addr.clone();
        a.pop();
        a
    }
}

/// A bootstrap list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BootstrapList {
    peers: Vec<BootstrapPeer>,
}

impl BootstrapList {
    /// Parses every entry; the first bad one is an error naming it.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, BootstrapError> {
        let peers = entries
            .iter()
            .map(|e| BootstrapPeer::parse(e.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(BootstrapList { peers })
    }

    /// Parses what it can: the valid entries, and an error for each bad one (a node logs those
    /// and keeps running with the rest).
    pub fn parse_lenient<S: AsRef<str>>(entries: &[S]) -> (Self, Vec<BootstrapError>) {
        let mut list = BootstrapList::default();
        let mut errors = Vec::new();
        for e in entries {
            match BootstrapPeer::parse(e.as_ref()) {
                Ok(p) => list.push(p),
                Err(err) => errors.push(err),
            }
        }
        (list, errors)
    }

    /// Kubo's public default list.
    pub fn kubo_default() -> Self {
        Self::parse(DEFAULT_BOOTSTRAP).expect("the default list parses")
    }

    /// Adds a peer (once).
    pub fn push(&mut self, peer: BootstrapPeer) {
        if !self.peers.contains(&peer) {
            self.peers.push(peer);
        }
    }

    /// The entries.
    pub fn peers(&self) -> &[BootstrapPeer] {
        &self.peers
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// Whether any entry is one of Kubo's public defaults (refused in a private network).
    pub fn has_public_defaults(&self) -> bool {
        let defaults = Self::kubo_default();
        self.peers.iter().any(|p| defaults.peers.contains(p))
    }

    /// The entries as strings, as the config stores them.
    pub fn to_strings(&self) -> Vec<String> {
        self.peers.iter().map(|p| p.addr.to_string()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_list_parses_with_dnsaddr_kept() {
        let list = BootstrapList::kubo_default();
        assert_eq!(list.peers().len(), DEFAULT_BOOTSTRAP.len());
        assert!(list.peers()[0].addr.to_string().starts_with("/dnsaddr/"));
        assert!(list.has_public_defaults());
    }

    #[test]
    fn bad_entries_are_named() {
        let id = PeerId::random();
        for (entry, why) in [
            ("", "empty"),
            ("/ip4/1.2.3.4/tcp/4001", "/p2p/"),
            ("/ip4/1.2.3.4/tcp/notaport/p2p/x", "invalid"),
            ("not a multiaddr", "invalid"),
        ] {
            let err = BootstrapPeer::parse(entry).unwrap_err().to_string();
            assert!(
                err.contains(&format!("{entry:?}")) && err.to_lowercase().contains(why),
                "{entry}: {err}"
            );
        }
        let only_p2p = format!("/p2p/{id}");
        assert!(
            BootstrapPeer::parse(&only_p2p).is_err(),
            "a bare /p2p/ has nowhere to dial"
        );
        let good = format!("/ip4/127.0.0.1/tcp/4001/p2p/{id}");
        let (list, errors) = BootstrapList::parse_lenient(&[good.as_str(), "garbage"]);
        assert_eq!(list.peers().len(), 1);
        assert_eq!(errors.len(), 1);
        assert_eq!(
            list.peers()[0].transport_addr().to_string(),
            "/ip4/127.0.0.1/tcp/4001"
        );
    }
}

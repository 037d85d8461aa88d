//! The connection manager's decision, kept pure so it can be tested without a network: when more
//! than `HighWater` peers are connected, close the lowest-valued (and among equals the newest) of
//! the peers that are neither protected nor younger than `GracePeriod` until `LowWater` of those
//! remain (Kubo's `Swarm.ConnMgr`, as go-libp2p's basic connection manager decides; values as
//! go-libp2p-kad-dht tags routing-table peers).

use std::time::{Duration, Instant};

use libp2p::PeerId;

use crate::config::{ConnMgrConfig, parse_go_duration};
use crate::error::RepoError;

/// Routing-table peers whose common prefix length with this node is below this are protected
/// from trimming: the two farthest buckets, which hold half and a quarter of the keyspace and are
/// the hardest to refill (go-libp2p-kad-dht's `protectedBuckets`).
pub(crate) const PROTECTED_BUCKETS: u32 = 2;
/// The value of every other routing-table peer is this plus its common prefix length, so that
/// trimming closes peers the DHT does not use first (go-libp2p-kad-dht's `baseConnMgrScore` on
/// its `kbucket` tag); a peer in no table is worth 0.
pub(crate) const KBUCKET_SCORE: u32 = 5;

/// The connection manager's limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnMgrLimits {
    /// Trim down to this many peers.
    pub low_water: usize,
    /// Trim when above this many.
    pub high_water: usize,
    /// Peers younger than this are spared.
    pub grace_period: Duration,
    /// Minimum time between two trims.
    pub silence_period: Duration,
    /// `false` for `Type: none`: never trim.
    pub enabled: bool,
}

impl Default for ConnMgrLimits {
    fn default() -> Self {
        ConnMgrLimits {
            low_water: 32,
            high_water: 96,
            grace_period: Duration::from_secs(20),
            silence_period: Duration::from_secs(10),
            enabled: true,
        }
    }
}

impl ConnMgrLimits {
    /// Reads `Swarm.ConnMgr`, with Kubo's defaults for what is unset.
    pub fn from_config(c: &ConnMgrConfig) -> Result<Self, RepoError> {
        let d = Self::default();
        let duration = |key: &str, v: &Option<String>, default: Duration| match v {
            None => Ok(default),
            Some(text) => parse_go_duration(text).ok_or_else(|| RepoError::InvalidValue {
                key: format!("Swarm.ConnMgr.{key}"),
                reason: format!("{text:?} is not a duration like \"20s\""),
            }),
        };
        let limits = ConnMgrLimits {
            low_water: c.low_water.map_or(d.low_water, |v| v as usize),
            high_water: c.high_water.map_or(d.high_water, |v| v as usize),
            grace_period: duration("GracePeriod", &c.grace_period, d.grace_period)?,
            silence_period: duration("SilencePeriod", &c.silence_period, d.silence_period)?,
            enabled: match c.kind.as_deref() {
                None | Some("") | Some("basic") => true,
                Some("none") => false,
                Some(other) => {
                    return Err(RepoError::InvalidValue {
                        key: "Swarm.ConnMgr.Type".into(),
                        reason: format!("{other:?} is not \"basic\" or \"none\""),
                    });
                }
            },
        };
        if limits.low_water > limits.high_water {
            return Err(RepoError::InvalidValue {
                key: "Swarm.ConnMgr.LowWater".into(),
                reason: format!(
                    "{} is above HighWater {}",
                    limits.low_water, limits.high_water
                ),
            });
        }
        Ok(limits)
    }
}

/// A connected peer as the connection manager sees it.
#[derive(Clone, Debug)]
pub(crate) struct Candidate {
    pub peer: PeerId,
    pub connected_since: Instant,
    pub protected: bool,
    /// Higher is kept longer (e.g. peers that share our pubsub topics).
    pub value: u32,
}

/// The peers to disconnect now, or none if the count is not above `high_water`.
///
/// As go-libp2p's basic connection manager: only peers that are neither protected nor younger than
/// `grace_period` are candidates, and they are closed until `low_water` candidates remain. Young
/// and protected peers are not counted against `low_water`: counting them let a flood of new peers
/// push out every established one (with `low_water` young peers, no old peer was kept), and a rule
/// that waited for young peers to age would not trim at all while more than `low_water` new peers
/// keep arriving per grace period (`tests/peer_flood.rs`).
pub(crate) fn select_victims(
    candidates: &[Candidate],
    limits: &ConnMgrLimits,
    now: Instant,
) -> Vec<PeerId> {
    if !limits.enabled || candidates.len() <= limits.high_water {
        return Vec::new();
    }
    let young = |c: &Candidate| now.duration_since(c.connected_since) < limits.grace_period;
    let mut eligible: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| !c.protected && !young(c))
        .collect();
    let excess = eligible.len().saturating_sub(limits.low_water);
    // Lowest value first; among equals the newest connection goes first (older ones have proven useful).
    eligible.sort_by(|a, b| {
        a.value
            .cmp(&b.value)
            .then(b.connected_since.cmp(&a.connected_since))
    });
    eligible.into_iter().take(excess).map(|c| c.peer).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidates(n: usize, start: Instant) -> Vec<Candidate> {
        (0..n)
            .map(|i| Candidate {
                peer: PeerId::random(),
                connected_since: start + Duration::from_millis(i as u64),
                protected: false,
                value: 0,
            })
            .collect()
    }

    #[test]
    fn trims_to_low_water_only_above_high_water() {
        let limits = ConnMgrLimits {
            low_water: 3,
            high_water: 5,
            grace_period: Duration::from_secs(1),
            ..Default::default()
        };
        let t0 = Instant::now();
        let later = t0 + Duration::from_secs(10);
        assert!(select_victims(&candidates(5, t0), &limits, later).is_empty());
        let c = candidates(8, t0);
        let victims = select_victims(&c, &limits, later);
        assert_eq!(victims.len(), 5);
        // Newest first.
        assert_eq!(victims[0], c[7].peer);
    }

    #[test]
    fn trims_peers_outside_the_routing_table_first() {
        let limits = ConnMgrLimits {
            low_water: 2,
            high_water: 3,
            grace_period: Duration::from_secs(1),
            ..Default::default()
        };
        let t0 = Instant::now();
        let mut c = candidates(5, t0);
        // The two oldest are in the routing table: though older connections are normally kept
        // and newer ones closed, the three valueless ones go.
        c[0].value = KBUCKET_SCORE + 3;
        c[1].value = KBUCKET_SCORE + 7;
        let victims = select_victims(&c, &limits, t0 + Duration::from_secs(10));
        assert_eq!(victims.len(), 3);
        assert!(!victims.contains(&c[0].peer) && !victims.contains(&c[1].peer));
    }

    #[test]
    fn trims_old_peers_while_a_flood_keeps_more_than_low_water_young() {
        let limits = ConnMgrLimits {
            low_water: 2,
            high_water: 4,
            grace_period: Duration::from_secs(5),
            ..Default::default()
        };
        let t0 = Instant::now();
        let mut c = candidates(10, t0);
        // Five old peers, five that arrived a second ago: more young ones than LowWater.
        for x in &mut c[5..] {
            x.connected_since = t0 + Duration::from_secs(9);
        }
        let victims = select_victims(&c, &limits, t0 + Duration::from_secs(10));
        // The three newest old peers go; the two oldest and every young one stay.
        assert_eq!(victims, vec![c[4].peer, c[3].peer, c[2].peer]);
    }

    #[test]
    fn spares_protected_and_young_peers() {
        let limits = ConnMgrLimits {
            low_water: 1,
            high_water: 2,
            grace_period: Duration::from_secs(5),
            ..Default::default()
        };
        let t0 = Instant::now();
        let mut c = candidates(5, t0);
        c[0].protected = true;
        c[1].protected = true;
        let victims = select_victims(&c, &limits, t0 + Duration::from_secs(10));
        // Three candidates, LowWater 1: two go, the oldest candidate stays, protected ones too.
        assert_eq!(victims, vec![c[4].peer, c[3].peer]);
        c[4].connected_since = t0 + Duration::from_secs(9); // young at t0+10s
        assert_eq!(
            select_victims(&c, &limits, t0 + Duration::from_secs(10)),
            vec![c[3].peer],
            "the young peer is spared and not counted"
        );
        assert_eq!(
            select_victims(&c, &limits, t0 + Duration::from_secs(15)).len(),
            2
        );
    }

    #[test]
    fn config_is_validated() {
        let mut cfg = ConnMgrConfig {
            grace_period: Some("soon".into()),
            ..Default::default()
        };
        assert!(
            ConnMgrLimits::from_config(&cfg)
                .unwrap_err()
                .to_string()
                .contains("Swarm.ConnMgr.GracePeriod")
        );
        cfg.grace_period = Some("1s".into());
        cfg.low_water = Some(100);
        assert!(ConnMgrLimits::from_config(&cfg).is_err());
        cfg.low_water = Some(1);
        assert_eq!(
            ConnMgrLimits::from_config(&cfg).unwrap().grace_period,
            Duration::from_secs(1)
        );
    }
}

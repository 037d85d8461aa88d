//! The bootstrapper under a paused clock: every `now` is injected, so the backoff sequence, its
//! cap, the reset on success, re-bootstrap below the threshold and the backup fallback are exact.

use std::time::{Duration, Instant};

use cairn_bootstrap::{
    BootstrapAction, BootstrapConfig, BootstrapEvent, BootstrapList, BootstrapPeer, BootstrapPhase,
    Bootstrapper,
};
use libp2p::PeerId;

fn peer(port: u16) -> BootstrapPeer {
    BootstrapPeer::parse(&format!(
        "/ip4/127.0.0.1/tcp/{port}/p2p/{}",
        PeerId::random()
    ))
    .unwrap()
}

fn dialed(actions: &[BootstrapAction]) -> Vec<PeerId> {
    actions
        .iter()
        .flat_map(|a| match a {
            BootstrapAction::Dial(p) => p.iter().map(|p| p.peer_id).collect(),
            _ => Vec::new(),
        })
        .collect()
}

fn fail_all(b: &mut Bootstrapper, peers: &[PeerId], now: Instant) -> Vec<BootstrapAction> {
    let mut out = Vec::new();
    for p in peers {
        out.extend(b.handle(
            BootstrapEvent::DialFailed {
                peer_id: *p,
                error: "connection refused".into(),
            },
            now,
        ));
    }
    out
}

fn backing_off_until(b: &Bootstrapper, now: Instant) -> Instant {
    match b.status(now).phase {
        BootstrapPhase::BackingOff { until, .. } => until,
        other => panic!("expected backing off, got {other:?}"),
    }
}

#[test]
fn backoff_doubles_with_jitter_up_to_its_cap_and_resets_on_success() {
    let config =
        BootstrapConfig::default().with_backoff(Duration::from_secs(1), Duration::from_secs(60));
    let list = BootstrapList::default();
    let a = peer(1);
    let mut list = list;
    list.push(a.clone());
    let t0 = Instant::now();
    let mut b = Bootstrapper::new(config.clone(), list, Vec::new(), t0, 7);

    let mut now = t0;
    let mut waits = Vec::new();
    for round in 1..=9u32 {
        let actions = b.handle(BootstrapEvent::Tick, now);
        assert_eq!(
            dialed(&actions),
            vec![a.peer_id],
            "round {round} dials the list"
        );
        assert!(
            matches!(b.status(now).phase, BootstrapPhase::Connecting { attempt, .. } if attempt == round)
        );
        assert!(fail_all(&mut b, &[a.peer_id], now).is_empty());
        let until = backing_off_until(&b, now);
        let wait = until - now;
        let base = config.backoff_base(round);
        assert!(
            wait >= base && wait <= base.mul_f64(1.2).min(Duration::from_secs(60)),
            "round {round}: {wait:?} vs {base:?}"
        );
        waits.push(wait);
        // Nothing happens before the backoff ends.
        assert!(
            b.handle(BootstrapEvent::Tick, until - Duration::from_millis(1))
                .is_empty()
        );
        now = until;
    }
    let bases: Vec<u64> = (1..=9).map(|r| config.backoff_base(r).as_secs()).collect();
    assert_eq!(
        bases,
        vec![1, 2, 4, 8, 16, 32, 60, 60, 60],
        "1 s doubling, capped at 60 s"
    );
    assert_eq!(
        *waits.last().unwrap(),
        Duration::from_secs(60),
        "the cap holds after jitter"
    );

    // Success resets the backoff.
    let actions = b.handle(BootstrapEvent::Tick, now);
    assert_eq!(dialed(&actions), vec![a.peer_id]);
    let actions = b.handle(
        BootstrapEvent::PeerConnected {
            peer_id: a.peer_id,
            addr: Some(a.addr.clone()),
        },
        now,
    );
    assert!(
        actions.contains(&BootstrapAction::KadBootstrap),
        "first success starts the Kademlia bootstrap"
    );
    let status = b.status(now);
    assert_eq!(status.connected_bootstrap_peers, vec![a.peer_id]);
    assert_eq!(
        (status.attempts, status.successes, status.failures),
        (10, 1, 9)
    );
    let actions = b.handle(BootstrapEvent::PeerDisconnected { peer_id: a.peer_id }, now);
    assert_eq!(
        dialed(&actions),
        vec![a.peer_id],
        "below the threshold again: a new round at once"
    );
    fail_all(&mut b, &[a.peer_id], now);
    let wait = backing_off_until(&b, now) - now;
    assert!(
        wait < Duration::from_millis(1200),
        "backoff restarted at 1 s, got {wait:?}"
    );
}

#[test]
fn rebootstraps_when_peers_fall_below_the_threshold() {
    let config = BootstrapConfig::default().with_min_peer_threshold(2);
    let (a, b_peer) = (peer(1), peer(2));
    let mut list = BootstrapList::default();
    list.push(a.clone());
    list.push(b_peer.clone());
    let t0 = Instant::now();
    let mut b = Bootstrapper::new(config.clone(), list, Vec::new(), t0, 1);
    b.handle(BootstrapEvent::Tick, t0);
    b.handle(
        BootstrapEvent::PeerConnected {
            peer_id: a.peer_id,
            addr: None,
        },
        t0,
    );
    b.handle(
        BootstrapEvent::PeerConnected {
            peer_id: b_peer.peer_id,
            addr: None,
        },
        t0,
    );
    assert_eq!(b.status(t0).phase, BootstrapPhase::Connected);
    // Enough peers: the period passes without dials.
    let later = t0 + config.period;
    assert!(dialed(&b.handle(BootstrapEvent::Tick, later)).is_empty());
    // One goes away: the node redials at once, only the missing peer.
    let actions = b.handle(
        BootstrapEvent::PeerDisconnected {
            peer_id: b_peer.peer_id,
        },
        later,
    );
    assert_eq!(dialed(&actions), vec![b_peer.peer_id]);
}

#[test]
fn a_round_that_times_out_fails_and_backup_peers_are_used_when_the_list_fails() {
    let config = BootstrapConfig::default().with_jitter(0.0);
    let listed = peer(1);
    let backups = vec![peer(2), peer(3)];
    let mut list = BootstrapList::default();
    list.push(listed.clone());
    let t0 = Instant::now();
    let mut b = Bootstrapper::new(config.clone(), list, backups.clone(), t0, 3);

    assert_eq!(
        dialed(&b.handle(BootstrapEvent::Tick, t0)),
        vec![listed.peer_id]
    );
    // The listed peer never answers: at the deadline the backup peers are dialled.
    let deadline = t0 + config.connection_timeout;
    assert!(
        b.handle(BootstrapEvent::Tick, deadline - Duration::from_millis(1))
            .is_empty()
    );
    let mut backup_dials = dialed(&b.handle(BootstrapEvent::Tick, deadline));
    backup_dials.sort();
    let mut want: Vec<PeerId> = backups.iter().map(|p| p.peer_id).collect();
    want.sort();
    assert_eq!(backup_dials, want);
    assert!(matches!(
        b.status(deadline).phase,
        BootstrapPhase::Connecting {
            using_backup: true,
            ..
        }
    ));
    assert!(
        b.status(deadline)
            .last_error
            .unwrap()
            .contains("no bootstrap peer answered")
    );
    // A backup answers: success, and the connected non-bootstrap peers are saved as backups.
    let actions = b.handle(
        BootstrapEvent::PeerConnected {
            peer_id: backups[0].peer_id,
            addr: Some(backups[0].addr.clone()),
        },
        deadline,
    );
    assert!(actions.contains(&BootstrapAction::KadBootstrap));
    let saved: Vec<_> = actions
        .iter()
        .filter_map(|a| match a {
            BootstrapAction::SaveBackupPeers(addrs) => Some(addrs.clone()),
            _ => None,
        })
        .collect();
    assert!(
        matches!(&saved[..], [addrs] if addrs.contains(&backups[0].addr)),
        "{actions:?}"
    );
    // And again an hour later, not before.
    assert!(
        b.handle(BootstrapEvent::Tick, deadline + Duration::from_secs(60))
            .iter()
            .all(|a| !matches!(a, BootstrapAction::SaveBackupPeers(_)))
    );
    let hourly = b.handle(BootstrapEvent::Tick, deadline + config.backup_interval);
    assert!(
        hourly
            .iter()
            .any(|a| matches!(a, BootstrapAction::SaveBackupPeers(_)))
    );
}

#[test]
fn an_empty_list_is_reported() {
    let t0 = Instant::now();
    let mut b = Bootstrapper::new(
        BootstrapConfig::default(),
        BootstrapList::default(),
        Vec::new(),
        t0,
        0,
    );
    assert!(b.handle(BootstrapEvent::Tick, t0).is_empty());
    let s = b.status(t0);
    assert_eq!(s.phase, BootstrapPhase::NoPeersConfigured);
    assert_eq!(
        s.last_error.as_deref(),
        Some("no bootstrap peers configured")
    );
}

#[tokio::test(start_paused = true)]
async fn driven_by_tokios_paused_clock() {
    // The same machine driven the way the node drives it: sleep until next_wakeup, then tick.
    let a = peer(1);
    let mut list = BootstrapList::default();
    list.push(a.clone());
    let start = tokio::time::Instant::now();
    let mut b = Bootstrapper::new(
        BootstrapConfig::default().with_jitter(0.0),
        list,
        Vec::new(),
        start.into_std(),
        0,
    );
    let mut dial_times = Vec::new();
    for _ in 0..5 {
        tokio::time::sleep_until(b.next_wakeup().into()).await;
        let now = tokio::time::Instant::now();
        if !dialed(&b.handle(BootstrapEvent::Tick, now.into_std())).is_empty() {
            dial_times.push((now - start).as_secs());
            fail_all(&mut b, &[a.peer_id], now.into_std());
        }
    }
    assert_eq!(
        dial_times,
        vec![0, 1, 3, 7, 15],
        "rounds at 0 s, then after 1, 2, 4 and 8 s of backoff"
    );
}

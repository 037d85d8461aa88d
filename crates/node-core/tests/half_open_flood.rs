//! 400 raw TCP connections from ten loopback addresses (127.0.0.2–127.0.0.11) that never finish
//! the handshake: a third stay silent, a third send half a multistream-select header and stop, a
//! third trickle one byte every 300 ms (slowloris). Meanwhile a protected cairn peer keeps
//! fetching and pinging, and a new peer connects from 127.0.0.1.
//!
//! It checks that each address holds at most `MAX_PENDING_INCOMING_PER_IP` handshakes (the rest
//! are closed as they are accepted), that the held ones are closed by the handshake timeout, the
//! slowloris ones included, and that this process's open file descriptors return to the baseline.
//! Both ends live in this process, so its own test binary keeps the count its own.
//!
//! Run: `cargo test -p cairn-node-core --test half_open_flood`.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use cairn_blockstore::{Block, codec::RAW};
use cairn_node_core::FetchOptions;
use cairn_node_core::limits::MAX_PENDING_INCOMING_PER_IP;
use common::{WAIT, dial_addr, link, node};
use libp2p::multiaddr::Protocol;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

const ADDRESSES: u8 = 10;
const PER_ADDRESS: usize = 40;
/// A connection the node kept this long was held until the handshake timeout (10 s), not refused
/// on accept (which takes milliseconds).
const HELD: Duration = Duration::from_secs(5);

/// The multistream-select header a dialer sends first, then the Noise proposal.
const HANDSHAKE: &[u8] = b"\x13/multistream/1.0.0\n\x07/noise\n";

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Silent,
    Partial,
    Slowloris,
}

/// Connects from `from` and misbehaves as `kind` until the node closes the socket; returns how
/// long the node kept it.
async fn half_open(from: Ipv4Addr, to: SocketAddr, kind: Kind) -> Duration {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(IpAddr::V4(from), 0)).unwrap();
    let mut stream = socket.connect(to).await.unwrap();
    let opened = Instant::now();
    let mut buf = [0u8; 256];
    match kind {
        Kind::Silent => {}
        Kind::Partial => {
            let _ = stream.write_all(&HANDSHAKE[..8]).await;
        }
        Kind::Slowloris => {
            // One byte every 300 ms, forever (the header repeats): never a complete handshake
            // within the timeout, yet never silent.
            let mut tick = tokio::time::interval(Duration::from_millis(300));
            for byte in HANDSHAKE.iter().cycle() {
                tokio::select! {
                    _ = tick.tick() => {
                        if stream.write_all(&[*byte]).await.is_err() {
                            return opened.elapsed();
                        }
                    }
                    r = stream.read(&mut buf) => {
                        if matches!(r, Ok(0) | Err(_)) {
                            return opened.elapsed();
                        }
                    }
                }
            }
        }
    }
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
    opened.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_connections_are_capped_and_time_out() {
    let server = node(false).await;
    let worker = node(false).await;
    link(&worker, &server).await;
    server.protect(worker.peer_id(), true).await.unwrap();
    let blocks: Vec<Block> = (0..200u32)
        .map(|i| Block::from_data(RAW, i.to_le_bytes().to_vec()).unwrap())
        .collect();
    for b in &blocks {
        server.put_block(b).await.unwrap();
    }
    let target = dial_addr(&server).await;
    let port = target
        .iter()
        .find_map(|p| match p {
            Protocol::Tcp(port) => Some(port),
            _ => None,
        })
        .unwrap();
    let to = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
    let baseline = open_fds();

    let mut attackers = Vec::new();
    for a in 0..ADDRESSES {
        let from = Ipv4Addr::new(127, 0, 0, 2 + a);
        for i in 0..PER_ADDRESS {
            let kind = [Kind::Silent, Kind::Partial, Kind::Slowloris][i % 3];
            attackers.push((a, tokio::spawn(half_open(from, to, kind))));
        }
    }

    // While the half-open connections are held: the existing peer fetches and pings...
    for b in blocks.iter().take(20) {
        let got = worker
            .get_block_with(b.cid(), FetchOptions::with_timeout(Some(WAIT)))
            .await
            .expect("the existing peer fetches during the flood");
        assert_eq!(got.cid(), b.cid());
        worker.ping(server.peer_id()).await.unwrap();
    }
    // ...and a new peer from another address connects and is served.
    let newcomer = node(false).await;
    link(&newcomer, &server).await;
    newcomer
        .get_block_with(blocks[100].cid(), FetchOptions::with_timeout(Some(WAIT)))
        .await
        .expect("a new peer fetches during the flood");
    newcomer.shutdown().await.unwrap();

    // Every half-open connection ends, refused at once or closed by the handshake timeout; a
    // socket the node never closed would hang here until the deadline.
    let mut held = vec![0usize; ADDRESSES as usize];
    let deadline = Duration::from_secs(60);
    for (a, task) in attackers {
        let kept = tokio::time::timeout(deadline, task)
            .await
            .expect("the node closes every half-open connection")
            .unwrap();
        if kept >= HELD {
            held[a as usize] += 1;
        }
    }
    println!("held until the handshake timeout, per address: {held:?}");
    for (a, n) in held.iter().enumerate() {
        assert!(
            *n <= MAX_PENDING_INCOMING_PER_IP,
            "127.0.0.{} had {n} handshakes held at once",
            a + 2
        );
    }
    assert!(
        held.iter().sum::<usize>() > 0,
        "no connection was held: the timeout path was not exercised"
    );

    // The node released every socket: the fd count returns to where it was before the flood.
    let until = tokio::time::Instant::now() + WAIT;
    loop {
        let fds = open_fds();
        if fds <= baseline + 8 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "{fds} fds open, {baseline} before the flood"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    worker.ping(server.peer_id()).await.unwrap();
}

//! One peer floods a node with 100,000 wants (and never reads the answers) while another peer
//! fetches a file from it: the fetch completes, the flooder's ledger stays at Kubo's 1,024
//! entries, and the process's peak RSS grows by less than the bound the README states (64 MiB).
//! Its own test binary, so the RSS it reads belongs to this test alone.

mod common;

use std::time::Duration;

use cairn_bitswap::message::{BitswapMessage, ProtocolVersion, WantEntry, write_frame};
use cairn_blockstore::{Block, codec::RAW};
use cairn_node_core::FetchOptions;
use common::files::{content, import, read_file, sha256};
use common::{dial_addr, link, node, rogue};
use futures::StreamExt;

/// `VmRSS` or `VmHWM` of this process, in bytes.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .expect("field in /proc/self/status")
        * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_want_flood_stays_bounded_while_another_peer_fetches() {
    let server = node(false).await;
    let fetcher = node(false).await;
    let data = content(8 << 20, 3);
    let (root, blocks) = import(&server, &data).await;
    let mut flooder = rogue::connect(dial_addr(&server).await).await;
    let baseline = status_kib("VmRSS:");

    // 10 messages of 10,000 want-blocks for blocks nobody has (about 400 KB each).
    let mut out = flooder
        .control
        .open_stream(server.peer_id(), ProtocolVersion::V120.protocol())
        .await
        .unwrap();
    let flood = tokio::spawn(async move {
        for m in 0..10u32 {
            let wants = (0..10_000u32)
                .map(|i| {
                    let b = Block::from_data(RAW, (m * 10_000 + i).to_le_bytes().to_vec()).unwrap();
                    WantEntry::block(*b.cid(), 1, true)
                })
                .collect();
            let msg = BitswapMessage {
                wants,
                ..Default::default()
            };
            write_frame(&mut out, &msg.encode(ProtocolVersion::V120))
                .await
                .unwrap();
        }
        out
    });

    link(&fetcher, &server).await;
    let mut fetch = fetcher.fetch_dag(
        root,
        FetchOptions::with_timeout(Some(Duration::from_secs(120))),
    );
    let mut count = 0;
    while let Some(p) = fetch.next().await {
        count = p.expect("the honest fetch completes").blocks;
    }
    assert_eq!(count, blocks.len() as u64);
    assert_eq!(sha256(&read_file(&fetcher, &root).await), sha256(&data));
    let _stream = flood.await.unwrap();

    // Every message arrived (the server read them all) but the ledger kept only 1,024 wants.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let wants = server
            .bitswap_wantlist(Some(flooder.peer_id))
            .await
            .unwrap();
        assert!(wants.len() <= 1024, "{} wants kept", wants.len());
        let received = server.bitswap_stat().await.unwrap().messages_received;
        if wants.len() == 1024 && received >= 10 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "flood not seen: {} wants, {received} messages",
            wants.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let growth = status_kib("VmHWM:").saturating_sub(baseline);
    println!(
        "peak RSS grew by {} KiB during the flood and the fetch",
        growth / 1024
    );
    assert!(growth < 64 << 20, "peak RSS grew by {growth} bytes");
    drop(flooder.incoming.next());
}

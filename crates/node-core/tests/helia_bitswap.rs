//! Bitswap with a js-libp2p/Helia peer (../shared/compat/helia-peer, `@helia/bitswap`) both ways:
//! Helia fetches every block of a file cairn added, and cairn fetches blocks Helia added, one of
//! them from a cairn node that knows Helia only as a DHT provider. Needs Node.js and
//! `npm ci --ignore-scripts` in the helia-peer folder (scripts/test.sh does it).

mod common;

use std::time::Duration;

use cairn_blockstore::parse_cid_str;
use cairn_node_core::{FetchOptions, parse_multiaddr};
use common::files::{content, import};
use common::helia::Helia;
use common::{link, node};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bitswap_with_helia_both_ways() -> anyhow::Result<()> {
    let cairn = node(false).await;
    let mut helia = Helia::start().await?;
    cairn.connect(parse_multiaddr(&helia.addr)?).await?;

    // Helia fetches a 4 MiB file's blocks from cairn (root, then every leaf), checking hashes.
    let data = content(4 << 20, 7);
    let (root, blocks) = import(&cairn, &data).await;
    let mut fetched_bytes = 0u64;
    for b in blocks.iter().rev() {
        let r = helia
            .call(
                "fetch",
                json!({"cid": b.cid().to_string(), "timeout": 20000}),
            )
            .await?;
        assert_eq!(r["verified"], json!(true), "{r}");
        fetched_bytes += r["bytes"].as_u64().unwrap();
    }
    assert_eq!(
        fetched_bytes,
        blocks.iter().map(|b| b.len() as u64).sum::<u64>()
    );
    assert_eq!(blocks.last().unwrap().cid(), &root);
    let sent = cairn.bitswap_stat().await?.blocks_sent;
    assert!(sent >= blocks.len() as u64, "cairn sent {sent} blocks");

    // cairn fetches blocks Helia added: a 1 MiB one and a small one.
    for size in [1usize << 20, 100] {
        let added = helia.call("add", json!({"random": size})).await?;
        let cid = parse_cid_str(added["cid"].as_str().unwrap())?;
        let block = cairn
            .get_block_with(
                &cid,
                FetchOptions::with_timeout(Some(Duration::from_secs(30))),
            )
            .await?;
        assert_eq!(block.len(), size);
    }

    // A second cairn node that knows only the first finds Helia as a provider and fetches.
    let added = helia.call("add", json!({"random": 300_000})).await?;
    let cid = parse_cid_str(added["cid"].as_str().unwrap())?;
    helia
        .call("provide", json!({"cid": cid.to_string(), "timeout": 20000}))
        .await?;
    let other = node(false).await;
    link(&other, &cairn).await;
    let block = other
        .get_block_with(
            &cid,
            FetchOptions::with_timeout(Some(Duration::from_secs(60))),
        )
        .await?;
    assert_eq!(block.len(), 300_000);
    helia.stop().await;
    Ok(())
}

//! The two DHTs between cairn nodes: a provide goes out on both the WAN (`/ipfs/kad/1.0.0`) and
//! the LAN (`/ipfs/lan/kad/1.0.0`) DHT, the peer stores the record on each, and a provider lookup
//! that hears of the same provider from both reports it once. (Kubo's side of the two DHTs, and
//! its check that a peer answers FIND_NODE for its own id, are tested in kubo_interop.rs.)

mod common;

use std::collections::HashSet;

use cairn_blockstore::{Block, codec::RAW};
use cairn_node_core::NodeEvent;
use common::{WAIT, link, node, wait_for};
use futures::StreamExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provide_reaches_both_dhts_and_lookups_report_each_provider_once() {
    let (a, b) = (node(false).await, node(false).await);
    link(&a, &b).await;
    let mut eb = b.events();
    let block = Block::from_data(RAW, &b"on both DHTs"[..]).unwrap();
    a.put_block(&block).await.unwrap();
    a.provide(block.cid()).await.unwrap();

    // b stores a's record once per DHT.
    let key = block.cid().hash().to_bytes();
    let mut dhts = HashSet::new();
    wait_for(&mut eb, "a's record on both of b's DHTs", |e| match e {
        NodeEvent::ProviderRecordStored {
            key: k,
            provider,
            lan,
        } if *k == key => {
            assert_eq!(*provider, a.peer_id());
            dhts.insert(*lan);
            (dhts.len() == 2).then_some(())
        }
        _ => None,
    })
    .await;

    // b knows a from both DHTs' stores (and a answers on both); the stream names a once and ends.
    let found: Vec<_> = tokio::time::timeout(
        WAIT,
        b.find_providers(block.cid(), 10).await.unwrap().collect(),
    )
    .await
    .expect("the lookup ends when both DHTs' queries end");
    let ids: Vec<_> = found.iter().map(|p| p.peer_id).collect();
    assert_eq!(ids, vec![a.peer_id()]);
    assert!(
        !found[0].addresses.is_empty(),
        "a connected provider has addresses"
    );

    // find_peer runs on both as well; a connected peer answers from the connection.
    assert!(!b.find_peer(a.peer_id()).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_on_an_empty_node_ends_with_nothing() {
    let a = node(false).await;
    let block = Block::from_data(RAW, &b"nobody has this"[..]).unwrap();
    let found: Vec<_> = tokio::time::timeout(
        WAIT,
        a.find_providers(block.cid(), 10).await.unwrap().collect(),
    )
    .await
    .expect("both queries end at once with empty tables");
    assert!(found.is_empty());
}

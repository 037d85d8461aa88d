//! A small simulated DHT network (the harness in `tests/sim`, which the `dht_sim` bench runs at
//! N = 50, 200 and 1,000): 40 cairn nodes on the memory transport, each bootstrapping from three
//! random earlier nodes. Asserts that every routing table fills, that every FIND_NODE lookup
//! finds the node truly closest to its key and every provider lookup finds the provider, and that
//! after 10% of the nodes are replaced, lookups still succeed, the departed peers' entries are
//! dropped as lookups run into them, and the new nodes are in the tables.

mod sim;

use std::time::Duration;

use sim::{Sim, SimConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_succeed_and_tables_heal_after_churn() -> anyhow::Result<()> {
    let mut config = SimConfig::new(40);
    config.lookups = 40;
    config.provider_lookups = 20;
    // A debug build on a busy CI machine: few lookups at once, so that none waits on a starved
    // event loop long enough for kad's 10 s request timeout.
    config.concurrency = 4;
    config.settle_timeout = Duration::from_secs(120);
    let mut sim = Sim::new(config.clone());
    sim.grow_to(config.nodes).await?;
    let populated = sim.wait_populated(config.settle_timeout).await?;
    assert!(
        populated.is_some(),
        "not every routing table reached {} peers in {:?}",
        sim::K,
        config.settle_timeout
    );

    let find = sim.find_node_batch(config.lookups).await?;
    assert_eq!(
        find.succeeded, find.total,
        "FIND_NODE lookups that missed the closest node: {find:?}"
    );
    // 40 nodes, K = 20: the closest node is at most a couple of rounds away.
    assert!(sim::quantile(&find.hops, 0.5) <= 3, "hops: {:?}", find.hops);
    assert!(find.messages.iter().all(|m| *m > 0));

    let providers = sim.provider_batch(config.provider_lookups).await?;
    assert_eq!(
        providers.succeeded, providers.total,
        "provider lookups that found nobody: {providers:?}"
    );

    // Churn: 4 leave and 4 join in two steps, with lookups after each.
    let before: Vec<_> = sim.nodes.iter().map(|n| n.peer).collect();
    let during = sim.churn(0.1, 2).await?;
    assert_eq!(during.succeeded, during.total, "during churn: {during:?}");
    let newcomers: Vec<_> = sim
        .nodes
        .iter()
        .map(|n| n.peer)
        .filter(|p| !before.contains(p))
        .collect();
    assert_eq!(newcomers.len(), 4);

    // Lookups run into the departed peers, whose addresses no longer answer, and drop them.
    let after = sim.find_node_batch(config.lookups).await?;
    assert_eq!(after.succeeded, after.total, "after churn: {after:?}");
    let tables = sim.tables().await?;
    let health = sim.table_report(&tables);
    let stale_before_heal = health.stale_entries;
    for _ in 0..5 {
        if sim.table_report(&sim.tables().await?).stale_entries == 0 {
            break;
        }
        sim.find_node_batch(config.lookups).await?;
    }
    let healed = sim.table_report(&sim.tables().await?);
    assert!(
        healed.stale_entries < stale_before_heal.max(1),
        "stale entries did not go down: {stale_before_heal} then {}",
        healed.stale_entries
    );
    for p in &newcomers {
        let holders = tables.values().filter(|t| t.contains(p)).count();
        assert!(holders > 0, "new node {p} is in nobody's routing table");
    }
    assert!(
        healed.closest_known > 0.9,
        "nodes know {:.0}% of their K closest peers",
        healed.closest_known * 100.0
    );
    sim.shutdown().await;
    Ok(())
}

//! The DHT at scale, simulated in one process: N cairn nodes on libp2p's memory transport (the
//! harness in `tests/sim`), for N = 50, 200 and 1,000 by default, then a churn run on the largest.
//! Prints one table row per N, in the shape BENCHMARKS.md quotes.
//!
//! Run: `cargo bench --bench dht_sim` (release). Settings from the environment:
//! `CAIRN_SIM_NODES` (comma-separated sizes, default `50,200,1000`), `CAIRN_SIM_LOOKUPS` (FIND_NODE
//! lookups per size, default 200), `CAIRN_SIM_PROVIDERS` (provider lookups, default 100),
//! `CAIRN_SIM_CONCURRENCY` (lookups in flight, default 16), `CAIRN_SIM_CHURN` (share replaced in
//! the churn run, default 0.1; 0 skips it), `CAIRN_SIM_IDLE` (seconds of the idle CPU sample,
//! default 10), `CAIRN_SIM_JOIN_BATCH` (nodes started at once while the network grows, default 8),
//! `CAIRN_SIM_SETTLE` (seconds to wait at most for the network to go quiet after the join, before
//! the idle sample and the lookups; default 300), `CAIRN_SIM_CONNMGR=off` (no connection trims:
//! the nodes' connection manager off, as `Swarm.ConnMgr.Type: none`).
//!
//! Each size runs in a fresh network, one after the other, so the per-node memory of a size is
//! the growth of the process's resident set from before its first node to after its tables
//! filled, divided by N (the earlier networks' memory has been released by then, mostly: the
//! allocator keeps some, which the baseline taken just before includes).

#[path = "../tests/sim/mod.rs"]
mod sim;

use std::time::{Duration, Instant};

use sim::{LookupReport, Sim, SimConfig, process_usage, quantile};

fn env_f64(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn env_usize(name: &str, default: usize) -> usize {
    env_f64(name, default as f64) as usize
}

fn row(label: &str, r: &LookupReport) -> String {
    format!(
        "{label}: {}/{} ({:.1}%), messages p50 {} p99 {}, hops p50 {} p99 {}, time p50 {} ms p99 {} ms, failed requests {}",
        r.succeeded,
        r.total,
        r.success_pct(),
        quantile(&r.messages, 0.5),
        quantile(&r.messages, 0.99),
        quantile(&r.hops, 0.5),
        quantile(&r.hops, 0.99),
        quantile(&r.millis, 0.5),
        quantile(&r.millis, 0.99),
        r.failed_requests,
    )
}

async fn run(n: usize, churn: f64) -> anyhow::Result<()> {
    let mut config = SimConfig::new(n);
    config.lookups = env_usize("CAIRN_SIM_LOOKUPS", 200);
    config.provider_lookups = env_usize("CAIRN_SIM_PROVIDERS", 100);
    config.concurrency = env_usize("CAIRN_SIM_CONCURRENCY", 16);
    config.join_batch = env_usize("CAIRN_SIM_JOIN_BATCH", config.join_batch);
    let idle = Duration::from_secs(env_usize("CAIRN_SIM_IDLE", 10) as u64);
    let settle = Duration::from_secs(env_usize("CAIRN_SIM_SETTLE", 300) as u64);
    if std::env::var("CAIRN_SIM_CONNMGR").is_ok_and(|v| v == "off") {
        config.conn_mgr = Some(cairn_node_core::ConnMgrLimits {
            enabled: false,
            ..Default::default()
        });
    }
    let (rss0, _, cpu0) = process_usage();
    let started = Instant::now();
    let mut sim = Sim::new(config.clone());
    sim.grow_to(n).await?;
    let joined = started.elapsed();
    let populated = sim.wait_populated(config.settle_timeout).await?;
    // Where the network stands (connections per node drive memory and CPU).
    sim.progress(started.elapsed()).await?;
    let (rss1, _, cpu1) = process_usage();
    let tables = sim.tables().await?;
    let health = sim.table_report(&tables);
    println!(
        "N={n}: all {n} nodes started in {:.1} s; every table ≥ {} peers {} after the last start; \
         table size min {} mean {:.1}; each node knows {:.1}% of its {} closest",
        joined.as_secs_f64(),
        sim::K,
        populated.map_or("never (timeout)".to_string(), |d| format!(
            "{:.1} s",
            d.as_secs_f64()
        )),
        health.min_size,
        health.mean_size,
        health.closest_known * 100.0,
        sim::K,
    );
    println!(
        "N={n}: memory {:.2} MiB per node (RSS {:.0} → {:.0} MiB); CPU to start and fill tables {:.1} ms per node",
        (rss1.saturating_sub(rss0)) as f64 / 1024.0 / n as f64,
        rss0 as f64 / 1024.0,
        rss1 as f64 / 1024.0,
        (cpu1 - cpu0).as_secs_f64() * 1000.0 / n as f64,
    );
    // Lookups and the idle sample wait for the join's storm to pass (see `Sim::wait_quiet`).
    let (quiet_after, rate) = sim.wait_quiet(settle).await?;
    let (_, _, cpu_q0) = process_usage();
    tokio::time::sleep(idle).await;
    let (_, _, cpu_q1) = process_usage();
    println!(
        "N={n}: quiet {:.0} s after the tables filled ({rate:.1} connections opened/s); idle CPU {:.2} ms per node per second",
        quiet_after.as_secs_f64(),
        (cpu_q1 - cpu_q0).as_secs_f64() * 1000.0 / n as f64 / idle.as_secs_f64(),
    );
    let find = sim.find_node_batch(config.lookups).await?;
    println!("N={n}: {}", row("FIND_NODE", &find));
    let providers = sim.provider_batch(config.provider_lookups).await?;
    println!(
        "N={n}: GET_PROVIDERS: {}/{} ({:.1}%), messages mean {}, time p50 {} ms p99 {} ms; provides that failed {}",
        providers.succeeded,
        providers.total,
        providers.success_pct(),
        quantile(&providers.messages, 0.5),
        quantile(&providers.millis, 0.5),
        quantile(&providers.millis, 0.99),
        providers.provide_errors,
    );
    let (_, _, cpu2) = process_usage();
    tokio::time::sleep(idle).await;
    let (rss3, _, cpu3) = process_usage();
    println!(
        "N={n}: idle CPU after the lookups {:.2} ms per node per second; RSS after lookups {:.0} MiB",
        (cpu3 - cpu2).as_secs_f64() * 1000.0 / n as f64 / idle.as_secs_f64(),
        rss3 as f64 / 1024.0
    );
    if churn > 0.0 {
        let rounds = 5;
        let during = sim.churn(churn, rounds).await?;
        println!(
            "N={n}: churn {:.0}% replaced in {rounds} steps: {}",
            churn * 100.0,
            row("FIND_NODE during churn", &during)
        );
        let t = sim.table_report(&sim.tables().await?);
        println!(
            "N={n}: right after churn: stale entries {} of {} ({:.2}%), nodes know {:.1}% of their closest",
            t.stale_entries,
            t.entries,
            100.0 * t.stale_entries as f64 / t.entries.max(1) as f64,
            t.closest_known * 100.0
        );
        for round in 1..=3 {
            let after = sim.find_node_batch(config.lookups).await?;
            let t = sim.table_report(&sim.tables().await?);
            println!(
                "N={n}: after churn, batch {round}: {}; stale entries {} ({:.2}%), closest known {:.1}%",
                row("FIND_NODE", &after),
                t.stale_entries,
                100.0 * t.stale_entries as f64 / t.entries.max(1) as f64,
                t.closest_known * 100.0
            );
        }
        let providers = sim.provider_batch(config.provider_lookups).await?;
        println!(
            "N={n}: after churn: GET_PROVIDERS {}/{} ({:.1}%)",
            providers.succeeded,
            providers.total,
            providers.success_pct()
        );
    }
    let (_, hwm, _) = process_usage();
    println!("N={n}: process VmHWM so far {:.0} MiB", hwm as f64 / 1024.0);
    sim.shutdown().await;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let sizes: Vec<usize> = std::env::var("CAIRN_SIM_NODES")
        .unwrap_or_else(|_| "50,200,1000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let churn = env_f64("CAIRN_SIM_CHURN", 0.1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let largest = sizes.iter().copied().max().unwrap_or(0);
    for n in sizes {
        rt.block_on(run(n, if n == largest { churn } else { 0.0 }))?;
    }
    Ok(())
}

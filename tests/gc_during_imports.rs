//! An import started while a garbage collection runs must not stall the runtime the GC's output
//! needs. `repo/gc` streams its lines through a small channel drained by a runtime task; an
//! import (`Node::adder`, as `add` calls it on a worker) used to wait for the GC gate right on the
//! worker, so with as many imports as workers the drain never ran, the GC never finished, and the
//! daemon stopped answering (found by `benches/soak.rs` at its first GC under load).
//!
//! Deterministic: a one-worker runtime, a GC held running (its output channel full) until the
//! import is waiting, then the drain. Before the fix the import blocked the only worker and the
//! drain never ran; the test then fails after a minute instead of hanging (the runtime is
//! leaked, not shut down, since its worker would never stop).
//!
//! Run: `cargo test --test gc_during_imports`.

use std::sync::mpsc;
use std::time::Duration;

use cairn::blockstore::{Block, codec::RAW};
use cairn::node::{AddOptions, Node, Profile};

#[test]
fn an_import_waiting_for_a_gc_does_not_stall_the_gc_it_waits_for() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let node = rt.block_on(async {
        let node = Node::builder()
            .profile(Profile::Test)
            .listen_addrs([])
            .build()
            .await
            .unwrap();
        // Garbage: unpinned blocks, more than the GC's output channel holds.
        for i in 0..4u32 {
            let block = Block::from_data(RAW, format!("garbage {i}").into_bytes()).unwrap();
            node.put_block(&block).await.unwrap();
        }
        node
    });

    // The GC, as `repo/gc` runs it: on the blocking pool, each removal sent into a one-slot
    // channel a runtime task drains. It tells the test when it is running (holding the gate).
    let (lines, mut drain) = tokio::sync::mpsc::channel::<String>(1);
    let (running_tx, running) = mpsc::channel();
    let store = node.blockstore().unwrap();
    let gc = rt.spawn_blocking(move || {
        let mut first = true;
        store
            .gc_each(|cid, _| {
                let _ = lines.blocking_send(cid.to_string());
                if first {
                    first = false;
                    let _ = running_tx.send(());
                }
            })
            .unwrap()
    });
    running.recv().unwrap();

    // The import, on the only worker, spawned before the drain so it is polled first.
    let (done_tx, done) = mpsc::channel();
    let importer = node.clone();
    rt.spawn(async move {
        let adder = importer.adder(AddOptions::new()).unwrap();
        drop(adder);
        let _ = done_tx.send(());
    });
    rt.spawn(async move { while drain.recv().await.is_some() {} });

    if done.recv_timeout(Duration::from_secs(60)).is_err() {
        std::mem::forget(rt);
        panic!("the import and the GC deadlocked: the GC's drain never ran");
    }
    let summary = rt.block_on(gc).unwrap();
    assert!(
        summary.removed >= 4,
        "the GC finished and removed the garbage"
    );
    rt.block_on(node.shutdown()).unwrap();
}

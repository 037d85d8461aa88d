//! `/api/v0/cairn/events` backpressure: a client that stops reading while the node floods it is
//! dropped with a close reason, and the process's memory stays flat (measured from
//! `/proc/self/status`). Its own test binary, so no other test's allocations count.

mod common;

use futures::StreamExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use common::ws::{WAIT, command, next, open, u};

/// `VmRSS` and `VmHWM` of this process, in bytes.
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap()
            * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

const MIB: u64 = 1 << 20;

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_and_memory_stays_flat() {
    let api = common::start().await;
    let (mut ws, _) = open(&api, &[]).await.unwrap();
    command(&mut ws, json!({"events": ["block"]})).await;
    command(&mut ws, json!({"subscribe": "pubsub", "topic": "flood"})).await;
    let payload = vec![b'x'; 64 << 10];
    // Warm up the paths (allocator pools, buffers) before the baseline.
    for _ in 0..20 {
        api.post_files(
            &format!("/api/v0/pubsub/pub?arg={}", u("flood")),
            &[&payload],
        )
        .await;
    }
    for _ in 0..20 {
        next(&mut ws).await;
    }
    // Reset the peak (VmHWM) to the current RSS, so the peak below is this flood's alone.
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let (rss_before, _) = memory();
    // The client stops reading. Publish up to 3000 messages of 64 KiB (188 MiB of JSON if it
    // were all kept); the socket's subscription ends when the client is dropped.
    let mut published = 0;
    let mut dropped = false;
    while published < 3000 {
        for _ in 0..25 {
            let a = api
                .post_files(
                    &format!("/api/v0/pubsub/pub?arg={}", u("flood")),
                    &[&payload],
                )
                .await;
            assert_eq!(a.status, 200, "{}", a.text());
            published += 1;
        }
        let topics = api.post("/api/v0/pubsub/ls").await.json();
        if topics["Strings"].as_array().is_none_or(|t| t.is_empty()) {
            dropped = true;
            break;
        }
    }
    // Keep producing after the drop: nothing may pile up for the dropped client.
    for _ in 0..if dropped { 200 } else { 0 } {
        api.post_files(
            &format!("/api/v0/pubsub/pub?arg={}", u("flood")),
            &[&payload],
        )
        .await;
        api.post_files("/api/v0/block/put", &[&payload[..1024]])
            .await;
    }
    let (rss_after, hwm_after) = memory();
    eprintln!(
        "RSS before {:.1} MiB, after {:.1} MiB (growth {:.1} MiB), peak {:.1} MiB; {published} messages ({} MiB of payload) published, client dropped: {dropped}, peak reset: {reset}",
        rss_before as f64 / MIB as f64,
        rss_after as f64 / MIB as f64,
        (rss_after as f64 - rss_before as f64) / MIB as f64,
        hwm_after as f64 / MIB as f64,
        published * 64 / 1024
    );
    assert!(
        rss_after < rss_before + 64 * MIB,
        "RSS grew from {rss_before} to {rss_after}"
    );
    assert!(
        hwm_after < rss_before + 64 * MIB,
        "peak RSS {hwm_after} is over 64 MiB above the baseline {rss_before}"
    );
    assert!(
        dropped,
        "the client was not dropped after {published} messages"
    );
    // Reading again: what was in flight, then the close frame with the reason.
    let mut received = 0;
    let close = loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("no close in time")
        {
            Some(Ok(Message::Text(_))) => received += 1,
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                panic!("the socket failed before the close frame: {e} (after {received} messages)")
            }
            None => panic!("the socket ended without a close frame"),
        }
    };
    let close = close.expect("a close frame with a reason");
    assert_eq!(close.code, CloseCode::Policy);
    assert_eq!(close.reason.as_str(), cairn_rpc::events::TOO_SLOW);
    assert!(received < published, "{received} of {published} delivered");
    let metrics = api
        .send("GET", "/debug/metrics/prometheus", &[], Default::default())
        .await;
    assert!(
        metrics
            .text()
            .contains("cairn_rpc_event_clients_dropped_total 1\n"),
        "{}",
        metrics.text()
    );
    eprintln!("the slow client got {received} of {published} messages before the close frame");
}

//! IPNS interop with Helia (`@helia/ipns` 10 on js-libp2p kad-dht, `tests/js/ipns-peer.js`)
//! through the DHT, both ways: cairn publishes and Helia resolves with no cache; Helia publishes
//! and cairn resolves; a higher sequence wins on both sides; an expired record and a badly
//! signed one that Helia pushes are refused by cairn (not acknowledged, never served).

mod common;

use std::time::Duration;

use anyhow::Context;
use base64::Engine as _;
use cairn_node_core::ipns::{IpnsRecord, Name};
use cairn_node_core::names::PublishOptions;
use cairn_node_core::{Node, PeerId, parse_peer_id};
use common::helia::Helia;
use common::{dial_addr, node};
use serde_json::{Value, json};

const CID_1: &str = "/ipfs/bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy";
const CID_2: &str = "/ipfs/bafkreidvbhs33ighmljlvr7zbv2ywwzcmp5adtf4kqvlly67cy56bdtmve";
const CID_3: &str = "/ipfs/bafkreiabltrd5zm73pvi7plq25pef3hm7jxhbi3kv4hapegrkfpkqtkbme";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(v: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str().expect("a base64 string"))
        .expect("base64")
}

/// Helia dials cairn and has it in its DHT table; cairn has Helia in its own.
async fn linked(seed: &str) -> anyhow::Result<(Node, Helia, PeerId)> {
    let cairn = node(false).await;
    let mut helia = Helia::start_ipns(seed).await?;
    let helia_id = parse_peer_id(&helia.peer_id)?;
    helia
        .call("dial", json!({"addr": dial_addr(&cairn).await.to_string()}))
        .await?;
    let deadline = tokio::time::Instant::now() + common::WAIT;
    while !cairn.routing_table().await?.contains(&helia_id) {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "helia never entered cairn's DHT table"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok((cairn, helia, helia_id))
}

/// The peers that acknowledged a Helia `publish`/`put-raw`.
fn acked(result: &Value) -> Vec<String> {
    let list = if result.get("dht").is_some() {
        &result["dht"]["acked"]
    } else {
        &result["acked"]
    };
    list.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cairn_publishes_and_helia_resolves_through_the_dht() -> anyhow::Result<()> {
    let (cairn, mut helia, _) = linked("ipns-cairn-publishes").await?;
    let name = Name::from_peer_id(cairn.peer_id());

    let first = cairn.name_publish(CID_1, PublishOptions::default()).await?;
    assert!(first.peers >= 1, "helia took the record");
    let got = helia
        .call(
            "resolve",
            json!({"name": name.to_string(), "nocache": true}),
        )
        .await?;
    assert_eq!(got["value"], CID_1);
    // Helia's resolver got the bytes cairn signed.
    assert_eq!(unb64(&got["record"]), first.record.to_bytes());

    // An update (sequence 1) reaches Helia too, asked by peer id this time.
    let second = cairn.name_publish(CID_2, PublishOptions::default()).await?;
    assert_eq!(second.sequence, 1);
    let got = helia
        .call(
            "resolve",
            json!({"name": cairn.peer_id().to_base58(), "nocache": true}),
        )
        .await?;
    assert_eq!(got["value"], CID_2);
    assert_eq!(got["sequence"], 1);

    // An RSA key's name: Helia needs the public key embedded in the record.
    let rsa = cairn.keystore().generate("rsa", "rsa", Some(2048))?;
    let mut o = PublishOptions::default();
    o.key = "rsa".into();
    cairn.name_publish(CID_3, o).await?;
    let got = helia
        .call(
            "resolve",
            json!({"name": Name::from_peer_id(rsa.id).to_string(), "nocache": true}),
        )
        .await?;
    assert_eq!(got["value"], CID_3);
    helia.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helia_publishes_and_cairn_resolves_with_the_newest_winning() -> anyhow::Result<()> {
    let (cairn, mut helia, helia_id) = linked("ipns-helia-publishes").await?;
    let me = cairn.peer_id().to_base58();

    let published = helia.call("publish", json!({"value": CID_1})).await?;
    assert!(
        acked(&published).contains(&me),
        "cairn took it: {published}"
    );
    let name = published["name"].as_str().context("name")?.to_string();
    assert_eq!(Name::parse(&name)?.peer_id(), helia_id);
    assert_eq!(cairn.name_resolve(&name, true).await?, CID_1);

    let newer = helia.call("publish", json!({"value": CID_2})).await?;
    assert!(acked(&newer).contains(&me));
    let seq = newer["sequence"].as_u64().context("sequence")?;
    assert_eq!(cairn.name_resolve(&name, true).await?, CID_2);

    // An older record, validly signed, pushed again: cairn refuses it as outdated and keeps
    // serving the newer one (to itself and to Helia).
    let old = helia
        .call(
            "make-record",
            json!({"value": CID_3, "sequence": 0, "lifetimeMs": 3_600_000}),
        )
        .await?;
    let pushed = helia
        .call(
            "put-raw",
            json!({"key": old["routingKey"], "value": old["record"]}),
        )
        .await?;
    assert!(
        !acked(&pushed).contains(&me),
        "outdated record refused: {pushed}"
    );
    assert_eq!(cairn.name_resolve(&name, true).await?, CID_2);
    let best = IpnsRecord::decode(&cairn.get_value(Name::parse(&name)?.routing_key()).await?)?;
    assert_eq!(best.sequence(), seq);

    // A record with a higher sequence, made and pushed by hand, wins.
    let higher = helia
        .call(
            "make-record",
            json!({"value": CID_3, "sequence": seq + 5, "lifetimeMs": 3_600_000, "v1Compatible": false}),
        )
        .await?;
    let pushed = helia
        .call(
            "put-raw",
            json!({"key": higher["routingKey"], "value": higher["record"]}),
        )
        .await?;
    assert!(acked(&pushed).contains(&me), "{pushed}");
    assert_eq!(cairn.name_resolve(&name, true).await?, CID_3);
    helia.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_and_badly_signed_records_from_helia_are_refused() -> anyhow::Result<()> {
    let (cairn, mut helia, _) = linked("ipns-bad-records").await?;
    let me = cairn.peer_id().to_base58();

    let expired = helia
        .call(
            "make-record",
            json!({"value": CID_1, "sequence": 3, "lifetimeMs": -60_000}),
        )
        .await?;
    let key = unb64(&expired["routingKey"]);
    let pushed = helia
        .call(
            "put-raw",
            json!({"key": expired["routingKey"], "value": expired["record"]}),
        )
        .await?;
    assert!(
        !acked(&pushed).contains(&me),
        "expired record refused: {pushed}"
    );
    assert!(
        cairn.get_value(key.clone()).await.is_err(),
        "nothing stored"
    );

    // A valid record with one signature byte flipped.
    let good = helia
        .call(
            "make-record",
            json!({"value": CID_2, "sequence": 4, "lifetimeMs": 3_600_000}),
        )
        .await?;
    let mut bytes = unb64(&good["record"]);
    let record = IpnsRecord::decode(&bytes)?;
    let sig = record.signature_v2().context("signatureV2")?.to_vec();
    let at = bytes
        .windows(sig.len())
        .position(|w| w == sig)
        .context("signature in the bytes")?;
    bytes[at + 10] ^= 0x01;
    let pushed = helia
        .call(
            "put-raw",
            json!({"key": good["routingKey"], "value": b64(&bytes)}),
        )
        .await?;
    assert!(
        !acked(&pushed).contains(&me),
        "forged record refused: {pushed}"
    );
    assert!(
        cairn.get_value(key.clone()).await.is_err(),
        "nothing stored"
    );

    // The untouched record is taken: the refusals above were about the records.
    let pushed = helia
        .call(
            "put-raw",
            json!({"key": good["routingKey"], "value": good["record"]}),
        )
        .await?;
    assert!(acked(&pushed).contains(&me), "{pushed}");
    assert_eq!(cairn.get_value(key).await?, unb64(&good["record"]));
    helia.stop().await;
    Ok(())
}

//! IPNS between cairn nodes over the DHT: a name published on one node resolves on another,
//! a newer sequence wins, invalid records (expired, signed by another key, outside the `ipns`
//! and `pk` namespaces) are refused before anything is sent, and the republisher re-signs with
//! a new end of life; with namesys pubsub, updates also arrive over gossipsub. Interop with
//! Helia is in `ipns_helia.rs`.

mod common;

use std::time::{Duration, SystemTime};

use cairn_node_core::NodeError;
use cairn_node_core::ipns::{IpnsRecord, Name};
use cairn_node_core::names::PublishOptions;
use common::{link, node};

const CID_A: &str = "/ipfs/bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy";
const CID_B: &str = "/ipfs/bafkreidvbhs33ighmljlvr7zbv2ywwzcmp5adtf4kqvlly67cy56bdtmve";

fn options(key: &str) -> PublishOptions {
    let mut o = PublishOptions::default();
    o.key = key.to_string();
    o
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_published_on_one_node_resolves_on_another_and_updates_win() {
    let (a, b) = (node(false).await, node(false).await);
    link(&a, &b).await;

    let first = a.name_publish(CID_A, options("self")).await.unwrap();
    assert_eq!(first.name.peer_id(), a.peer_id());
    assert_eq!(first.sequence, 0);
    assert!(first.peers >= 1, "b took the record");
    assert!(first.name.to_string().starts_with("k51"));
    let path = first.name.to_path();
    assert_eq!(b.name_resolve(&path, true).await.unwrap(), CID_A);

    // Publishing the same value again keeps the sequence (boxo's publisher); a new value bumps it.
    let again = a.name_publish(CID_A, options("self")).await.unwrap();
    assert_eq!(again.sequence, 0);
    let second = a.name_publish(CID_B, options("self")).await.unwrap();
    assert_eq!(second.sequence, 1);
    assert_eq!(b.name_resolve(&path, true).await.unwrap(), CID_B);
    // A path under the name keeps its remainder.
    assert_eq!(
        b.name_resolve(&format!("{path}/dir/file"), true)
            .await
            .unwrap(),
        format!("{CID_B}/dir/file")
    );

    // The older record (still valid) put again does not win: b refuses it as outdated, and a
    // lookup that meets both picks the higher sequence.
    let old = first.record.to_bytes();
    let key = first.name.routing_key();
    let _ = b.put_value(key.clone(), old.clone()).await;
    let best = IpnsRecord::decode(&b.get_value(key.clone()).await.unwrap()).unwrap();
    assert_eq!(best.sequence(), 1);
    assert_eq!(b.name_resolve(&path, true).await.unwrap(), CID_B);

    // A sequence given explicitly must be above the current one.
    let mut o = options("self");
    o.sequence = Some(1);
    let refused = a.name_publish(CID_A, o).await.unwrap_err();
    assert!(refused.to_string().contains("must be greater"), "{refused}");
    let mut o = options("self");
    o.sequence = Some(7);
    assert_eq!(a.name_publish(CID_A, o).await.unwrap().sequence, 7);
    assert_eq!(b.name_resolve(&path, true).await.unwrap(), CID_A);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keystore_keys_publish_their_own_names_and_names_chain() {
    let (a, b) = (node(false).await, node(false).await);
    link(&a, &b).await;
    let ed = a.keystore().generate("site", "ed25519", None).unwrap();
    let rsa = a.keystore().generate("old", "rsa", Some(2048)).unwrap();
    let keys: Vec<String> = a.keys().unwrap().into_iter().map(|k| k.name).collect();
    assert_eq!(keys, vec!["self", "old", "site"]);

    let site = a.name_publish(CID_A, options("site")).await.unwrap();
    assert_eq!(site.name.peer_id(), ed.id);
    // An RSA name cannot carry its key: the record embeds it, and the DHT gets it under /pk/.
    let old = a
        .name_publish(&site.name.to_path(), options("old"))
        .await
        .unwrap();
    assert_eq!(old.name.peer_id(), rsa.id);
    assert!(old.record.public_key_bytes().is_some());

    // /ipns/old -> /ipns/site -> /ipfs/...: followed when recursive, one step when not.
    let old_path = old.name.to_path();
    assert_eq!(b.name_resolve(&old_path, true).await.unwrap(), CID_A);
    assert_eq!(
        b.name_resolve(&old_path, false).await.unwrap(),
        site.name.to_path()
    );
    let pk_key = [b"/pk/".as_slice(), &rsa.id.to_bytes()].concat();
    assert!(
        b.get_value(pk_key).await.is_ok(),
        "the RSA public key is in the DHT"
    );

    // The key may be named by its peer id too; unknown keys get Kubo's error.
    assert!(a.key_pair(&ed.id.to_base58()).is_ok());
    let e = a.name_publish(CID_A, options("nope")).await.unwrap_err();
    assert!(e.to_string().contains("is not a known key"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_records_are_refused_before_anything_is_sent() {
    let a = node(false).await;
    let key = libp2p::identity::Keypair::generate_ed25519();
    let other = libp2p::identity::Keypair::generate_ed25519();
    let name = Name::from_peer_id(key.public().to_peer_id());
    let now = SystemTime::now();
    let make = |k: &libp2p::identity::Keypair, eol: SystemTime| {
        IpnsRecord::create(
            k,
            CID_A.as_bytes(),
            1,
            eol,
            Duration::from_secs(60),
            true,
            false,
        )
        .unwrap()
        .to_bytes()
    };

    let expired = make(&key, now - Duration::from_secs(1));
    let e = a.put_value(name.routing_key(), expired).await.unwrap_err();
    assert!(matches!(e, NodeError::InvalidRecord(_)), "{e}");
    assert!(e.to_string().contains("expired"), "{e}");

    let forged = make(&other, now + Duration::from_secs(3600));
    let e = a.put_value(name.routing_key(), forged).await.unwrap_err();
    assert!(matches!(e, NodeError::InvalidRecord(_)), "{e}");

    let mut tampered = make(&key, now + Duration::from_secs(3600));
    let at = tampered.len() - 5;
    tampered[at] ^= 1;
    assert!(a.put_value(name.routing_key(), tampered).await.is_err());

    let e = a
        .put_value(b"/v/anything".to_vec(), b"x".to_vec())
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "invalid record keytype");

    // A valid record on a node without peers: kept, but routing fails as Kubo's does.
    let good = make(&key, now + Duration::from_secs(3600));
    let e = a.put_value(name.routing_key(), good).await.unwrap_err();
    assert!(
        e.to_string().contains("failed to find any peer in table"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_publish_needs_allow_offline_and_the_republisher_extends_the_record() {
    let a = node(false).await;
    let e = a.name_publish(CID_A, options("self")).await.unwrap_err();
    assert!(
        e.to_string().contains("failed to find any peer in table"),
        "{e}"
    );

    let mut o = options("self");
    o.allow_offline = true;
    o.lifetime = Duration::from_secs(600);
    let published = a.name_publish(CID_A, o).await.unwrap();
    assert_eq!(published.peers, 0);
    let path = published.name.to_path();
    assert_eq!(a.name_resolve(&path, true).await.unwrap(), CID_A);

    let before = published.record.validity().unwrap();
    assert_eq!(
        a.republish_names(Duration::from_secs(48 * 3600))
            .await
            .unwrap(),
        1
    );
    let after = a.published_record(&a.peer_id()).unwrap().unwrap();
    assert_eq!(after.sequence(), published.sequence);
    assert_eq!(after.value(), CID_A.as_bytes());
    assert!(after.validity().unwrap() > before + Duration::from_secs(3600));
    assert_eq!(a.name_resolve(&path, true).await.unwrap(), CID_A);

    // A name nobody published.
    let stranger = Name::from_peer_id(libp2p::PeerId::random());
    let e = a.name_resolve(&stranger.to_path(), true).await.unwrap_err();
    assert_eq!(e.to_string(), "could not resolve name");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_namesys_pubsub_updates_arrive_over_gossipsub() {
    let build = || async {
        cairn_node_core::Node::builder()
            .profile(cairn_node_core::Profile::Test)
            .listen_addrs(["/ip4/127.0.0.1/tcp/0".parse().unwrap()])
            .ipns_pubsub(true)
            .build()
            .await
            .unwrap()
    };
    let (a, b) = (build().await, build().await);
    assert!(a.name_pubsub_enabled());
    link(&a, &b).await;
    let name = a.name_publish(CID_A, options("self")).await.unwrap().name;
    // The first resolve comes from the DHT and subscribes b to the name's topic.
    assert_eq!(b.name_resolve(&name.to_path(), true).await.unwrap(), CID_A);
    assert_eq!(
        b.name_pubsub_subs()
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>(),
        vec![name.to_string()]
    );
    let topic = cairn_node_core::names::pubsub_topic(&name);
    assert!(topic.starts_with("/record/L2lwbnMv"), "{topic}"); // base64url of "/ipns/"

    // a waits until b's subscription reached it, then publishes an update: b hears it on the
    // topic (its cache holds the new record, whatever the DHT does).
    let deadline = tokio::time::Instant::now() + common::WAIT;
    while !a
        .topic_peers(Some(topic.clone()))
        .await
        .unwrap()
        .contains(&b.peer_id())
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "b never joined the topic"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    a.name_publish(CID_B, options("self")).await.unwrap();
    let deadline = tokio::time::Instant::now() + common::WAIT;
    loop {
        if let Some(r) = b.name_pubsub_record(&name)
            && r.value() == CID_B.as_bytes()
        {
            assert_eq!(r.sequence(), 1);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no update over pubsub"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(b.name_resolve(&name.to_path(), true).await.unwrap(), CID_B);
    assert!(b.name_pubsub_cancel(&name).await.unwrap());
    assert!(!b.name_pubsub_cancel(&name).await.unwrap());
    assert!(b.name_pubsub_subs().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_records_and_keys_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    cairn_node_core::Repo::init(dir.path(), &[cairn_node_core::Profile::Test]).unwrap();
    let open = || async {
        cairn_node_core::Node::builder()
            .repo(dir.path())
            .build()
            .await
            .unwrap()
    };
    let node = open().await;
    node.keystore().generate("k", "ed25519", None).unwrap();
    let mut o = options("k");
    o.allow_offline = true;
    let name = node.name_publish(CID_A, o).await.unwrap().name;
    node.shutdown().await.unwrap();
    drop(node);

    let node = open().await;
    assert_eq!(
        node.key_pair("k").unwrap().public().to_peer_id(),
        name.peer_id()
    );
    // The DHT store is in memory; the node's own record comes back from the blockstore.
    assert_eq!(
        node.name_resolve(&name.to_path(), true).await.unwrap(),
        CID_A
    );
    assert_eq!(
        node.republish_names(Duration::from_secs(3600))
            .await
            .unwrap(),
        1
    );
}

//! The key, IPNS and record commands over a real node's RPC: Kubo's output shapes and error
//! texts for `key/*`, `name/publish|resolve|inspect`, `routing/get|put` and `dht/query`, the
//! keystore on disk in Kubo's layout, and records surviving a restart of the node.

mod common;

use base64::Engine as _;
use common::{assert_kubo_error, start};

const CID: &str = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy";

#[tokio::test]
async fn keys_have_kubos_shapes_errors_and_files() {
    let api = start().await;
    let a = api.post("/api/v0/key/gen?arg=site").await;
    assert_eq!(a.status, 200, "{}", a.text());
    let site = a.json();
    assert_eq!(site["Name"], "site");
    let site_id = site["Id"].as_str().unwrap().to_string();
    assert!(site_id.starts_with("k51"), "{site_id}");
    // The key file is Kubo's: key_<base32 name>, mode 0400.
    let file = api.repo.path().join("keystore/key_onuxizi");
    assert!(file.is_file());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o400);
    }

    assert_kubo_error(
        &api.post("/api/v0/key/gen?arg=site").await,
        500,
        "key with name 'site' already exists",
    );
    assert_kubo_error(
        &api.post("/api/v0/key/gen?arg=self").await,
        500,
        "cannot create key with name 'self'",
    );
    assert_kubo_error(
        &api.post("/api/v0/key/gen?arg=x&type=dsa").await,
        500,
        "unrecognized key type: dsa",
    );

    let list = api.post("/api/v0/key/list?ipns-base=b58mh").await.json();
    let names: Vec<&str> = list["Keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["self", "site"]);
    assert_eq!(list["Keys"][0]["Id"], api.node.peer_id().to_base58());

    let renamed = api
        .post("/api/v0/key/rename?arg=site&arg=blog")
        .await
        .json();
    assert_eq!(renamed["Was"], "site");
    assert_eq!(renamed["Now"], "blog");
    assert_eq!(renamed["Id"], site_id.as_str());
    assert_eq!(renamed["Overwrite"], false);

    // Import the exported bytes under another name: same id.
    let bytes = std::fs::read(api.repo.path().join("keystore/key_mjwg6zy")).unwrap();
    let imported = api
        .post_files("/api/v0/key/import?arg=copy", &[&bytes])
        .await;
    assert_eq!(imported.status, 200, "{}", imported.text());
    assert_eq!(imported.json()["Id"], site_id.as_str());
    assert_kubo_error(
        &api.post_files("/api/v0/key/import?arg=bad", &[b"not a key"])
            .await,
        500,
        "unable to unmarshall",
    );

    let removed = api.post("/api/v0/key/rm?arg=blog&arg=copy").await.json();
    assert_eq!(removed["Keys"].as_array().unwrap().len(), 2);
    assert_kubo_error(
        &api.post("/api/v0/key/rm?arg=blog").await,
        500,
        "no key named blog was found",
    );
    assert_kubo_error(
        &api.post("/api/v0/key/rm?arg=self").await,
        500,
        "cannot remove key with name 'self'",
    );
}

#[tokio::test]
async fn names_publish_resolve_inspect_and_records_round_trip() {
    let api = start().await;
    // No peers: publishing needs allow-offline, with Kubo's routing error otherwise.
    assert_kubo_error(
        &api.post(&format!(
            "/api/v0/name/publish?arg={CID}&lifetime=1h&ttl=1m"
        ))
        .await,
        500,
        "failed to find any peer in table",
    );
    let a = api
        .post(&format!(
            "/api/v0/name/publish?arg=/ipfs/{CID}&allow-offline=true&lifetime=1h&ttl=1m"
        ))
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    let v = a.json();
    let name = v["Name"].as_str().unwrap().to_string();
    assert_eq!(v["Value"], format!("/ipfs/{CID}"));
    assert_kubo_error(
        &api.post(&format!(
            "/api/v0/name/publish?arg={CID}&lifetime=1h&ttl=2h"
        ))
        .await,
        500,
        "must not be greater than lifetime",
    );

    // With the global `offline` option: refused without allow-offline, kept locally with it.
    assert_kubo_error(
        &api.post(&format!("/api/v0/name/publish?arg={CID}&offline=true"))
            .await,
        500,
        "can't publish while offline",
    );
    let a = api
        .post(&format!(
            "/api/v0/name/publish?arg=/ipfs/{CID}&offline=true&allow-offline=true&lifetime=1h&ttl=1m"
        ))
        .await;
    assert_eq!(a.status, 200, "{}", a.text());

    let resolved = api.post("/api/v0/name/resolve").await;
    assert_eq!(resolved.status, 200, "{}", resolved.text());
    assert_eq!(resolved.json()["Path"], format!("/ipfs/{CID}"));
    let resolved = api
        .post(&format!("/api/v0/name/resolve?arg=/ipns/{name}/a/b"))
        .await
        .json();
    assert_eq!(resolved["Path"], format!("/ipfs/{CID}/a/b"));
    // `resolve` takes /ipns/ paths too (one step without `recursive`).
    let one = api
        .post(&format!("/api/v0/resolve?arg=/ipns/{name}&recursive=false"))
        .await;
    assert_eq!(one.status, 200, "{}", one.text());
    assert_eq!(one.json()["Path"], format!("/ipfs/{CID}"));
    assert_kubo_error(
        &api.post(&format!(
            "/api/v0/name/resolve?arg={}",
            cairn_node_core::ipns::Name::from_peer_id(cairn_node_core::PeerId::random())
        ))
        .await,
        500,
        "could not resolve name",
    );

    // routing/get gives the record; name/inspect reads it.
    let got = api
        .post(&format!("/api/v0/routing/get?arg=/ipns/{name}"))
        .await;
    assert_eq!(got.status, 200, "{}", got.text());
    let got = got.json();
    assert_eq!(got["Type"], 5);
    let record = base64::engine::general_purpose::STANDARD
        .decode(got["Extra"].as_str().unwrap())
        .unwrap();
    let inspected = api
        .post_files(&format!("/api/v0/name/inspect?verify={name}"), &[&record])
        .await;
    assert_eq!(inspected.status, 200, "{}", inspected.text());
    let i = inspected.json();
    assert_eq!(i["Entry"]["Value"], format!("/ipfs/{CID}"));
    assert_eq!(i["Entry"]["Sequence"], 0);
    assert_eq!(i["Entry"]["TTL"], 60_000_000_000u64);
    assert_eq!(i["SignatureType"], "V1+V2");
    assert_eq!(i["PbSize"], record.len());
    assert_eq!(i["Validation"]["Valid"], true);
    assert!(i["HexDump"].as_str().unwrap().starts_with("00000000  "));
    // The same record checked against another name fails, with the reason.
    let other = cairn_node_core::ipns::Name::from_peer_id(cairn_node_core::PeerId::random());
    let i = api
        .post_files(&format!("/api/v0/name/inspect?verify={other}"), &[&record])
        .await
        .json();
    assert_eq!(i["Validation"]["Valid"], false);
    assert!(!i["Validation"]["Reason"].as_str().unwrap().is_empty());

    // routing/put: the same record is accepted (with allow-offline: no peers); a tampered one
    // and a key outside /ipns/ and /pk/ are refused.
    let put = api
        .post_files(
            &format!("/api/v0/routing/put?arg=/ipns/{name}&allow-offline=true"),
            &[&record],
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.text());
    assert_eq!(put.json()["ID"], api.node.peer_id().to_base58());
    let mut bad = record.clone();
    let n = bad.len();
    bad[n - 3] ^= 1;
    let refused = api
        .post_files(
            &format!("/api/v0/routing/put?arg=/ipns/{name}&allow-offline=true"),
            &[&bad],
        )
        .await;
    assert_eq!(refused.status, 500, "{}", refused.text());
    assert_kubo_error(
        &api.post_files("/api/v0/routing/put?arg=/v/x", &[b"x"])
            .await,
        500,
        "invalid key",
    );

    // dht/query on a node with an empty table.
    let q = api
        .post(&format!(
            "/api/v0/dht/query?arg={}",
            cairn_node_core::PeerId::random()
        ))
        .await;
    assert_kubo_error(&q, 500, "failed to find any peer in table");
}

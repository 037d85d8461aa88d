//! `config`, `config/replace` and `config/profile/apply` against Kubo's config schema, over real
//! HTTP (issue 12, item 2): keys Kubo knows are stored with their type, unknown keys are refused in
//! Kubo 0.34+'s words, and profiles change exactly the keys Kubo's change.

mod common;

use common::{assert_kubo_error, start};
use serde_json::{Value, json};

fn on_disk(api: &common::Api) -> Value {
    serde_json::from_str(&std::fs::read_to_string(api.repo.path().join("config")).unwrap()).unwrap()
}

#[tokio::test]
async fn kubo_setup_script_lines_are_stored() {
    let api = start().await;
    // `ipfs config Routing.Type dht` on a config without a `Routing` section.
    assert!(on_disk(&api).get("Routing").is_none());
    let set = api.post("/api/v0/config?arg=Routing.Type&arg=dht").await;
    assert_eq!(set.status, 200, "{}", set.text());
    assert_eq!(set.json(), json!({"Key": "Routing.Type", "Value": "dht"}));
    assert_eq!(on_disk(&api)["Routing"]["Type"], "dht");
    let get = api.post("/api/v0/config?arg=Routing.Type").await.json();
    assert_eq!(get, json!({"Key": "Routing.Type", "Value": "dht"}));

    // `ipfs config --json Experimental.FilestoreEnabled false`.
    let set = api
        .post("/api/v0/config?arg=Experimental.FilestoreEnabled&arg=false&json=true")
        .await;
    assert_eq!(set.status, 200, "{}", set.text());
    assert_eq!(set.json()["Value"], false);
    assert_eq!(on_disk(&api)["Experimental"]["FilestoreEnabled"], false);

    // `--bool` on a bool key.
    let set = api
        .post("/api/v0/config?arg=Experimental.FilestoreEnabled&arg=true&bool=true")
        .await
        .json();
    assert_eq!(set["Value"], true);
    assert_eq!(on_disk(&api)["Experimental"]["FilestoreEnabled"], true);
    assert_kubo_error(
        &api.post("/api/v0/config?arg=Experimental.FilestoreEnabled&arg=maybe&bool=true")
            .await,
        500,
        "is not a boolean",
    );
    // A map with free keys, and a cairn-only section.
    let set = api
        .post("/api/v0/config?arg=API.HTTPHeaders.X-Test&arg=%5B%22a%22%5D&json=true")
        .await;
    assert_eq!(set.status, 200, "{}", set.text());
    assert_eq!(on_disk(&api)["API"]["HTTPHeaders"]["X-Test"], json!(["a"]));
    let set = api
        .post("/api/v0/config?arg=Cairn.Anything&arg=1&json=true")
        .await;
    assert_eq!(set.status, 200, "{}", set.text());
}

#[tokio::test]
async fn unknown_keys_and_wrong_types_are_refused() {
    let api = start().await;
    let before = std::fs::read(api.repo.path().join("config")).unwrap();
    let a = api
        .post("/api/v0/config?arg=Addresses.APII&arg=/ip4/127.0.0.1/tcp/5001")
        .await;
    assert_eq!(a.status, 500);
    assert_eq!(
        a.json()["Message"],
        "failed to set config value: Addresses.APII not found (maybe use --json?)"
    );
    assert_eq!(
        std::fs::read(api.repo.path().join("config")).unwrap(),
        before
    );
    let a = api.post("/api/v0/config?arg=Addresses.APII").await;
    assert_eq!(
        a.json()["Message"],
        "failed to get config value: \"Addresses.APII not found\""
    );
    // A string for a bool, as Kubo refuses it without --json.
    let a = api
        .post("/api/v0/config?arg=Experimental.FilestoreEnabled&arg=false")
        .await;
    assert_eq!(
        a.json()["Message"],
        "failed to set config value: cannot unmarshal string into config field \
         Experimental.FilestoreEnabled of type bool (maybe use --json?)"
    );
    let a = api
        .post("/api/v0/config?arg=Swarm.ConnMgr.LowWater&arg=many")
        .await;
    assert_eq!(
        a.json()["Message"],
        "failed to set config value: cannot unmarshal string into config field \
         Swarm.ConnMgr.LowWater of type integer or null (maybe use --json?)"
    );
    let a = api
        .post("/api/v0/config?arg=Discovery.MDNS.Enabled&arg=%22yes%22&json=true")
        .await;
    assert_kubo_error(&a, 500, "Discovery.MDNS.Enabled of type bool");
    assert_eq!(
        std::fs::read(api.repo.path().join("config")).unwrap(),
        before
    );
    // The node's config in memory did not change either.
    let show = api.post("/api/v0/config/show").await.json();
    assert!(show["Addresses"].get("APII").is_none());
}

#[tokio::test]
async fn replace_refuses_unknown_keys() {
    let api = start().await;
    let before = std::fs::read(api.repo.path().join("config")).unwrap();
    let mut doc = api.post("/api/v0/config/show").await.json();
    doc["Swarm"]["ConnMgr"]["LowWatr"] = json!(5);
    let a = api
        .post_files("/api/v0/config/replace", &[doc.to_string().as_bytes()])
        .await;
    assert_kubo_error(
        &a,
        500,
        "failed to decode file as config: Swarm.ConnMgr.LowWatr not found",
    );
    let mut doc = api.post("/api/v0/config/show").await.json();
    doc["Experimental"] = json!({"FilestoreEnabled": "yes"});
    let a = api
        .post_files("/api/v0/config/replace", &[doc.to_string().as_bytes()])
        .await;
    assert_kubo_error(&a, 500, "Experimental.FilestoreEnabled of type bool");
    assert_eq!(
        std::fs::read(api.repo.path().join("config")).unwrap(),
        before
    );
    // A whole Kubo section is fine.
    let mut doc = api.post("/api/v0/config/show").await.json();
    doc["Routing"] = json!({"Type": "dht", "Routers": {}, "Methods": {}});
    let a = api
        .post_files("/api/v0/config/replace", &[doc.to_string().as_bytes()])
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(on_disk(&api)["Routing"]["Type"], "dht");
}

#[tokio::test]
async fn profile_apply_changes_kubos_keys() {
    let api = start().await;
    let before = std::fs::read(api.repo.path().join("config")).unwrap();
    // Dry run: Kubo's answer shape, nothing written.
    let a = api
        .post("/api/v0/config/profile/apply?arg=lowpower&dry-run=true")
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    let v = a.json();
    assert!(v["OldCfg"]["Identity"].get("PrivKey").is_none());
    assert!(v["NewCfg"]["Identity"].get("PrivKey").is_none());
    assert_eq!(v["NewCfg"]["Routing"]["Type"], "autoclient");
    let changed = cairn_node_core::config::schema::changed_keys(&v["OldCfg"], &v["NewCfg"]);
    assert_eq!(
        changed,
        [
            "AutoNAT.ServiceMode",
            "Routing.Type",
            "Swarm.ConnMgr.GracePeriod",
            "Swarm.ConnMgr.HighWater",
            "Swarm.ConnMgr.LowWater",
            "Swarm.ConnMgr.Type",
            "Swarm.RelayService.Enabled",
        ]
    );
    assert_eq!(
        std::fs::read(api.repo.path().join("config")).unwrap(),
        before
    );

    // For real.
    let v = api
        .post("/api/v0/config/profile/apply?arg=lowpower")
        .await
        .json();
    assert_eq!(v["NewCfg"]["Swarm"]["ConnMgr"]["LowWater"], 20);
    let disk = on_disk(&api);
    assert_eq!(disk["Swarm"]["ConnMgr"]["LowWater"], 20);
    assert_eq!(disk["Swarm"]["ConnMgr"]["HighWater"], 40);
    assert_eq!(disk["Swarm"]["ConnMgr"]["GracePeriod"], "1m0s");
    assert_eq!(disk["Swarm"]["ConnMgr"]["Type"], "basic");
    assert_eq!(disk["AutoNAT"]["ServiceMode"], "disabled");
    assert_eq!(disk["Swarm"]["RelayService"]["Enabled"], false);
    assert!(!disk["Identity"]["PrivKey"].as_str().unwrap().is_empty());

    let v = api
        .post("/api/v0/config/profile/apply?arg=server")
        .await
        .json();
    let changed = cairn_node_core::config::schema::changed_keys(&v["OldCfg"], &v["NewCfg"]);
    // The test profile already turned mDNS off.
    assert_eq!(
        changed,
        [
            "Addresses.NoAnnounce",
            "Swarm.AddrFilters",
            "Swarm.DisableNatPortMap"
        ]
    );
    assert_eq!(
        on_disk(&api)["Swarm"]["AddrFilters"][0],
        "/ip4/10.0.0.0/ipcidr/8"
    );

    assert_kubo_error(
        &api.post("/api/v0/config/profile/apply?arg=no-such-profile")
            .await,
        500,
        "no-such-profile is not a profile",
    );
}

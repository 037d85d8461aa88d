//! Thousands of malformed requests (bad CIDs, bad multibase, truncated multipart, huge bodies,
//! bad and unknown options, garbage paths): every answer is a Kubo-format error (JSON
//! `{"Message","Code","Type":"error"}`, or Kubo's plain-text parse/404 errors), the node keeps
//! serving, and no stored block is lost.

mod common;

use bytes::Bytes;
use common::{Answer, start};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

fn is_kubo_error(a: &Answer) -> bool {
    match a.status {
        404 => a.text() == "404 page not found\n",
        400 | 500 if a.header("content-type") == Some("application/json") => {
            let v: serde_json::Value = match serde_json::from_slice(&a.body) {
                Ok(v) => v,
                Err(_) => return false,
            };
            v["Type"] == "error" && v["Message"].is_string() && v["Code"].is_u64()
        }
        400 => a.header("content-type") == Some("text/plain; charset=utf-8") && !a.body.is_empty(),
        _ => false,
    }
}

fn random_text(rng: &mut StdRng) -> String {
    let alphabet = b"Qmbafy0123456789abcdefghijklmnopqrstuvwxyz/%+=&?~!@#$^*()[]{}<>\\\"'";
    let n = rng.random_range(0..80);
    (0..n)
        .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
        .collect()
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_malformed_requests_get_kubo_errors_and_lose_nothing() {
    let api = start().await;
    let stored: Vec<String> = api
        .post_files(
            "/api/v0/block/put?pin=true",
            &[b"precious one", b"precious two"],
        )
        .await
        .lines()
        .iter()
        .map(|l| l["Key"].as_str().unwrap().to_string())
        .collect();
    let mut rng = StdRng::seed_from_u64(0xca17);
    let cid_commands = [
        "block/get",
        "block/stat",
        "block/rm",
        "pin/add",
        "pin/rm",
        "routing/findprovs",
        "dht/findprovs",
        "routing/provide",
    ];
    let topic_commands = ["pubsub/pub", "pubsub/sub", "pubsub/peers"];
    let mut count = 0;
    let mut bad = Vec::new();
    let mut check = |what: String, a: Answer| {
        count += 1;
        if !is_kubo_error(&a) {
            bad.push(format!(
                "{what} -> {} {:?} {}",
                a.status,
                a.header("content-type"),
                a.text()
            ));
        }
    };
    for i in 0..2200 {
        match i % 11 {
            0..=2 => {
                let cmd = cid_commands[rng.random_range(0..cid_commands.len())];
                let mut arg = random_text(&mut rng);
                if arg.is_empty() || cairn_blockstore::parse_cid_str(&arg).is_ok() {
                    arg = "Qm-not-a-cid".into();
                }
                let path = format!("/api/v0/{cmd}?arg={}", enc(&arg));
                check(path.clone(), api.post(&path).await);
            }
            3 => {
                // Truncated CID: a real CID with its tail cut off.
                let cut = rng.random_range(1..stored[0].len() - 1);
                let path = format!("/api/v0/block/get?arg={}", &stored[0][..cut]);
                check(path.clone(), api.post(&path).await);
            }
            4 => {
                let cmd = topic_commands[rng.random_range(0..topic_commands.len())];
                let arg = format!(
                    "{}{}",
                    ["", "z", "m", "u!", "u@@"][rng.random_range(0..5)],
                    random_text(&mut rng)
                );
                let path = format!("/api/v0/{cmd}?arg={}", enc(&arg));
                let a = if cmd == "pubsub/pub" {
                    api.post_files(&path, &[b"x"]).await
                } else {
                    api.post(&path).await
                };
                if arg.starts_with('u') && a.status == 200 {
                    continue; // happened to be valid base64url
                }
                check(path, a);
            }
            5 | 6 => {
                // Truncated multipart bodies.
                let cmd =
                    ["block/put", "config/replace", "pubsub/pub?arg=udA"][rng.random_range(0..3)];
                let boundary = "xYzBoundary";
                let mut body = format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                )
                .into_bytes();
                let mut payload = vec![0u8; rng.random_range(1..2000)];
                rng.fill_bytes(&mut payload);
                body.extend_from_slice(&payload);
                body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
                let cut = rng.random_range(1..body.len() - 8);
                body.truncate(cut);
                let ct = format!("multipart/form-data; boundary={boundary}");
                let path = format!("/api/v0/{cmd}");
                check(
                    format!("{path} truncated at {cut}"),
                    api.send("POST", &path, &[("content-type", &ct)], Bytes::from(body))
                        .await,
                );
            }
            7 => {
                // Bad option values.
                let (cmd, opt) = [
                    ("pin/ls", "stream"),
                    ("block/rm", "force"),
                    ("routing/findprovs", "num-providers"),
                    ("ping", "count"),
                    ("block/put", "mhlen"),
                ][rng.random_range(0..5)];
                let path = format!(
                    "/api/v0/{cmd}?{opt}={}&{opt}=x",
                    enc(&random_text(&mut rng))
                );
                check(path.clone(), api.post(&path).await);
            }
            8 => {
                let path = format!(
                    "/api/v0/{}",
                    enc(&random_text(&mut rng)).replace("%2F", "/")
                );
                if cairn_rpc::COMMANDS
                    .iter()
                    .any(|c| path == format!("/api/v0/{c}"))
                {
                    continue;
                }
                check(path.clone(), api.post(&path).await);
            }
            9 => {
                // Unknown options are ignored, as Kubo ignores them; a missing argument still fails.
                let path = format!(
                    "/api/v0/block/stat?{}=1",
                    enc(&random_text(&mut rng)).replace("arg", "grr")
                );
                check(path.clone(), api.post(&path).await);
            }
            _ => {
                // Garbage bodies that claim to be multipart with a bad boundary line.
                let mut body = vec![0u8; rng.random_range(0..500)];
                rng.fill_bytes(&mut body);
                check(
                    "block/put garbage".into(),
                    api.send(
                        "POST",
                        "/api/v0/block/put",
                        &[("content-type", "multipart/form-data; boundary=b")],
                        Bytes::from(body),
                    )
                    .await,
                );
            }
        }
    }
    // Huge bodies.
    for _ in 0..3 {
        let huge = vec![b'a'; 40 << 20];
        check(
            "huge block".into(),
            api.post_files("/api/v0/block/put?allow-big-block=true", &[&huge])
                .await,
        );
    }
    assert!(
        bad.is_empty(),
        "{} of {count} answers were not Kubo errors:\n{}",
        bad.len(),
        bad[..bad.len().min(20)].join("\n")
    );
    assert!(count >= 2000, "only {count} requests checked");
    // Still serving, nothing lost.
    assert_eq!(api.post("/api/v0/id").await.status, 200);
    for cid in &stored {
        let got = api.post(&format!("/api/v0/block/stat?arg={cid}")).await;
        assert_eq!(got.status, 200, "{cid} lost");
    }
    println!("{count} malformed requests, all answered with Kubo-format errors");
}

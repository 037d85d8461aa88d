//! The CLI's key, IPNS and DHT record verbs: `cairn key ...`, `cairn name ...`,
//! `cairn routing get|put` and `cairn dht query`, printed as the ipfs CLI prints them (JSON with
//! `--enc json`). `key export` reads the repo's keystore directly, as Kubo's does (it is not an
//! RPC command).

use std::path::{Path, PathBuf};

use anyhow::Context;
use base64::Engine as _;
use clap::Subcommand;
use serde_json::Value;

use crate::client::{RpcClient, call};
use crate::{print_json, write_stdout};

/// `cairn key ...`
#[derive(Debug, Subcommand)]
pub enum KeyCmd {
    /// Create a new key pair.
    Gen {
        /// The key's name.
        name: String,
        /// The key type: ed25519 (default), rsa, secp256k1.
        #[arg(long = "type", short = 't', default_value = "ed25519")]
        kind: String,
        /// RSA size in bits (default 2048).
        #[arg(long, short)]
        size: Option<usize>,
    },
    /// List the keys (`self` first).
    #[command(alias = "ls")]
    List {
        /// Show the key ids too.
        #[arg(short = 'l')]
        long: bool,
    },
    /// Remove keys.
    Rm {
        /// The names.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Rename a key.
    Rename {
        /// The current name.
        name: String,
        /// The new name.
        new_name: String,
        /// Overwrite an existing key of the new name.
        #[arg(long, short)]
        force: bool,
    },
    /// Import a key from a file in libp2p's protobuf form (as `key export` writes it).
    Import {
        /// The name to give it.
        name: String,
        /// The key file.
        file: PathBuf,
    },
    /// Export a key to a file (default `./<name>.key`) in libp2p's protobuf form; reads the
    /// repo's keystore directly.
    Export {
        /// The key's name (`self` cannot be exported, as in Kubo).
        name: String,
        /// Where to write it.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

/// `cairn name ...`
#[derive(Debug, Subcommand)]
pub enum NameCmd {
    /// Publish a path under a key's IPNS name.
    Publish {
        /// The path (`/ipfs/<cid>`, `/ipns/<name>` or a CID).
        path: String,
        /// The key: `self` (default), a key name, or its id.
        #[arg(long, short, default_value = "self")]
        key: String,
        /// How long the record is valid (Go duration, default 48h).
        #[arg(long, short = 't')]
        lifetime: Option<String>,
        /// The cache hint (Go duration, default 5m).
        #[arg(long)]
        ttl: Option<String>,
        /// Succeed without DHT peers (the record is kept and republished).
        #[arg(long)]
        allow_offline: bool,
        /// Use this sequence number (above the current one).
        #[arg(long)]
        sequence: Option<u64>,
        /// Print only the name.
        #[arg(long, short = 'Q')]
        quieter: bool,
    },
    /// Resolve an IPNS name (default: this node's).
    Resolve {
        /// The name or `/ipns/` path.
        name: Option<String>,
        /// Follow IPNS values to the end (default true).
        #[arg(long, short, default_value_t = true, action = clap::ArgAction::Set)]
        recursive: bool,
        /// How long to look (Go duration).
        #[arg(long = "dht-timeout")]
        dht_timeout: Option<String>,
    },
    /// Print the fields of an IPNS record read from a file (or stdin).
    Inspect {
        /// The record file (default: stdin).
        file: Option<PathBuf>,
        /// Check the record against this name.
        #[arg(long)]
        verify: Option<String>,
    },
}

/// `cairn routing get|put` and `cairn dht query`.
#[derive(Debug, Subcommand)]
pub enum RecordCmd {
    /// Print the best record under `/ipns/<id>` or `/pk/<id>` (raw bytes).
    Get {
        /// The key.
        key: String,
    },
    /// Put a record (from a file) under `/ipns/<id>` or `/pk/<id>`.
    Put {
        /// The key.
        key: String,
        /// The record file.
        file: PathBuf,
        /// Succeed without DHT peers.
        #[arg(long)]
        allow_offline: bool,
    },
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// Runs a `key` verb.
pub async fn key(rpc: &RpcClient, repo: &Path, cmd: KeyCmd, json: bool) -> anyhow::Result<()> {
    let print_keys = |v: &Value, long: bool| {
        if json {
            return print_json(v);
        }
        for k in v["Keys"].as_array().into_iter().flatten() {
            let (name, id) = (k["Name"].as_str(), k["Id"].as_str());
            if long {
                out!(
                    "{:<60} {}",
                    id.unwrap_or_default(),
                    name.unwrap_or_default()
                );
            } else {
                out!("{}", name.unwrap_or_default());
            }
        }
    };
    match cmd {
        KeyCmd::Gen { name, kind, size } => {
            let mut c = call().arg(name).opt("type", kind);
            if let Some(s) = size {
                c = c.opt("size", s);
            }
            let v = rpc.json("key/gen", c).await?;
            if json {
                print_json(&v)
            } else {
                out!("{}", v["Id"].as_str().unwrap_or_default());
            }
        }
        KeyCmd::List { long } => print_keys(&rpc.json("key/list", call()).await?, long),
        KeyCmd::Rm { names } => {
            let c = names.into_iter().fold(call(), |c, n| c.arg(n));
            print_keys(&rpc.json("key/rm", c).await?, false);
        }
        KeyCmd::Rename {
            name,
            new_name,
            force,
        } => {
            let c = call().arg(name).arg(new_name).opt("force", force);
            let v = rpc.json("key/rename", c).await?;
            if json {
                print_json(&v)
            } else {
                let (id, now) = (v["Id"].as_str().unwrap_or_default(), &v["Now"]);
                let now = now.as_str().unwrap_or_default();
                if v["Overwrite"] == true {
                    out!("Key {id} renamed to {now} with overwriting");
                } else {
                    out!("Key {id} renamed to {now}");
                }
            }
        }
        KeyCmd::Import { name, file } => {
            let v = rpc
                .json("key/import", call().arg(name).file(read(&file)?))
                .await?;
            if json {
                print_json(&v)
            } else {
                out!("{}", v["Id"].as_str().unwrap_or_default());
            }
        }
        KeyCmd::Export { name, output } => export(repo, &name, output)?,
    }
    Ok(())
}

/// `key export`: copies key `name` from the repo's keystore to `output` (default
/// `./<name>.key`), without the daemon, as Kubo's does.
pub fn export(repo: &Path, name: &str, output: Option<PathBuf>) -> anyhow::Result<()> {
    if name == cairn::node::keystore::SELF_KEY {
        anyhow::bail!("cannot export key with name 'self'");
    }
    let store = cairn::node::keystore::Keystore::open(repo.join("keystore"))?;
    let bytes = store
        .get_bytes(name)
        .map_err(|_| anyhow::anyhow!("key with name '{name}' doesn't exist"))?;
    let out = output.unwrap_or_else(|| PathBuf::from(format!("{name}.key")));
    std::fs::write(&out, bytes).with_context(|| format!("writing {}", out.display()))
}

/// `cairn dht ...`
#[derive(Debug, Subcommand)]
pub enum DhtCmd {
    /// Find the closest peers to a peer id on the DHT.
    Query {
        /// The peer id.
        peer: String,
    },
}

/// Runs a `name` verb.
pub async fn name(rpc: &RpcClient, cmd: NameCmd, json: bool) -> anyhow::Result<()> {
    match cmd {
        NameCmd::Publish {
            path,
            key,
            lifetime,
            ttl,
            allow_offline,
            sequence,
            quieter,
        } => {
            let mut c = call()
                .arg(path)
                .opt("key", key)
                .opt("allow-offline", allow_offline);
            if let Some(l) = lifetime {
                c = c.opt("lifetime", l);
            }
            if let Some(t) = ttl {
                c = c.opt("ttl", t);
            }
            if let Some(s) = sequence {
                c = c.opt("sequence", s);
            }
            let v = rpc.json("name/publish", c).await?;
            let (name, value) = (v["Name"].as_str().unwrap_or_default(), &v["Value"]);
            if json {
                print_json(&v)
            } else if quieter {
                out!("{name}");
            } else {
                out!(
                    "Published to {name}: {}",
                    value.as_str().unwrap_or_default()
                );
            }
        }
        NameCmd::Resolve {
            name,
            recursive,
            dht_timeout,
        } => {
            let mut c = name.map_or(call(), |n| call().arg(n));
            c = c.opt("recursive", recursive);
            if let Some(t) = dht_timeout {
                c = c.opt("dht-timeout", t);
            }
            let v = rpc.json("name/resolve", c).await?;
            if json {
                print_json(&v)
            } else {
                out!("{}", v["Path"].as_str().unwrap_or_default());
            }
        }
        NameCmd::Inspect { file, verify } => {
            let data = match file {
                Some(f) => read(&f)?,
                None => crate::stdin_bytes()?,
            };
            let mut c = call().file(data);
            if let Some(v) = verify {
                c = c.opt("verify", v);
            }
            let v = rpc.json("name/inspect", c).await?;
            if json {
                print_json(&v);
                return Ok(());
            }
            let e = &v["Entry"];
            out!("Value:         {}", e["Value"]);
            out!("Validity Type: {}", e["ValidityType"]);
            out!("Validity:      {}", e["Validity"]);
            out!("Sequence:      {}", e["Sequence"]);
            out!("TTL:           {}", e["TTL"]);
            out!(
                "Signature Type: {}",
                v["SignatureType"].as_str().unwrap_or_default()
            );
            out!("Protobuf Size: {}", v["PbSize"]);
            if let Some(valid) = v["Validation"].as_object() {
                out!("Validation:");
                out!("  Valid:  {}", valid["Valid"]);
                out!("  Reason: {}", valid["Reason"].as_str().unwrap_or_default());
            }
        }
    }
    Ok(())
}

/// Runs `routing get|put`.
pub async fn record(rpc: &RpcClient, cmd: RecordCmd, json: bool) -> anyhow::Result<()> {
    match cmd {
        RecordCmd::Get { key } => {
            let v = rpc.json("routing/get", call().arg(key)).await?;
            if json {
                print_json(&v);
                return Ok(());
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(v["Extra"].as_str().unwrap_or_default())
                .context("the record is not base64")?;
            write_stdout(&bytes)?;
        }
        RecordCmd::Put {
            key,
            file,
            allow_offline,
        } => {
            let c = call()
                .arg(key)
                .opt("allow-offline", allow_offline)
                .file(read(&file)?);
            let v = rpc.json("routing/put", c).await?;
            if json {
                print_json(&v)
            } else {
                out!("{}", v["ID"].as_str().unwrap_or_default());
            }
        }
    }
    Ok(())
}

/// Runs `dht query <peer>`: the closest peers, one per line.
pub async fn dht_query(rpc: &RpcClient, peer: String, json: bool) -> anyhow::Result<()> {
    rpc.stream("dht/query", call().arg(peer), |v| {
        if json {
            out!("{v}");
        } else if v["Type"] == 2 {
            out!("{}", v["ID"].as_str().unwrap_or_default());
        }
        Ok(())
    })
    .await
}

//! The `cairn` binary: `cairn init`, `cairn daemon`, `cairn shutdown`, and client commands that
//! mirror `ipfs` and talk to the daemon's RPC. Run `cairn --help`; `cairn daemon --init` starts a
//! node on its defaults (repo `$CAIRN_PATH` or `~/.cairn`, RPC on 127.0.0.1:5001).

/// Prints a line to stdout; a closed pipe (`cairn id | head -1`) ends the program quietly, as
/// the ipfs CLI does, instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::write_line(format_args!($($arg)*))
    };
}

mod alloc;
mod cli;
mod client;
mod daemon;
mod files;
mod names;
mod offline;
mod watch;

fn write_line(args: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = writeln!(stdout, "{args}").and_then(|_| stdout.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("Error: writing to stdout: {e}");
        std::process::exit(1);
    }
}

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::{Context, bail};
use base64::Engine as _;
use clap::Parser;
use cli::{
    BitswapCmd, BlockCmd, BootstrapCmd, Cli, Command, DiagCmd, Encoding, LogFormat, PinCmd,
    ProvideCmd, PubsubCmd, RepoCmd, RoutingCmd, SwarmCmd, WatchCmd,
};
use client::{RpcClient, call};
use serde_json::Value;

/// Installs the console log output (`--log-level` / `RUST_LOG`, `--log-format`) and the layer
/// that feeds log lines to `/api/v0/cairn/events` clients; returns that layer's channel.
fn init_logging(level: Option<&str>, format: LogFormat) -> cairn::node::LogBus {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = match level {
        Some(l) => tracing_subscriber::EnvFilter::new(l),
        None => tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new(
                "warn,cairn=info,cairn_node_core=info,cairn_rpc=info",
            )
        }),
    };
    let logs = cairn::node::LogBus::new();
    // The console filter is per layer, so the event stream's own level does not change what
    // the console prints.
    let console = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let console = match format {
        LogFormat::Json => console.json().with_filter(filter).boxed(),
        LogFormat::Text => console.with_filter(filter).boxed(),
    };
    tracing_subscriber::registry()
        .with(console)
        .with(logs.layer())
        .init();
    logs
}

fn main() {
    let cli = Cli::parse();
    let logs = init_logging(cli.log_level.as_deref(), cli.log_format);
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let code = match runtime.block_on(run(cli, logs)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {e:#}");
            1
        }
    };
    // The runtime may hold tasks that never end (a daemon's timers); do not wait for them.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    std::process::exit(code);
}

fn u(text: &str) -> String {
    format!(
        "u{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
    )
}

fn from_u(text: &str) -> String {
    let bytes = text
        .strip_prefix('u')
        .and_then(|t| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(t)
                .ok()
        })
        .unwrap_or_else(|| text.as_bytes().to_vec());
    String::from_utf8_lossy(&bytes).to_string()
}

fn stdin_bytes() -> anyhow::Result<Vec<u8>> {
    let mut data = Vec::new();
    std::io::stdin().read_to_end(&mut data)?;
    Ok(data)
}

/// Writes raw bytes to stdout; a closed pipe (`cairn cat <cid> | head -c 10`) ends the program
/// quietly, as [`write_line`] does.
fn write_stdout(data: &[u8]) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(data).and_then(|_| stdout.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        other => Ok(other?),
    }
}

/// `cairn files ...`: each verb is one `files/*` RPC; text output as the ipfs CLI prints it.
async fn files_command(
    rpc: &client::RpcClient,
    f: cli::FilesCmd,
    json: bool,
) -> anyhow::Result<()> {
    use cli::FilesCmd;
    match f {
        FilesCmd::Mkdir {
            path,
            parents,
            cid_version,
            hash,
        } => {
            let c = call()
                .arg(path)
                .opt("parents", parents)
                .maybe("cid-version", cid_version)
                .maybe("hash", hash);
            rpc.bytes("files/mkdir", c).await?;
        }
        FilesCmd::Write {
            path,
            data,
            offset,
            create,
            parents,
            truncate,
            count,
            raw_leaves,
            cid_version,
            hash,
        } => {
            let bytes = match data {
                Some(f) => std::fs::read(&f).with_context(|| format!("reading {}", f.display()))?,
                None => stdin_bytes()?,
            };
            let c = call()
                .arg(path)
                .maybe("offset", offset)
                .opt("create", create)
                .opt("parents", parents)
                .opt("truncate", truncate)
                .maybe("count", count)
                .maybe("raw-leaves", raw_leaves)
                .maybe("cid-version", cid_version)
                .maybe("hash", hash)
                .file(bytes);
            rpc.bytes("files/write", c).await?;
        }
        FilesCmd::Read {
            path,
            offset,
            count,
        } => {
            let c = call()
                .arg(path)
                .maybe("offset", offset)
                .maybe("count", count);
            let data = rpc.bytes("files/read", c).await?;
            write_stdout(&data)?;
        }
        FilesCmd::Ls {
            path,
            long,
            unsorted,
        } => {
            let c = call()
                .arg(path.unwrap_or_else(|| "/".into()))
                .opt("long", long);
            let v = rpc.json("files/ls", c).await?;
            if json {
                print_json(&v);
                return Ok(());
            }
            let mut entries: Vec<serde_json::Value> =
                v["Entries"].as_array().cloned().unwrap_or_default();
            if !unsorted {
                entries.sort_by(|a, b| {
                    a["Name"]
                        .as_str()
                        .unwrap_or("")
                        .cmp(b["Name"].as_str().unwrap_or(""))
                });
            }
            for e in entries {
                let name = e["Name"].as_str().unwrap_or_default();
                if long {
                    let slash = if e["Type"] == 1 { "/" } else { "" };
                    out!(
                        "{name}{slash}\t{}\t{}",
                        e["Hash"].as_str().unwrap_or_default(),
                        e["Size"]
                    );
                } else {
                    out!("{name}");
                }
            }
        }
        FilesCmd::Stat {
            path,
            hash,
            size,
            format,
            with_local,
        } => {
            let c = call()
                .arg(path)
                .opt("hash", hash)
                .opt("size", size)
                .opt("with-local", with_local)
                .maybe("format", format.clone());
            let v = rpc.json("files/stat", c).await?;
            if json {
                print_json(&v);
                return Ok(());
            }
            let f = if hash {
                "<hash>".to_string()
            } else if size {
                "<cumulsize>".to_string()
            } else {
                format.unwrap_or_else(|| {
                    "<hash>\nSize: <size>\nCumulativeSize: <cumulsize>\nChildBlocks: <childs>\nType: <type>\nMode: <mode> (<mode-octal>)\nMtime: <mtime>".into()
                })
            };
            out!("{}", stat_text(&f, &v));
            if v["WithLocality"].as_bool() == Some(true) {
                // The ipfs CLI's line: `Local: 1.2 kB of 3.4 kB (35.29%)`.
                let local = v["SizeLocal"].as_u64().unwrap_or(0);
                let total = v["CumulativeSize"].as_u64().unwrap_or(0);
                out!(
                    "Local: {} of {} ({:.2}%)",
                    human_bytes(local),
                    human_bytes(total),
                    100.0 * local as f64 / total as f64
                );
            }
        }
        FilesCmd::Cp {
            source,
            dest,
            parents,
        } => {
            let c = call().arg(source).arg(dest).opt("parents", parents);
            rpc.bytes("files/cp", c).await?;
        }
        FilesCmd::Mv { source, dest } => {
            rpc.bytes("files/mv", call().arg(source).arg(dest)).await?;
        }
        FilesCmd::Rm {
            paths,
            recursive,
            force,
        } => {
            let c = paths.into_iter().fold(
                call().opt("recursive", recursive).opt("force", force),
                |c, p| c.arg(p),
            );
            rpc.stream("files/rm", c, |v| {
                out!("{}", v.as_str().unwrap_or_default());
                Ok(())
            })
            .await?;
        }
        FilesCmd::Flush { path } => {
            let v = rpc
                .json(
                    "files/flush",
                    call().arg(path.unwrap_or_else(|| "/".into())),
                )
                .await?;
            if json {
                print_json(&v);
            } else {
                out!("{}", v["Cid"].as_str().unwrap_or_default());
            }
        }
        FilesCmd::Chcid {
            path,
            cid_version,
            hash,
        } => {
            let c = call()
                .arg(path.unwrap_or_else(|| "/".into()))
                .maybe("cid-version", cid_version)
                .maybe("hash", hash);
            rpc.bytes("files/chcid", c).await?;
        }
        FilesCmd::Chmod { mode, path } => {
            rpc.bytes("files/chmod", call().arg(mode).arg(path)).await?;
        }
        FilesCmd::Touch {
            path,
            mtime,
            mtime_nsecs,
        } => {
            let c = call()
                .arg(path)
                .maybe("mtime", mtime)
                .maybe("mtime-nsecs", mtime_nsecs);
            rpc.bytes("files/touch", c).await?;
        }
    }
    Ok(())
}

/// `files stat`'s answer through a `--format` template, as the ipfs CLI fills it: `<hash>`,
/// `<size>`, `<cumulsize>`, `<childs>`, `<type>`, `<mode>` (Go's `FileMode.String`, lower
/// case), `<mode-octal>`, `<mtime>` (`2 Jan 2006, 15:04:05 UTC`), `<mtime-secs>`,
/// `<mtime-nsecs>`; an unset mode or mtime prints `not set`.
fn stat_text(template: &str, v: &Value) -> String {
    const UNSET: &str = "not set";
    let mode = v["Mode"]
        .as_str()
        .and_then(|m| u32::from_str_radix(m, 8).ok())
        .filter(|m| *m != 0);
    let (mode_s, mode_o) = match mode {
        Some(m) => (
            go_file_mode_string(m).to_lowercase(),
            format!("0{:o}", m & 0o777),
        ),
        None => (UNSET.into(), UNSET.into()),
    };
    let secs = v["Mtime"].as_i64().unwrap_or(0);
    let nanos = v["MtimeNsecs"].as_u64().unwrap_or(0);
    let (mtime, mtime_s, mtime_n) = if secs > 0 {
        let when = time::OffsetDateTime::from_unix_timestamp(secs)
            .ok()
            .and_then(|t| {
                let f = time::macros::format_description!(
                    "[day padding:none] [month repr:short] [year], [hour]:[minute]:[second] UTC"
                );
                t.format(&f).ok()
            })
            .unwrap_or_default();
        (when, secs.to_string(), nanos.to_string())
    } else {
        (UNSET.into(), UNSET.into(), UNSET.into())
    };
    template
        .replace("<hash>", v["Hash"].as_str().unwrap_or_default())
        .replace("<size>", &v["Size"].to_string())
        .replace("<cumulsize>", &v["CumulativeSize"].to_string())
        .replace("<childs>", &v["Blocks"].to_string())
        .replace("<type>", v["Type"].as_str().unwrap_or_default())
        .replace("<mode>", &mode_s)
        .replace("<mode-octal>", &mode_o)
        .replace("<mtime>", &mtime)
        .replace("<mtime-secs>", &mtime_s)
        .replace("<mtime-nsecs>", &mtime_n)
}

/// Go's `os.FileMode.String`: one letter per type bit set (`dalTLDpSugct?`, from bit 31
/// down), `-` when none, then `rwxrwxrwx` with `-` for the bits not set.
fn go_file_mode_string(m: u32) -> String {
    let mut out: String = "dalTLDpSugct?"
        .chars()
        .enumerate()
        .filter(|(i, _)| m & (1 << (31 - i)) != 0)
        .map(|(_, c)| c)
        .collect();
    if out.is_empty() {
        out.push('-');
    }
    for (i, c) in "rwxrwxrwx".chars().enumerate() {
        out.push(if m & (1 << (8 - i)) != 0 { c } else { '-' });
    }
    out
}

/// A byte count as Go's `humanize.Bytes` prints it (SI units: `83 MB`, `1.2 kB`), which the ipfs
/// CLI uses for `--human`.
fn human_bytes(n: u64) -> String {
    if n < 10 {
        return format!("{n} B");
    }
    let units = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let exp = ((n as f64).ln() / 1000f64.ln()).floor() as usize;
    let value = n as f64 / 1000f64.powi(exp as i32);
    if value < 10.0 {
        format!("{value:.1} {}", units[exp])
    } else {
        format!("{value:.0} {}", units[exp])
    }
}

fn print_json(v: &Value) {
    out!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

async fn run(cli: Cli, logs: cairn::node::LogBus) -> anyhow::Result<i32> {
    let repo: PathBuf = cli
        .repo_dir
        .clone()
        .unwrap_or_else(cairn::node::default_repo_path);
    let json = cli.encoding == Encoding::Json;
    match cli.command {
        Command::Init {
            profile,
            algorithm,
            bits,
        } => {
            let profiles = profile
                .iter()
                .map(|p| p.parse())
                .collect::<Result<Vec<_>, _>>()?;
            let algorithm = cairn::node::repo::KeyAlgorithm::from_name(&algorithm, bits)?;
            let config = cairn::node::Repo::init_with(&repo, &profiles, algorithm)?;
            out!("initializing cairn node at {}", repo.display());
            if let cairn::node::repo::KeyAlgorithm::Rsa { bits } = algorithm {
                // Kubo's line for an RSA init.
                out!("generated {bits}-bit RSA keypair");
            }
            out!("peer identity: {}", config.identity.peer_id);
            return Ok(0);
        }
        Command::Daemon(args) => return daemon::run(repo, args, logs).await,
        _ => {}
    }
    // Like Kubo, `config` and `bootstrap` edit the repo directly when no daemon runs,
    // including when a crashed daemon's `api` file names an address nothing answers at.
    let daemon = client::daemon_address(&repo, cli.api.as_deref()).await;
    if daemon.is_none() {
        let _lock = match &cli.command {
            Command::Config { .. } | Command::Bootstrap(_) => Some(client::lock_repo(&repo)?),
            _ => None,
        };
        match &cli.command {
            Command::Config {
                key,
                value,
                profile,
                json: as_json,
                bool: as_bool,
                dry_run,
            } => {
                match config_action(key, value, profile, *as_json, *as_bool, *dry_run)? {
                    ConfigAction::Profile(name, dry_run) => {
                        let (v, note) = offline::profile_apply(&repo, name, dry_run)?;
                        print_profile(&v, json, note.as_deref());
                    }
                    _ => {
                        let kind = value_kind(*as_json, *as_bool);
                        let (v, note) = offline::config(&repo, key, value.as_deref(), kind)?;
                        print_config(key, value.is_some(), &v, json, note.as_deref());
                    }
                }
                return Ok(0);
            }
            Command::Bootstrap(b) => {
                let (action, addrs, flag, verb) = match b {
                    BootstrapCmd::List => ("list", Vec::new(), false, ""),
                    BootstrapCmd::Add { addrs, default } => {
                        ("add", addrs.clone(), *default, "added ")
                    }
                    BootstrapCmd::Rm { addrs, all } => ("rm", addrs.clone(), *all, "removed "),
                };
                for p in offline::bootstrap(&repo, action, &addrs, flag)? {
                    out!("{verb}{p}");
                }
                return Ok(0);
            }
            _ => {}
        }
    }
    if let Command::Key(names::KeyCmd::Export { name, output }) = cli.command {
        names::export(&repo, &name, output)?;
        return Ok(0);
    }
    let rpc = RpcClient::connect(&repo, daemon, cli.api_auth.as_deref())?
        .global_options(cli.offline, cli.timeout.as_deref());
    let mut code = 0;
    match cli.command {
        Command::Init { .. } | Command::Daemon(_) => unreachable!("handled above"),
        Command::Shutdown => {
            // Kubo's users get a confusing EOF here; cairn's daemon answers before it stops.
            rpc.bytes("shutdown", call())
                .await
                .context("the daemon did not acknowledge the shutdown")?;
        }
        Command::Id { peer } => {
            let c = peer.map_or(call(), |p| call().arg(p));
            print_json(&rpc.json("id", c).await?);
        }
        Command::Diag(DiagCmd::Healthy) => {
            // Kubo's `diag healthy` fails with this text once shutdown has started.
            let (status, body) = rpc.health().await?;
            if status == 503 {
                bail!("daemon is shutting down ({body})");
            }
            if status != 200 {
                bail!("daemon is not healthy: HTTP {status}: {body}");
            }
            out!("ok");
        }
        Command::Version => {
            let v = rpc.json("version", call()).await?;
            if json {
                print_json(&v)
            } else {
                out!(
                    "cairn version {}",
                    v["Version"].as_str().unwrap_or_default()
                )
            }
        }
        Command::Block(b) => match b {
            BlockCmd::Put {
                file,
                cid_codec,
                mhtype,
                pin,
                allow_big_block,
            } => {
                let data = match file {
                    Some(f) => {
                        std::fs::read(&f).with_context(|| format!("reading {}", f.display()))?
                    }
                    None => stdin_bytes()?,
                };
                let c = call()
                    .opt("cid-codec", cid_codec)
                    .opt("mhtype", mhtype)
                    .opt("pin", pin)
                    .opt("allow-big-block", allow_big_block)
                    .file(data);
                rpc.stream("block/put", c, |v| {
                    if json {
                        out!("{v}")
                    } else {
                        out!("{}", v["Key"].as_str().unwrap_or_default())
                    }
                    Ok(())
                })
                .await?;
            }
            BlockCmd::Get { cid } => {
                let data = rpc.bytes("block/get", call().arg(cid)).await?;
                write_stdout(&data)?;
            }
            BlockCmd::Stat { cid } => {
                let v = rpc.json("block/stat", call().arg(cid)).await?;
                if json {
                    print_json(&v)
                } else {
                    out!(
                        "Key: {}\nSize: {}",
                        v["Key"].as_str().unwrap_or_default(),
                        v["Size"]
                    )
                }
            }
            BlockCmd::Rm { cids, force, quiet } => {
                let c = cids
                    .iter()
                    .fold(call().opt("force", force).opt("quiet", quiet), |c, a| {
                        c.arg(a)
                    });
                let mut failed = false;
                rpc.stream("block/rm", c, |v| {
                    match v["Error"].as_str() {
                        Some(e) => {
                            failed = true;
                            eprintln!(
                                "cannot remove {}: {e}",
                                v["Hash"].as_str().unwrap_or_default()
                            );
                        }
                        None if json => out!("{v}"),
                        None => out!("removed {}", v["Hash"].as_str().unwrap_or_default()),
                    }
                    Ok(())
                })
                .await?;
                if failed {
                    eprintln!("Error: some blocks not removed");
                    code = 1;
                }
            }
        },
        Command::Swarm(s) => match s {
            SwarmCmd::Peers => {
                let v = rpc.json("swarm/peers", call()).await?;
                if json {
                    print_json(&v)
                } else {
                    for p in v["Peers"].as_array().into_iter().flatten() {
                        out!(
                            "{}/p2p/{}",
                            p["Addr"].as_str().unwrap_or_default(),
                            p["Peer"].as_str().unwrap_or_default()
                        );
                    }
                }
            }
            SwarmCmd::Connect { addrs } => {
                let v = rpc
                    .json("swarm/connect", addrs.iter().fold(call(), |c, a| c.arg(a)))
                    .await?;
                print_strings(&v, json);
            }
            SwarmCmd::Disconnect { addrs } => {
                let v = rpc
                    .json(
                        "swarm/disconnect",
                        addrs.iter().fold(call(), |c, a| c.arg(a)),
                    )
                    .await?;
                print_strings(&v, json);
            }
            SwarmCmd::Addrs { which } => match which.as_deref() {
                Some("local") => print_strings(&rpc.json("swarm/addrs/local", call()).await?, json),
                Some("listen") => {
                    print_strings(&rpc.json("swarm/addrs/listen", call()).await?, json)
                }
                Some(other) => bail!("unknown swarm addrs subcommand {other:?} (local, listen)"),
                None => {
                    let v = rpc.json("swarm/addrs", call()).await?;
                    if json {
                        print_json(&v)
                    } else {
                        for (peer, addrs) in v["Addrs"].as_object().into_iter().flatten() {
                            let addrs = addrs.as_array().cloned().unwrap_or_default();
                            out!("{peer} ({})", addrs.len());
                            for a in addrs {
                                out!("\t{}", a.as_str().unwrap_or_default());
                            }
                        }
                    }
                }
            },
        },
        Command::Bootstrap(b) => {
            let (command, c, verb) = match b {
                BootstrapCmd::List => ("bootstrap/list", call(), ""),
                BootstrapCmd::Add { addrs, default } => (
                    "bootstrap/add",
                    addrs
                        .iter()
                        .fold(call().opt("default", default), |c, a| c.arg(a)),
                    "added ",
                ),
                BootstrapCmd::Rm { addrs, all } => (
                    "bootstrap/rm",
                    addrs.iter().fold(call().opt("all", all), |c, a| c.arg(a)),
                    "removed ",
                ),
            };
            let v = rpc.json(command, c).await?;
            if json {
                print_json(&v)
            } else {
                for p in v["Peers"].as_array().into_iter().flatten() {
                    out!("{verb}{}", p.as_str().unwrap_or_default());
                }
            }
        }
        Command::Pubsub(p) => match p {
            PubsubCmd::Pub { topic, data } => {
                let data = match data {
                    Some(d) => d.into_bytes(),
                    None => stdin_bytes()?,
                };
                rpc.bytes("pubsub/pub", call().arg(u(&topic)).file(data))
                    .await?;
            }
            PubsubCmd::Sub { topic } => {
                rpc.stream("pubsub/sub", call().arg(u(&topic)), |v| {
                    if json {
                        out!("{v}");
                    } else {
                        let data = v["data"].as_str().unwrap_or_default();
                        out!("{}", from_u(data));
                    }
                    std::io::stdout().flush()?;
                    Ok(())
                })
                .await?;
            }
            PubsubCmd::Ls => {
                let v = rpc.json("pubsub/ls", call()).await?;
                if json {
                    print_json(&v)
                } else {
                    for t in v["Strings"].as_array().into_iter().flatten() {
                        out!("{}", from_u(t.as_str().unwrap_or_default()));
                    }
                }
            }
            PubsubCmd::Peers { topic } => {
                let c = topic.map_or(call(), |t| call().arg(u(&t)));
                print_strings(&rpc.json("pubsub/peers", c).await?, json);
            }
        },
        Command::Key(k) => names::key(&rpc, &repo, k, json).await?,
        Command::Name(n) => names::name(&rpc, n, json).await?,
        Command::Dht(names::DhtCmd::Query { peer }) => names::dht_query(&rpc, peer, json).await?,
        Command::Routing(r) => match r {
            RoutingCmd::Record(r) => names::record(&rpc, r, json).await?,
            RoutingCmd::Findprovs { cid, num_providers } => {
                rpc.stream(
                    "routing/findprovs",
                    call().arg(cid).opt("num-providers", num_providers),
                    |v| {
                        if json {
                            out!("{v}");
                        } else if v["Type"] == 4 {
                            for r in v["Responses"].as_array().into_iter().flatten() {
                                out!("{}", r["ID"].as_str().unwrap_or_default());
                            }
                        }
                        Ok(())
                    },
                )
                .await?;
            }
            RoutingCmd::Provide { cids, recursive } => {
                rpc.stream(
                    "routing/provide",
                    cids.iter()
                        .fold(call().opt("recursive", recursive), |c, a| c.arg(a)),
                    |v| {
                        if json {
                            out!("{v}");
                        }
                        Ok(())
                    },
                )
                .await?;
            }
            RoutingCmd::Findpeer { peer } => {
                rpc.stream("routing/findpeer", call().arg(peer), |v| {
                    if json {
                        out!("{v}");
                    } else if v["Type"] == 2 {
                        for r in v["Responses"].as_array().into_iter().flatten() {
                            for a in r["Addrs"].as_array().into_iter().flatten() {
                                out!("{}", a.as_str().unwrap_or_default());
                            }
                        }
                    }
                    Ok(())
                })
                .await?;
            }
        },
        Command::Files(f) => files_command(&rpc, f, json).await?,
        Command::Pin(p) => match p {
            PinCmd::Update { from, to, unpin } => {
                files::pin_update(&rpc, from, to, unpin, json).await?
            }
            PinCmd::Add {
                cids,
                recursive,
                progress: true,
            } => pin_add_progress(&rpc, &cids, recursive, json).await?,
            PinCmd::Add {
                cids, recursive, ..
            } => {
                let how = if recursive {
                    " recursively"
                } else {
                    " directly"
                };
                pin_change(&rpc, "pin/add", &cids, recursive, json, "pinned", how).await?;
            }
            PinCmd::Rm { cids, recursive } => {
                pin_change(&rpc, "pin/rm", &cids, recursive, json, "unpinned", "").await?;
            }
            PinCmd::Ls { cids, kind } => {
                let c = cids
                    .iter()
                    .fold(call().opt("type", kind).opt("stream", true), |c, a| {
                        c.arg(a)
                    });
                rpc.stream("pin/ls", c, |v| {
                    if json {
                        out!("{v}");
                    } else {
                        out!(
                            "{} {}",
                            v["Cid"].as_str().unwrap_or_default(),
                            v["Type"].as_str().unwrap_or_default()
                        );
                    }
                    Ok(())
                })
                .await?;
            }
        },
        Command::Repo(r) => match r {
            RepoCmd::Stat { size_only, human } => {
                let v = rpc
                    .json("repo/stat", call().opt("size-only", size_only))
                    .await?;
                let size = |k: &str| {
                    let n = v[k].as_u64().unwrap_or_default();
                    if human { human_bytes(n) } else { n.to_string() }
                };
                if json {
                    print_json(&v)
                } else if size_only {
                    out!("RepoSize:   {}", size("RepoSize"));
                    out!("StorageMax: {}", size("StorageMax"));
                } else {
                    out!("NumObjects: {}", v["NumObjects"]);
                    out!("RepoSize:   {}", size("RepoSize"));
                    out!("StorageMax: {}", size("StorageMax"));
                    out!("RepoPath:   {}", v["RepoPath"].as_str().unwrap_or_default());
                    out!("Version:    {}", v["Version"].as_str().unwrap_or_default());
                }
            }
            RepoCmd::Gc {
                quiet,
                stream_errors,
                silent,
            } => {
                let c = call()
                    .opt("stream-errors", stream_errors)
                    .opt("silent", silent);
                rpc.stream("repo/gc", c, |v| {
                    if json {
                        out!("{v}");
                    } else if let Some(e) = v["Error"].as_str() {
                        eprintln!("{e}");
                    } else if quiet {
                        out!("{}", v["Key"]["/"].as_str().unwrap_or_default());
                    } else {
                        out!("removed {}", v["Key"]["/"].as_str().unwrap_or_default());
                    }
                    Ok(())
                })
                .await?;
            }
            RepoCmd::Verify => {
                rpc.stream("repo/verify", call(), |v| {
                    if json {
                        out!("{v}");
                    } else if let Some(msg) = v["Msg"].as_str().filter(|m| !m.is_empty()) {
                        out!("{msg}");
                    } else {
                        out!("{} blocks processed.", v["Progress"]);
                    }
                    Ok(())
                })
                .await?;
            }
        },
        Command::Config {
            key,
            value,
            profile,
            json: as_json,
            bool: as_bool,
            dry_run,
        } => match config_action(&key, &value, &profile, as_json, as_bool, dry_run)? {
            ConfigAction::Show => print_json(&rpc.json("config/show", call()).await?),
            ConfigAction::Profile(name, dry_run) => {
                let c = call().arg(name).opt("dry-run", dry_run);
                let v = rpc.json("config/profile/apply", c).await?;
                let changed = cairn::node::config::schema::changed_keys(&v["OldCfg"], &v["NewCfg"]);
                let note = (!dry_run)
                    .then(|| cairn::node::config::edit::inert_note(&changed))
                    .flatten();
                print_profile(&v, json, note.as_deref());
            }
            ConfigAction::Get => {
                let v = rpc.json("config", call().arg(&key)).await?;
                print_config(&key, false, &v, json, None);
            }
            ConfigAction::Set(raw) => {
                let c = call()
                    .arg(&key)
                    .arg(raw)
                    .opt("json", as_json)
                    .opt("bool", as_bool);
                let v = rpc.json("config", c).await?;
                let note = cairn::node::config::edit::inert_note(std::slice::from_ref(&key));
                print_config(&key, true, &v, json, note.as_deref());
            }
        },
        Command::Cat {
            cids,
            offset,
            length,
        } => {
            let mut c = cids
                .iter()
                .fold(call().opt("offset", offset), |c, a| c.arg(a));
            if let Some(l) = length {
                c = c.opt("length", l);
            }
            rpc.raw("cat", c, write_stdout).await?;
        }
        Command::Refs {
            cids,
            recursive,
            unique,
            edges,
            format,
            max_depth,
        } => {
            let mut c = call()
                .opt("recursive", recursive)
                .opt("unique", unique)
                .opt("edges", edges)
                .opt("max-depth", max_depth);
            if format != "<dst>" {
                c = c.opt("format", format);
            }
            let c = cids.iter().fold(c, |c, a| c.arg(a));
            rpc.stream("refs", c, |v| {
                if json {
                    out!("{v}");
                } else if let Some(e) = v["Err"].as_str().filter(|e| !e.is_empty()) {
                    eprintln!("{e}");
                } else {
                    out!("{}", v["Ref"].as_str().unwrap_or_default());
                }
                Ok(())
            })
            .await?;
        }
        Command::Dag(d) => files::dag(&rpc, d, json).await?,
        Command::Add(args) => files::add(&rpc, args, json).await?,
        Command::Get {
            path,
            output,
            archive,
            compress,
            compression_level,
        } => files::get(&rpc, path, output, archive, compress, compression_level).await?,
        Command::Ls {
            paths,
            headers,
            resolve_type,
            size,
            stream,
        } => files::ls(&rpc, paths, headers, resolve_type, size, stream, json).await?,
        Command::Resolve { path } => files::resolve(&rpc, path, json).await?,
        Command::Bitswap(b) => bitswap(&rpc, b, json).await?,
        Command::Provide(ProvideCmd::Stat) => {
            let v = rpc.json("provide/stat", call()).await?;
            if json {
                print_json(&v)
            } else {
                let ms = |k: &str| {
                    let ns = v[k].as_u64().unwrap_or(0);
                    format!("{:?}", std::time::Duration::from_nanos(ns))
                };
                out!("TotalProvides:          {}", v["TotalProvides"]);
                out!("AvgProvideDuration:     {}", ms("AvgProvideDuration"));
                out!("LastReprovideDuration:  {}", ms("LastReprovideDuration"));
                out!("LastReprovideBatchSize: {}", v["LastReprovideBatchSize"]);
                out!("Queued:                 {}", v["Queued"]);
                out!("FailedProvides:         {}", v["FailedProvides"]);
            }
        }
        Command::Watch(WatchCmd::Ls) => {
            let v = rpc.json("cairn/watch/ls", call()).await?;
            if json {
                print_json(&v)
            } else {
                for e in v["Entries"].as_array().into_iter().flatten() {
                    let text = |k: &str| e[k].as_str().unwrap_or("-").to_string();
                    let mut line = format!(
                        "{}\t{}\t{}\t{}",
                        text("State"),
                        text("Cid"),
                        e["Size"].as_u64().unwrap_or(0),
                        text("Path")
                    );
                    if let Some(err) = e["Error"].as_str() {
                        line.push_str(&format!("\t{err}"));
                    }
                    out!("{line}");
                }
            }
        }
        Command::Watch(WatchCmd::Refresh) => {
            let v = rpc.json("cairn/watch/refresh", call()).await?;
            if json {
                print_json(&v)
            } else {
                out!(
                    "scanned {} entries, {} changed",
                    v["Entries"].as_u64().unwrap_or(0),
                    v["Changed"].as_u64().unwrap_or(0)
                );
            }
        }
        Command::Ping { peer, count } => {
            let mut failed = true;
            rpc.stream("ping", call().arg(peer).opt("count", count), |v| {
                if json {
                    out!("{v}");
                } else if let Some(t) = v["Text"].as_str().filter(|t| !t.is_empty()) {
                    out!("{t}");
                } else {
                    out!(
                        "Pong received: time={:.2} ms",
                        v["Time"].as_f64().unwrap_or(0.0) / 1e6
                    );
                }
                failed &= v["Success"] != true || v["Time"] == 0;
                Ok(())
            })
            .await?;
            if failed {
                code = 1;
            }
        }
    }
    Ok(code)
}

/// `pin add` and `pin rm`: send the CIDs, print each CID the daemon reports.
async fn pin_change(
    rpc: &RpcClient,
    command: &str,
    cids: &[String],
    recursive: bool,
    json: bool,
    verb: &str,
    how: &str,
) -> anyhow::Result<()> {
    let call = cids
        .iter()
        .fold(call().opt("recursive", recursive), |c, a| c.arg(a));
    let v = rpc.json(command, call).await?;
    if json {
        print_json(&v);
    } else {
        for c in v["Pins"].as_array().into_iter().flatten() {
            out!("{verb} {}{how}", c.as_str().unwrap_or_default());
        }
    }
    Ok(())
}

/// `pin add --progress`: Kubo's `Fetched/Processed N nodes` on stderr (rewritten in place)
/// while the daemon fetches, then the pins.
async fn pin_add_progress(
    rpc: &RpcClient,
    cids: &[String],
    recursive: bool,
    json: bool,
) -> anyhow::Result<()> {
    let how = if recursive { "recursively" } else { "directly" };
    let c = cids.iter().fold(
        call().opt("recursive", recursive).opt("progress", true),
        |c, a| c.arg(a),
    );
    let mut shown = false;
    rpc.stream("pin/add", c, |v| {
        if json {
            out!("{v}");
        } else if let Some(pins) = v["Pins"].as_array() {
            if shown {
                eprintln!();
            }
            for p in pins {
                out!("pinned {} {how}", p.as_str().unwrap_or_default());
            }
        } else {
            eprint!(
                "Fetched/Processed {} nodes\r",
                v["Progress"].as_u64().unwrap_or(0)
            );
            shown = true;
        }
        Ok(())
    })
    .await
}

/// `cairn bitswap ...`, printed as `ipfs bitswap ...` prints.
async fn bitswap(rpc: &RpcClient, cmd: BitswapCmd, json: bool) -> anyhow::Result<()> {
    let cid_of = |v: &Value| v["/"].as_str().unwrap_or_default().to_string();
    match cmd {
        BitswapCmd::Stat { human, verbose } => {
            let v = rpc
                .json(
                    "bitswap/stat",
                    call().opt("human", human).opt("verbose", verbose),
                )
                .await?;
            if json {
                print_json(&v);
                return Ok(());
            }
            let n = |k: &str| v[k].as_u64().unwrap_or(0);
            let size = |k: &str| {
                if human {
                    human_bytes(n(k))
                } else {
                    n(k).to_string()
                }
            };
            let wants = v["Wantlist"].as_array().cloned().unwrap_or_default();
            let peers = v["Peers"].as_array().cloned().unwrap_or_default();
            out!("bitswap status");
            out!("\tprovides buffer: {} / 256", n("ProvideBufLen"));
            out!("\tblocks received: {}", n("BlocksReceived"));
            out!("\tblocks sent: {}", n("BlocksSent"));
            out!("\tdata received: {}", size("DataReceived"));
            out!("\tdata sent: {}", size("DataSent"));
            out!("\tdup blocks received: {}", n("DupBlksReceived"));
            out!("\tdup data received: {}", size("DupDataReceived"));
            out!("\twantlist [{} keys]", wants.len());
            for w in &wants {
                out!("\t\t{}", cid_of(w));
            }
            out!("\tpartners [{}]", peers.len());
            if verbose {
                for p in &peers {
                    out!("\t\t{}", p.as_str().unwrap_or_default());
                }
            }
        }
        BitswapCmd::Wantlist { peer } => {
            let c = peer.map_or(call(), |p| call().opt("peer", p));
            let v = rpc.json("bitswap/wantlist", c).await?;
            if json {
                print_json(&v);
            } else {
                for k in v["Keys"].as_array().into_iter().flatten() {
                    out!("{}", cid_of(k));
                }
            }
        }
        BitswapCmd::Ledger { peer } => {
            let v = rpc.json("bitswap/ledger", call().arg(peer)).await?;
            if json {
                print_json(&v);
            } else {
                out!("Ledger for {}", v["Peer"].as_str().unwrap_or_default());
                out!("Debt ratio:\t{:.6}", v["Value"].as_f64().unwrap_or(0.0));
                out!("Exchanges:\t{}", v["Exchanged"]);
                out!("Bytes sent:\t{}", v["Sent"]);
                out!("Bytes received:\t{}", v["Recv"]);
            }
        }
        BitswapCmd::Reprovide => {
            rpc.bytes("bitswap/reprovide", call()).await?;
        }
    }
    Ok(())
}

/// What a `cairn config ...` line asks for.
enum ConfigAction<'a> {
    /// `config show`.
    Show,
    /// `config KEY`.
    Get,
    /// `config KEY VALUE`.
    Set(&'a str),
    /// `config profile apply NAME [--dry-run]`.
    Profile(&'a str, bool),
}

/// Sorts out the positional words of `cairn config`.
fn config_action<'a>(
    key: &str,
    value: &'a Option<String>,
    profile: &'a Option<String>,
    as_json: bool,
    as_bool: bool,
    dry_run: bool,
) -> anyhow::Result<ConfigAction<'a>> {
    if as_json && as_bool {
        anyhow::bail!("--json and --bool are exclusive");
    }
    Ok(match (key, value.as_deref(), profile.as_deref()) {
        ("profile", Some("apply"), Some(name)) => ConfigAction::Profile(name, dry_run),
        ("profile", ..) => anyhow::bail!("usage: cairn config profile apply NAME [--dry-run]"),
        (_, _, Some(_)) => anyhow::bail!("config takes a key and at most one value"),
        ("show", None, None) => ConfigAction::Show,
        (_, None, None) => ConfigAction::Get,
        (_, Some(v), None) => ConfigAction::Set(v),
    })
}

fn value_kind(as_json: bool, as_bool: bool) -> cairn::node::config::ValueKind {
    match (as_json, as_bool) {
        (true, _) => cairn::node::config::ValueKind::Json,
        (_, true) => cairn::node::config::ValueKind::Bool,
        _ => cairn::node::config::ValueKind::String,
    }
}

/// Prints a `config` answer as Kubo's CLI does (`show` as JSON, a read value bare, nothing for a
/// set), and the note for a key cairn does not act on, once, on stderr.
fn print_config(key: &str, set: bool, v: &Value, json: bool, note: Option<&str>) {
    if key == "show" && !set || json {
        print_json(v);
    } else if !set {
        print_config_value(&v["Value"])
    }
    if let Some(note) = note {
        eprintln!("note: {note}");
    }
}

/// Prints `config profile apply`: with `--enc=json` Kubo's `{"OldCfg","NewCfg"}`, otherwise one
/// `KEY: OLD => NEW` line per changed key (Kubo prints a JSON diff here).
fn print_profile(v: &Value, json: bool, note: Option<&str>) {
    if json {
        print_json(v);
    } else {
        let (old, new) = (&v["OldCfg"], &v["NewCfg"]);
        for key in cairn::node::config::schema::changed_keys(old, new) {
            let at = |doc: &Value| {
                key.split('.')
                    .try_fold(doc, |d, k| d.get(k))
                    .cloned()
                    .unwrap_or(Value::Null)
            };
            out!("{key}: {} => {}", at(old), at(new));
        }
    }
    if let Some(note) = note {
        eprintln!("note: {note}");
    }
}

/// A config value as `ipfs config KEY` prints it: strings bare, anything else as JSON.
fn print_config_value(v: &Value) {
    match v {
        Value::String(s) => out!("{s}"),
        other => print_json(other),
    }
}

fn print_strings(v: &Value, json: bool) {
    if json {
        print_json(v);
    } else {
        for s in v["Strings"].as_array().into_iter().flatten() {
            out!("{}", s.as_str().unwrap_or_default());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `files stat`'s text as the ipfs CLI prints it: Go's `FileMode.String` lowered, the octal
    /// permission bits, and Go's `2 Jan 2006, 15:04:05 MST` in UTC; `not set` when absent.
    #[test]
    fn stat_text_prints_mode_and_mtime_as_the_ipfs_cli() {
        let template = "<type> <mode> (<mode-octal>) <mtime> <mtime-secs> <mtime-nsecs>";
        let dir = serde_json::json!({
            "Type": "directory", "Mode": "20000000755", "Mtime": 1630937926, "MtimeNsecs": 7
        });
        assert_eq!(
            stat_text(template, &dir),
            "directory drwxr-xr-x (0755) 6 Sep 2021, 14:18:46 UTC 1630937926 7"
        );
        let file = serde_json::json!({"Type": "file", "Mode": "0644"});
        assert_eq!(
            stat_text(template, &file),
            "file -rw-r--r-- (0644) not set not set not set"
        );
        // setuid (Go's ModeSetuid, bit 23) prints `u`; the octal form keeps only 0o777.
        assert_eq!(go_file_mode_string((1 << 23) | 0o755), "urwxr-xr-x");
        assert_eq!(go_file_mode_string(0), "----------");
        let bare = serde_json::json!({"Hash": "Qm", "Size": 3, "Type": "file"});
        assert_eq!(stat_text("<hash> <size> <mode>", &bare), "Qm 3 not set");
    }
}

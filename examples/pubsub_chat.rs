//! A chat over gossipsub between machines on one LAN that find each other by mDNS.
//!
//! Run in two terminals (or on two hosts of the same LAN):
//!     cargo run --example pubsub_chat -- [nickname]
//! Type a line and press enter to send it to everyone on the topic `cairn-chat`.
//!
//! The node runs in memory, listens on every interface with a random port, and dials whoever
//! mDNS discovers. Nothing leaves the local network: no bootstrap peers are configured.

use cairn::node::{Multiaddr, Node, NodeEvent};
use futures::StreamExt;
use tokio::io::{AsyncBufReadExt, BufReader};

const TOPIC: &str = "cairn-chat";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let nick = std::env::args().nth(1).unwrap_or_else(|| "anon".into());
    let listen: Vec<Multiaddr> = vec![
        "/ip4/0.0.0.0/tcp/0".parse()?,
        "/ip4/0.0.0.0/udp/0/quic-v1".parse()?,
    ];
    let node = Node::builder()
        .listen_addrs(listen)
        .bootstrap_peers([])
        .mdns(true)
        .gossipsub(true)
        .build()
        .await?;
    println!(
        "{nick} is {}; waiting for peers on the LAN...",
        node.peer_id()
    );

    let mut messages = node.subscribe(TOPIC).await?;
    let mut events = node.events();
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            line = stdin.next_line() => match line? {
                Some(line) if !line.trim().is_empty() => {
                    node.publish(TOPIC, format!("{nick}: {line}")).await?;
                }
                Some(_) => {}
                None => break,
            },
            Some(message) = messages.next() => {
                if message.from != Some(node.peer_id()) {
                    println!("{}", String::from_utf8_lossy(&message.data));
                }
            }
            Ok(event) = events.recv() => match event {
                NodeEvent::PeerDiscovered { peer_id, .. } => println!("* discovered {peer_id}"),
                NodeEvent::TopicSubscribed { peer_id, .. } => println!("* {peer_id} joined the chat"),
                _ => {}
            },
        }
    }
    node.shutdown().await?;
    Ok(())
}

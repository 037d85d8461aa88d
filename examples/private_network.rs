//! A private network of three nodes: generate a swarm key (Kubo's `swarm.key` format), start three
//! nodes that share it with a custom bootstrap list (the second and third know only the first),
//! exchange gossipsub messages and find a provider record.
//!
//! Run: `cargo run --example private_network`
//!
//! To make a repo private, write the printed key to `$CAIRN_PATH/swarm.key` and replace the
//! bootstrap list with your own peers (`cairn bootstrap rm --all`, `cairn bootstrap add <addr>`).

use std::time::Duration;

use cairn::blockstore::{Block, codec::RAW};
use cairn::bootstrap::{format_swarm_key, parse_swarm_key};
use cairn::node::{Multiaddr, Node, NodeEvent, Profile};
use futures::StreamExt;

async fn start(key_file: &str, bootstrap: Vec<Multiaddr>) -> anyhow::Result<Node> {
    Ok(Node::builder()
        .profile(Profile::Test)
        .listen_addrs(["/ip4/127.0.0.1/tcp/0".parse()?])
        .swarm_key(parse_swarm_key(key_file.as_bytes())?)
        .bootstrap_peers(bootstrap)
        .gossipsub(true)
        .build()
        .await?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let key: [u8; 32] = rand::random();
    let key_file = format_swarm_key(&key);
    println!("swarm.key:\n{key_file}");

    let first = start(&key_file, Vec::new()).await?;
    let first_addr = first
        .listen_addrs()
        .await?
        .remove(0)
        .with_p2p(first.peer_id())
        .expect("no p2p yet");
    let mut events = first.events();
    let second = start(&key_file, vec![first_addr.clone()]).await?;
    let third = start(&key_file, vec![first_addr]).await?;
    // Wait until both have joined through their bootstrap list.
    let mut joined = 0;
    while joined < 2 {
        if let NodeEvent::PeerIdentified { .. } = events.recv().await? {
            joined += 1;
        }
    }
    println!("three nodes joined the private network");

    let mut inbox = third.subscribe("private-chat").await?;
    let _own = second.subscribe("private-chat").await?;
    loop {
        second
            .publish("private-chat", "hello, members only")
            .await?;
        if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(500), inbox.next()).await {
            println!(
                "third received {:?} from {:?}",
                String::from_utf8_lossy(&m.data),
                m.from
            );
            break;
        }
    }

    let block = Block::from_data(RAW, &b"a private block"[..])?;
    second.put_block(&block).await?;
    second.provide(block.cid()).await?;
    let mut providers = third.find_providers(block.cid(), 1).await?;
    if let Some(p) = providers.next().await {
        println!("third found the provider of {}: {}", block.cid(), p.peer_id);
    }

    for n in [first, second, third] {
        n.shutdown().await?;
    }
    Ok(())
}

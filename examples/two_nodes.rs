//! Two nodes in one process: connect them by address, have one provide a block on the DHT, and
//! let the other find it as a provider.
//!
//! Run: `cargo run --example two_nodes`

use cairn::blockstore::{Block, codec::RAW};
use cairn::node::{Multiaddr, Node, NodeEvent, Profile};
use futures::StreamExt;

async fn start() -> anyhow::Result<Node> {
    let listen: Multiaddr = "/ip4/127.0.0.1/tcp/0".parse()?;
    Ok(Node::builder()
        .profile(Profile::Test)
        .listen_addrs([listen])
        .build()
        .await?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (alice, bob) = (start().await?, start().await?);
    let bob_addr = bob
        .listen_addrs()
        .await?
        .remove(0)
        .with_p2p(bob.peer_id())
        .expect("no p2p yet");
    println!("alice {} dials bob at {bob_addr}", alice.peer_id());

    let mut events = bob.events();
    alice.connect(bob_addr).await?;
    // Wait until bob has identified alice, so each has the other in its DHT routing table.
    while let Ok(event) = events.recv().await {
        if matches!(event, NodeEvent::PeerIdentified { peer_id, .. } if peer_id == alice.peer_id())
        {
            break;
        }
    }

    let block = Block::from_data(RAW, &b"a block only bob has"[..])?;
    bob.put_block(&block).await?;
    bob.provide(block.cid()).await?;
    println!("bob provides {}", block.cid());

    let mut providers = alice.find_providers(block.cid(), 1).await?;
    match providers.next().await {
        Some(p) => println!("alice found provider {} at {:?}", p.peer_id, p.addresses),
        None => println!("alice found no provider"),
    }

    alice.shutdown().await?;
    bob.shutdown().await?;
    Ok(())
}

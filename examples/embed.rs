//! Embed a cairn node in a Rust program: start it, store and read a block, print its identity.
//!
//! Run: `cargo run --example embed`
//!
//! The node runs in memory (no repo on disk) and listens on 127.0.0.1 with random ports
//! (`Profile::Test`). Use `Node::builder().repo(path)` for a node with a Kubo-style repo.

use cairn::blockstore::{Block, PinMode, codec::RAW};
use cairn::node::{Node, Profile};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let node = Node::builder().profile(Profile::Test).build().await?;
    println!("peer id: {}", node.peer_id());
    for addr in node.listen_addrs().await? {
        println!("listening on {addr}");
    }

    let block = Block::from_data(RAW, &b"hello from cairn\n"[..])?;
    node.put_block(&block).await?;
    node.pin(block.cid(), PinMode::Recursive).await?;
    let read = node.get_block(block.cid()).await?;
    println!(
        "stored {} ({} bytes): {:?}",
        read.cid(),
        read.len(),
        String::from_utf8_lossy(read.data())
    );

    node.shutdown().await?;
    Ok(())
}
